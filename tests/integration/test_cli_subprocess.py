"""What a user sees from the real ``foresight`` command, Prefect's own log output included: a bad
config or a store that is down is two lines and a non-zero exit; SIGTERM stops the Prefect API
server the run started. The SIGTERM test's run starts its own Prefect server in a subprocess
(~10 s); the store test's run uses the session's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.servers import free_port

pytestmark = pytest.mark.integration

PASSWORD = "s3cretpw"


def _cli_env(home: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "FORESIGHT_"))}
    return {**env, "FORESIGHT_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "COLUMNS": "200"}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_store_that_is_down_is_two_lines_and_a_non_zero_exit(tmp_path: Path, prefect_api_env: dict[str, str]) -> None:
    from connectors.sources.base import build_source
    from foresight.lake import Lake

    home = tmp_path / "home"
    batch = build_source("simulator", "simulator", {"days": 1}).fetch()  # publish reads the lake first
    lake = Lake(home / "lake")
    lake.upsert("telemetry", batch.telemetry)
    lake.upsert("catalogue", batch.catalogue)
    config = tmp_path / "foresight.yaml"
    config.write_text(f"sinks:\n  forecast_store_url: "
                      f"postgresql+psycopg://foresight:{PASSWORD}@127.0.0.1:{free_port()}/foresight\n")

    run = subprocess.run([sys.executable, "-m", "foresight.cli", "run", "publish", "--config", str(config)],
                         env={**_cli_env(home, tmp_path), **prefect_api_env}, capture_output=True, text=True,
                         timeout=600)
    output = run.stdout + run.stderr
    lines = _lines(output)
    assert run.returncode != 0, output
    assert "Traceback" not in output and PASSWORD not in output, output
    assert len(lines) <= 2, f"{len(lines)} lines:\n{output}"
    assert lines[-2].startswith("error: ") and ("127.0.0.1" in lines[-2] or "store" in lines[-2].lower()), output
    assert lines[-1].startswith("hint: "), output


def test_a_bad_config_is_two_lines_before_any_server_starts(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("forecast:\n  horizon: 24\nhorizn: 5\n")  # a typo'd top-level key
    run = subprocess.run([sys.executable, "-m", "foresight.cli", "run", "train", "--config", str(config)],
                         env=_cli_env(tmp_path / "home", tmp_path), capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    lines = _lines(output)
    assert run.returncode != 0 and "Traceback" not in output, output
    assert len(lines) <= 2 and lines[0].startswith("error: ") and "horizn" in lines[0], output
    assert not (tmp_path / "prefect").exists(), "the config was checked before Prefect started"


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the server process through /proc")
def test_sigterm_during_a_run_stops_the_prefect_server_it_started(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with open(log, "wb") as out:  # a file, not a pipe: an orphaned server would hold a pipe open
        run = subprocess.Popen([sys.executable, "-m", "foresight.cli", "run", "ingest"],
                               env=_cli_env(tmp_path / "home", tmp_path), stdout=out, stderr=subprocess.STDOUT)
    server = None
    try:
        deadline = time.monotonic() + 180
        while server is None and time.monotonic() < deadline and run.poll() is None:
            server = next((pid for pid in _children(run.pid) if "uvicorn" in _cmdline(pid)), None)
            time.sleep(0.2)
        assert server is not None, f"no Prefect server process appeared:\n{log.read_text()}"
        args = _cmdline(server)
        port = args[args.index("--port") + 1]
        while time.monotonic() < deadline:  # up: the flow run is being created or running now
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        gone_by = time.monotonic() + 15
        while _alive(server) and time.monotonic() < gone_by:
            time.sleep(0.2)
        output = log.read_text()
        assert not _alive(server), f"the Prefect server (pid {server}) outlived the killed run:\n{output}"
        assert run.returncode == 128 + signal.SIGTERM, output
        assert "error: stopped by SIGTERM" in output and "Traceback" not in output, output
    finally:
        if run.poll() is None:
            run.kill()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
