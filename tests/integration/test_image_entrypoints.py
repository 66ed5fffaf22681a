"""The container image's commands, run without a container engine (none runs here).

The virtualenv is the one ``make install`` builds, the way the Dockerfile's build stage does:
``pip install -r requirements.lock``, then the project without dependencies (building a second,
fresh one from the lock took minutes on CI's machine: more than this check is worth). Each test
runs a command exactly as the image or a Kubernetes manifest states it: the Dockerfile's CMD and
HEALTHCHECK, and each Deployment's command with ``--help`` after its subcommand, checking that
every option the manifest passes is one the installed command knows.

What this cannot see: the Kubernetes worker type (prefect-kubernetes is in
infra/docker/kubernetes-worker.lock, installed in the image only) and the base image's system
libraries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE_PROJECT_DIR = "/opt/foresight"  # the Dockerfile's FORESIGHT_PROJECT_DIR
MANIFESTS = ROOT / "infra" / "k8s"


def run_as_image(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``argv`` with the venv's bin first on PATH, this checkout importable, a throwaway home."""
    command = [str(VENV_BIN / argv[0]) if (VENV_BIN / argv[0]).exists() else argv[0], *argv[1:]]
    environ = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "FORESIGHT_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "COLUMNS": "200",
        **env,
    }
    environ.pop("FORESIGHT_HEALTH_URL", None)
    environ.update(env)
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def deployment_commands() -> dict[str, list[str]]:
    """container name -> command, for every Deployment under infra/k8s."""
    commands = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    commands[container["name"]] = container["command"]
    return commands


def test_the_default_command_runs(tmp_path: Path) -> None:
    cmd = json.loads(DockerfileParser(str(ROOT / "Dockerfile")).cmd)
    done = run_as_image(cmd, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stream" in done.stdout and "run" in done.stdout


def test_the_health_check_passes_on_a_working_install(tmp_path: Path) -> None:
    checks = [item["value"] for item in DockerfileParser(str(ROOT / "Dockerfile")).structure
              if item["instruction"] == "HEALTHCHECK"]
    argv = json.loads(checks[-1].partition("CMD")[2].strip())
    argv = [part.replace(IMAGE_PROJECT_DIR, str(ROOT)) for part in argv]  # the image's copy of the script
    done = run_as_image(argv, tmp_path)
    assert done.returncode == 0, done.stderr
    down = run_as_image(argv, tmp_path, FORESIGHT_HEALTH_URL="http://127.0.0.1:9/health")  # discard port
    assert down.returncode == 1 and "unhealthy" in down.stderr


@pytest.mark.parametrize("container", sorted(deployment_commands()))
def test_each_role_command_and_its_options_exist(container: str, tmp_path: Path) -> None:
    command = deployment_commands()[container]
    subcommand = []
    for part in command:
        if part.startswith("-"):
            break
        subcommand.append(part)
    done = run_as_image([*subcommand, "--help"], tmp_path)
    assert done.returncode == 0, f"{' '.join(subcommand)} --help: {done.stderr[-2000:]}"
    options = [part.split("=", 1)[0] for part in command if part.startswith("--")]
    unknown = [option for option in options if option not in done.stdout]
    assert not unknown, f"{container}: {' '.join(subcommand)} has no option {unknown}"
