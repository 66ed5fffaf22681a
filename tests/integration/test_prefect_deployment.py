"""Deploy from prefect.yaml to a real Prefect server, run one deployment through a process worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.servers import free_port, server_process, stop_process

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _prefect(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run([PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wait_for_terminal_state(api: str, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run
        time.sleep(1)
    raise TimeoutError(f"flow run {run_id} did not finish within {timeout}s")


def test_deploy_from_prefect_yaml_and_run_ingest_on_a_process_worker(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # Only the run this test asks for: the schedules in prefect.yaml must not fire here.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        # The worker polls for scheduled runs every 10 s by default; the run is already waiting.
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    for name in ("FORESIGHT_PROJECT_DIR", "FORESIGHT_HOME", "FORESIGHT_CONFIG_FILE", "FORESIGHT_SOURCES"):
        env.pop(name, None)  # deployed with none of them: the worker's host says where things are
    worker_env = {
        **env,
        "FORESIGHT_PROJECT_DIR": str(REPO),
        "FORESIGHT_HOME": str(tmp_path / "foresight"),
        "FORESIGHT_SOURCES": '[{"name": "simulator", "kind": "simulator", "options": {"days": 2}}]',
    }
    server_cmd = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with server_process(server_cmd, health_url=f"{api}/health", log=tmp_path / "server.log", env=env):
        _prefect(["work-pool", "create", "foresight", "--type", "process"], env)
        out = _prefect(["--no-prompt", "deploy", "--all"], env)
        deployments = requests.post(f"{api}/deployments/filter", json={}, timeout=10).json()
        assert {d["name"] for d in deployments} == {"ingest", "train", "forecast-and-plan", "detect", "publish"}, out
        assert all(d["schedules"] for d in deployments), "every deployment carries a schedule"
        concurrency = {d["name"]: (d["global_concurrency_limit"] or {}).get("limit") for d in deployments}
        assert concurrency == dict.fromkeys(concurrency, 1), "one run of each flow at a time"
        assert {d["concurrency_options"]["collision_strategy"] for d in deployments} == {"CANCEL_NEW"}
        for d in deployments:  # no absolute path on the server: the worker resolves the checkout
            assert d["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {
                "directory": "{{ $FORESIGHT_PROJECT_DIR }}"}}], d["name"]
            assert d["job_variables"]["env"] == {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
            assert d["parameters"]["config_file"] == "", "unset at deploy: the worker's settings apply"

        ingest = requests.get(f"{api}/deployments/name/ingest/ingest", timeout=10).json()
        run = requests.post(f"{api}/deployments/{ingest['id']}/create_flow_run", json={}, timeout=10).json()
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "foresight", "--type", "process"],
            cwd=tmp_path, env=worker_env, stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            final = _wait_for_terminal_state(api, run["id"])
        finally:
            stop_process(worker)  # the worker stops before the server it talks to
        logs = (tmp_path / "worker.log").read_text(errors="replace")
        assert final["state"]["type"] == "COMPLETED", f"{final['state']}\n{logs[-4000:]}"
    lake = tmp_path / "foresight" / "lake" / "telemetry"
    assert any(lake.rglob("*.parquet")), "the deployed ingest run wrote the lake"
    shutil.rmtree(tmp_path / "prefect", ignore_errors=True)
