"""The production profile on loopback: `prefect deploy --all` from prefect.yaml to a Prefect server on
PostgreSQL, then ingest -> train -> forecast -> detect -> publish as deployment runs through the
profile's process worker, and what each run left in each backend: the lake in S3, registered
models with artifacts in S3 behind MLflow on PostgreSQL, forecasts in PostgreSQL, completed flow
runs in Prefect's PostgreSQL.

It also checks what `prefect deploy` stored from prefect.yaml (one run at a time, no absolute
path, nothing set at deploy time), which tests/integration/test_prefect_deployment.py did on a
server of its own before this test replaced it.

Lean on purpose (CI budget): one profile, a six-instance simulated fleet over six days (the fewest
with incidents to label), two cheap forecasters, a day's horizon and one backtest origin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from foresight.cli.local_stack.production import (
    S3_CREDENTIALS,
    ProductionPorts,
    ProductionProfile,
    ProductionStack,
    client_env,
)
from foresight.cli.local_stack.servers import find_binary
from support.postgres import PG_ADMIN_URL, admin_engine, drop_databases
from support.servers import free_port, missing_dependency

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
# The order a day's schedules run them in; each reads what the one before wrote.
DEPLOYMENTS = ("ingest", "train", "forecast-and-plan", "detect", "publish")
FAMILIES = {"capacity-forecaster", "anomaly-detector", "failure-predictor"}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# The worker's settings beyond the profile's backends: a small fleet and cheap models.
LEAN = {
    "FORESIGHT_SOURCES": json.dumps([{"name": "simulator", "kind": "simulator",
                                      "options": {"days": 6, "services_instances": 1}}]),
    "FORESIGHT_FORECAST__MODELS": '["seasonal_naive", "ses"]',
    "FORESIGHT_FORECAST__METRICS": '["cpu_pct", "mem_pct"]',
    "FORESIGHT_FORECAST__HORIZON": "24",
    "FORESIGHT_FORECAST__N_ORIGINS": "1",
    "FORESIGHT_FORECAST__BACKTEST_HORIZON": "24",
    "FORESIGHT_DETECT__LOOKBACK_HOURS": "24",
    "FORESIGHT_DETECT__FAILURE_ORIGINS": "1",
    # Only the runs this test asks for (prefect.yaml's schedules must not fire), picked up at once.
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_WORKER_QUERY_SECONDS": "1",
}


def _run_deployment(api: str, name: str, timeout: float) -> dict:
    deployment = requests.get(f"{api}/deployments/name/{name}/{name}", timeout=10)
    deployment.raise_for_status()
    run = requests.post(f"{api}/deployments/{deployment.json()['id']}/create_flow_run", json={}, timeout=10).json()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = requests.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()
        if state["state"]["type"] in TERMINAL:
            return state
        time.sleep(0.5)
    raise TimeoutError(f"deployment run {name} did not finish within {timeout:.0f}s")


def _check_deployments(deployments: list[dict]) -> None:
    """What prefect.yaml gives every deployment, as the server stored it."""
    assert {d["name"] for d in deployments} == set(DEPLOYMENTS)
    assert all(d["schedules"] for d in deployments), "every deployment carries a schedule"
    concurrency = {d["name"]: (d["global_concurrency_limit"] or {}).get("limit") for d in deployments}
    assert concurrency == dict.fromkeys(concurrency, 1), "one run of each flow at a time"
    assert {d["concurrency_options"]["collision_strategy"] for d in deployments} == {"CANCEL_NEW"}
    for d in deployments:  # no absolute path on the server: the worker resolves the checkout
        assert d["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {
            "directory": "{{ $FORESIGHT_PROJECT_DIR }}"}}], d["name"]
        assert d["job_variables"]["env"] == {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
        assert d["parameters"]["config_file"] == "", "unset at deploy: the worker's settings apply"


def _s3_keys(profile: ProductionProfile, role: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=profile.s3_endpoint, region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                      aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=profile.bucket(role))
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_prefect_yaml_deployments_run_the_pipeline_on_the_production_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if find_binary("moto_server") is None:
        missing_dependency("moto_server is not installed (pip install 'moto[server]')")
    admin_engine().dispose()  # skips (fails in CI) without PostgreSQL
    for name, value in LEAN.items():
        monkeypatch.setenv(name, value)
    for name in ("FORESIGHT_CONFIG_FILE", "FORESIGHT_PROJECT_DIR", "FORESIGHT_HOME", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    profile = ProductionProfile(home=tmp_path / "home", project_dir=REPO, pg_url=PG_ADMIN_URL,
                                prefix=f"e2e_{uuid.uuid4().hex[:10]}",
                                ports=ProductionPorts(*(free_port() for _ in range(4))), ui=False)
    stack = ProductionStack(profile)
    api = profile.prefect_api
    seconds: dict[str, float] = {}
    try:
        started = time.perf_counter()
        stack.up(timeout=180)
        seconds["up"] = time.perf_counter() - started
        assert all(s.healthy for s in stack.status())
        assert stack.env_file.read_text().count("export ") == len(client_env(profile))

        # Deployed as a platform engineer would: the profile's environment, from the checkout.
        deployer = {**os.environ, **client_env(profile), "PREFECT_HOME": str(tmp_path / "deployer")}
        started = time.perf_counter()
        done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=REPO, env=deployer,
                              capture_output=True, text=True, timeout=300)
        seconds["deploy"] = time.perf_counter() - started
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        _check_deployments(requests.post(f"{api}/deployments/filter", json={}, timeout=10).json())

        runs = {}
        for name in DEPLOYMENTS:
            started = time.perf_counter()
            runs[name] = _run_deployment(api, name, timeout=300)
            seconds[name] = time.perf_counter() - started
            worker_log = stack.state.joinpath("worker.log").read_text(errors="replace")
            assert runs[name]["state"]["type"] == "COMPLETED", f"{name}: {runs[name]['state']}\n{worker_log[-5000:]}"

        # Prefect (PostgreSQL): each deployment's run completed, through the pool's worker.
        listed = requests.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        assert {r["id"] for r in listed if r["state"]["type"] == "COMPLETED"} == {r["id"] for r in runs.values()}
        assert {r["work_pool_name"] for r in listed} == {profile.work_pool}

        # The lake (S3): telemetry partitions and the catalogue, nothing on the worker's disk.
        lake = _s3_keys(profile, "lake")
        assert any(k.startswith("lake/telemetry/") and k.endswith(".parquet") for k in lake), lake[:20]
        assert any(k.startswith("lake/catalogue/") for k in lake), lake[:20]
        assert not (profile.home / "lake").exists()

        # MLflow (PostgreSQL + S3): each family registered with a champion whose model files the
        # server put in the artifact bucket.
        from mlflow import MlflowClient

        client = MlflowClient(profile.mlflow_url)
        registered = {m.name: m for m in client.search_registered_models()}
        assert set(registered) == FAMILIES
        artifacts = _s3_keys(profile, "artifacts")
        for name, model in registered.items():
            champion = client.get_model_version(name, model.aliases["champion"])
            model_id = champion.source.removeprefix("models:/")
            assert any(model_id in k and k.endswith("/MLmodel") for k in artifacts), (name, champion.source)
        assert not (profile.home / "mlartifacts").exists()

        # The forecast store (PostgreSQL): forecasts and the plan from the deployed run.
        from sqlalchemy import create_engine, text

        store = create_engine(profile.database_url("forecasts", "psycopg"))
        try:
            with store.connect() as conn:
                forecasts = conn.execute(text("SELECT count(*), count(DISTINCT unique_id) FROM forecasts")).one()
                plans = conn.execute(text("SELECT count(*) FROM capacity_plan")).scalar_one()
        finally:
            store.dispose()
        assert forecasts[0] == forecasts[1] * 24 and forecasts[1] >= 12, forecasts  # 6 instances x 2 metrics
        assert plans > 0
    finally:
        print("production profile seconds:", {k: round(v, 1) for k, v in seconds.items()})
        stopped = stack.down(grace=5)
        drop_databases(profile.database(role) for role in ("prefect", "mlflow", "forecasts"))
    assert stopped[0] == "worker", "the worker stops before the server it polls"
