"""The production profile's servers and settings (foresight.cli.local_stack.production), without
starting them: tests/e2e/test_production_profile.py runs the profile."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.cli.local_stack.launcher import StackError
from foresight.cli.local_stack.production import (
    SERVICES,
    ProductionPorts,
    ProductionProfile,
    ProductionStack,
    client_env,
    env_file_text,
    service_specs,
)
from foresight.cli.local_stack.supervisor import Supervisor
from foresight.settings import load_settings

PORTS = ProductionPorts(s3=7001, mlflow=7002, prefect=7003, worker=7004)


def _profile(tmp_path: Path, **kwargs) -> ProductionProfile:
    values = {"pg_url": "postgresql://ops:pw@db.internal:5433/postgres", "prefix": "acme_prod", "ports": PORTS,
              **kwargs}
    return ProductionProfile(home=tmp_path / "home", project_dir=tmp_path / "checkout", **values)


def test_every_backend_is_the_production_one(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    specs = service_specs(profile, tmp_path / "state")
    assert list(specs) == list(SERVICES) == ["moto", "mlflow", "prefect", "worker"]
    mlflow = specs["mlflow"].args
    assert mlflow[mlflow.index("--backend-store-uri") + 1] == "postgresql+psycopg://ops:pw@db.internal:5433/acme_prod_mlflow"
    assert mlflow[mlflow.index("--artifacts-destination") + 1] == "s3://acme-prod-artifacts/mlflow"
    assert specs["mlflow"].env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:7001"
    assert specs["prefect"].env["PREFECT_API_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://ops:pw@db.internal:5433/acme_prod_prefect")
    worker = specs["worker"]
    assert worker.args[worker.args.index("--pool") + 1] == "foresight"  # prefect.yaml's pool
    assert worker.health_url == "http://127.0.0.1:7004/health"
    assert worker.env["FORESIGHT_PROJECT_DIR"] == str((tmp_path / "checkout").resolve())


def test_the_worker_runs_flows_on_the_profiles_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = client_env(_profile(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # what a flow run started by the worker reads
    assert settings.lake_location.startswith("s3://acme-prod-lake/lake?endpoint_override=127.0.0.1:7001")
    assert settings.tracking_uri == "http://127.0.0.1:7002"
    assert settings.artifact_location.startswith("mlflow-artifacts:/")  # into S3 through the server
    assert settings.forecast_store_url == "postgresql+psycopg://ops:pw@db.internal:5433/acme_prod_forecasts"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:7003/api"


def test_the_env_file_is_what_a_shell_sources(tmp_path: Path) -> None:
    env = client_env(_profile(tmp_path))
    script = env_file_text(env) + "".join(f'printf "%s\\n" "${name}"\n' for name in env)
    printed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.splitlines() == list(env.values())
    assert "export FORESIGHT_LAKE_URL=" + shlex.quote(env["FORESIGHT_LAKE_URL"]) in env_file_text(env)


@pytest.mark.parametrize("prefix", ["", "Foresight", "a-b", "1st", "x;drop", "a" * 41])
def test_a_prefix_that_cannot_name_databases_and_buckets_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(StackError, match="prefix"):
        _profile(tmp_path, prefix=prefix)


def test_down_stops_the_worker_before_the_server_it_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(Supervisor, "read_pid", lambda self, name: asked.append(name))
    ProductionStack(_profile(tmp_path)).down()
    assert asked == ["worker", "prefect", "mlflow", "moto"]


def test_status_and_down_find_the_profile_up_saved(tmp_path: Path) -> None:
    stack = ProductionStack(_profile(tmp_path, ui=False))
    stack.save_state()
    assert ProductionStack.from_state(tmp_path / "home").profile == stack.profile
    assert stack.env_file.read_text() == env_file_text(client_env(stack.profile))


def test_status_and_down_need_a_profile_that_was_started(tmp_path: Path) -> None:
    runner = CliRunner()
    for command in ("status", "down"):
        result = runner.invoke(app, ["stack", command, "--profile", "production", "--home", str(tmp_path)])
        assert result.exit_code == 1, result.output
        assert "no production profile was started" in result.output
