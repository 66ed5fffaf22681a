"""The Dockerfile, read without a container engine (none runs here): multi-stage, an unprivileged
user, dependencies exactly from the lock files, a HEALTHCHECK; and the image's health check script
against real HTTP endpoints on loopback.

The commands the image runs are run by tests/integration/test_image_entrypoints.py.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
WORKER_LOCK = ROOT / "infra" / "docker" / "kubernetes-worker.lock"
HEALTHCHECK = ROOT / "infra" / "docker" / "healthcheck.py"


def stages(instructions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The instructions split at each FROM (comments dropped)."""
    out: list[list[dict[str, Any]]] = []
    for item in instructions:
        if item["instruction"] == "FROM":
            out.append([])
        if out and item["instruction"] != "COMMENT":
            out[-1].append(item)
    return out


def values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == instruction]


def exec_form(value: str) -> list[str]:
    """A CMD / HEALTHCHECK CMD in exec (JSON) form; shell form hides what PID 1 is."""
    command = json.loads(value)
    assert isinstance(command, list) and all(isinstance(part, str) for part in command), value
    return command


def lock_names(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line, names normalised as pip does."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


@pytest.fixture(scope="module")
def build_and_runtime(dockerfile: DockerfileParser) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    found = stages(dockerfile.structure)
    assert len(found) >= 2, "the Dockerfile must be multi-stage: build, then a runtime without the toolchain"
    return found[0], found[-1]


def test_base_images_are_pinned_and_stages_named(dockerfile: DockerfileParser) -> None:
    froms = [item["value"] for item in dockerfile.structure if item["instruction"] == "FROM"]
    for value in froms:
        image, _, alias = value.partition(" AS ")
        assert alias.strip(), f"unnamed stage: FROM {value}"
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", image.strip()), (
            f"base image {image!r} is not pinned to a full version"
        )


def test_runtime_runs_as_an_unprivileged_numeric_user(build_and_runtime) -> None:
    _, runtime = build_and_runtime
    users = values(runtime, "USER")
    assert users, "the runtime stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) >= 10000, f"USER {users[-1]}: use a numeric uid >= 10000"
    assert gid == "" or gid.isdigit()
    manifests_uid = {
        int(m) for m in re.findall(r"runAsUser: (\d+)", "".join(p.read_text() for p in (ROOT / "infra/k8s").glob("*.yaml")))
    }
    assert manifests_uid == {int(uid)}, "the Kubernetes manifests run as another uid than the image"


def test_dependencies_come_from_the_lock_files_only(build_and_runtime) -> None:
    build, runtime = build_and_runtime
    runs = " && ".join(values(build, "RUN"))
    installs = [cmd.strip() for cmd in runs.split("&&") if "pip install" in cmd]
    assert any("-r /tmp/locks/requirements.lock" in cmd for cmd in installs), installs
    for cmd in installs:
        # Every install is either the lock itself or resolves nothing (--no-deps): no unpinned name.
        assert "-r /tmp/locks/requirements.lock" in cmd or "--no-deps" in cmd, f"unpinned install: {cmd}"
    copied = " ".join(values(build, "COPY"))
    assert "requirements.lock" in copied and "infra/docker/kubernetes-worker.lock" in copied
    assert "pip check" in runs, "the build should fail on a broken dependency set"
    assert not [cmd for cmd in values(runtime, "RUN") if "pip install" in cmd], "the runtime stage installs nothing"
    assert any(value.startswith("--from=build /opt/venv") for value in values(runtime, "COPY"))
    assert not [cmd for cmd in values(runtime, "RUN") if "build-essential" in cmd], "the toolchain stays in the build stage"


def test_worker_lock_adds_packages_without_moving_a_pin() -> None:
    worker = lock_names(WORKER_LOCK)
    locked = lock_names(ROOT / "requirements.lock")
    assert "prefect-kubernetes" in worker
    assert not set(worker) & set(locked), f"pinned in both lock files: {sorted(set(worker) & set(locked))}"


def test_healthcheck_and_cmd_are_exec_form_and_use_installed_files(dockerfile: DockerfileParser, build_and_runtime) -> None:
    _, runtime = build_and_runtime
    checks = values(runtime, "HEALTHCHECK")
    assert len(checks) == 1, "one HEALTHCHECK in the runtime stage"
    options, _, command = checks[0].partition("CMD")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    argv = exec_form(command.strip())
    script = Path(argv[-1])
    copied = " ".join(values(runtime, "COPY"))
    assert str(script) in copied, f"the health check runs {script}, which the runtime stage does not copy"
    assert exec_form(dockerfile.cmd)[0] == "foresight"
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(values(runtime, "ENV"))))
    # prefect.yaml's pull step changes to FORESIGHT_PROJECT_DIR: the flows must be there.
    assert f"--from=build /src/flows {env['FORESIGHT_PROJECT_DIR']}/flows" in copied
    assert f"--from=build /src/prefect.yaml {env['FORESIGHT_PROJECT_DIR']}/prefect.yaml" in copied
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".foresight", "tests"} <= ignored


# --- the health check script, against real endpoints on loopback ----------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("foresight_image_healthcheck", HEALTHCHECK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A loopback server: /ok answers 200, /down 503 (an unresponsive worker's answer)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthcheck_reports_each_endpoint_state(healthcheck: ModuleType, endpoint: str) -> None:
    assert healthcheck.check(f"{endpoint}/ok") is None
    assert "HTTP 503" in healthcheck.check(f"{endpoint}/down")
    assert "did not answer" in healthcheck.check(f"http://127.0.0.1:{closed_port()}/metrics")


def test_healthcheck_exit_codes(healthcheck: ModuleType, endpoint: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORESIGHT_HEALTH_URL", f"{endpoint}/ok")
    assert healthcheck.main() == 0
    monkeypatch.setenv("FORESIGHT_HEALTH_URL", f"{endpoint}/down")
    assert healthcheck.main() == 1
    assert "unhealthy:" in capsys.readouterr().err
