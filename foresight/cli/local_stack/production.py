"""The production profile on loopback: the backends a production deployment runs on, started here.

- S3 (moto_server): the lake bucket and the MLflow artifact bucket
- MLflow tracking server: runs and registry in PostgreSQL, artifacts in S3 (the server uploads and
  serves them: clients need no S3 credentials for models)
- Prefect server on PostgreSQL, a ``process`` work pool and a worker polling it (with its health
  endpoint), whose flow runs get the settings below in their environment
- the forecast store in PostgreSQL

PostgreSQL itself is not started: the profile uses a running server (``pg_url``, an account that
may create databases) and creates its three databases there if they are missing. They outlive
``down``; moto's buckets do not (moto keeps memory only), so a profile brought up again starts with
an empty lake and MLflow runs whose artifacts are gone: use a new ``prefix`` or drop the databases.

Servers are kept like the development stack's (:class:`~foresight.cli.local_stack.supervisor.Supervisor`,
under ``$FORESIGHT_HOME/stack-production``), started with the same launcher. What a user (or
``prefect deploy``) needs in the environment is :meth:`ProductionStack.client_env`; ``up`` writes it
to ``production.env`` in the state folder.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from foresight.cli.local_stack.launcher import ServiceSpec, StackError
from foresight.cli.local_stack.servers import find_binary, moto_spec
from foresight.cli.local_stack.supervisor import ServiceStatus, Supervisor

STATE_DIR = "stack-production"
ENV_FILE = "production.env"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# moto accepts any key; these are what the profile's servers and clients are given.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# Start order; ``down`` stops in reverse (the worker before the server it polls).
SERVICES = ("moto", "mlflow", "prefect", "worker")


@dataclass(frozen=True)
class ProductionPorts:
    """Loopback ports: MLflow's and Prefect's usual ones; S3 beside the dev stack's moto (5055)."""

    s3: int = 5056
    mlflow: int = 5000
    prefect: int = 4200
    worker: int = 8081  # the worker's health endpoint


@dataclass(frozen=True)
class ProductionProfile:
    """What the profile runs on: the PostgreSQL server, the checkout the worker runs flows from, and
    ``prefix``, which names its databases (``<prefix>_prefect`` ...) and buckets (``<prefix>-lake`` ...)."""

    home: Path
    project_dir: Path
    pg_url: str = DEFAULT_PG_URL
    prefix: str = "foresight"
    ports: ProductionPorts = field(default_factory=ProductionPorts)
    work_pool: str = "foresight"  # prefect.yaml's
    ui: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", self.prefix):
            raise StackError(f"production profile: prefix {self.prefix!r} must be lower-case letters, digits "
                             "and '_', starting with a letter, at most 40 (it names databases and buckets)")

    def database(self, role: str) -> str:
        return f"{self.prefix}_{role}"

    def bucket(self, role: str) -> str:
        return f"{self.prefix.replace('_', '-')}-{role}"

    def database_url(self, role: str, driver: str) -> str:
        """The SQLAlchemy URL of the profile's ``role`` database through ``driver`` (asyncpg, psycopg)."""
        from sqlalchemy.engine import make_url  # lazy: keeps `foresight --help` fast

        url = make_url(self.pg_url).set(drivername=f"postgresql+{driver}", database=self.database(role))
        return url.render_as_string(hide_password=False)

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.prefect}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    @property
    def lake_url(self) -> str:
        return (f"s3://{self.bucket('lake')}/lake?endpoint_override=127.0.0.1:{self.ports.s3}"
                f"&scheme=http&region={S3_CREDENTIALS['AWS_DEFAULT_REGION']}")


def client_env(profile: ProductionProfile) -> dict[str, str]:
    """The environment a flow run, ``prefect deploy`` or a user's shell needs to use the profile."""
    return {
        "PREFECT_API_URL": profile.prefect_api,
        "FORESIGHT_LAKE_URL": profile.lake_url,
        "FORESIGHT_MLFLOW__TRACKING_URI": profile.mlflow_url,
        "FORESIGHT_SINKS__FORECAST_STORE_URL": profile.database_url("forecasts", "psycopg"),
        **S3_CREDENTIALS,
    }


def service_specs(profile: ProductionProfile, state: Path) -> dict[str, ServiceSpec]:
    """The profile's servers by name (:data:`SERVICES`), each with the environment it runs with."""
    bin_dir = Path(sys.executable).parent  # the locked mlflow and prefect beside this interpreter
    moto = find_binary("moto_server") or "moto_server"
    ports = profile.ports
    s3 = moto_spec(moto, ports.s3)
    mlflow = ServiceSpec("mlflow", (
        str(bin_dir / "mlflow"), "server", "--backend-store-uri", profile.database_url("mlflow", "psycopg"),
        "--artifacts-destination", f"s3://{profile.bucket('artifacts')}/mlflow",
        "--host", "127.0.0.1", "--port", str(ports.mlflow), "--workers", "1",
    ), health_url=f"{profile.mlflow_url}/health", env={
        "MLFLOW_S3_ENDPOINT_URL": profile.s3_endpoint, **S3_CREDENTIALS,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no GenAI job runner and its consumers
    })
    prefect = ServiceSpec("prefect", (
        str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(ports.prefect),
    ), health_url=f"{profile.prefect_api}/health", env={
        "PREFECT_HOME": str(state / "prefect-server"),
        "PREFECT_API_DATABASE_CONNECTION_URL": profile.database_url("prefect", "asyncpg"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true" if profile.ui else "false",
    })
    worker = ServiceSpec("worker", (
        str(bin_dir / "prefect"), "worker", "start", "--pool", profile.work_pool, "--type", "process",
        "--with-healthcheck",
    ), health_url=f"http://127.0.0.1:{ports.worker}/health", env={
        **client_env(profile),
        "PREFECT_HOME": str(state / "prefect-worker"),
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(ports.worker),
        "FORESIGHT_PROJECT_DIR": str(profile.project_dir.resolve()),
        "FORESIGHT_HOME": str(profile.home.resolve()),
    })
    return {"moto": s3, "mlflow": mlflow, "prefect": prefect, "worker": worker}


def env_file_text(env: dict[str, str]) -> str:
    """``export NAME=value`` lines a shell can source."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


@dataclass
class ProductionStack:
    """The production profile's servers under ``home/stack-production``: start, inspect, stop."""

    profile: ProductionProfile

    @classmethod
    def from_state(cls, home: Path) -> ProductionStack:
        """The profile as last started under ``home``; raises :class:`StackError` when there is none."""
        saved = Path(home) / STATE_DIR / "profile.json"
        if not saved.exists():
            raise StackError(f"no production profile was started under {home} ({saved} is missing)")
        record = json.loads(saved.read_text())
        record["ports"] = ProductionPorts(**record["ports"])
        for key in ("home", "project_dir"):
            record[key] = Path(record[key])
        return cls(ProductionProfile(**record))

    @property
    def state(self) -> Path:
        return self.profile.home / STATE_DIR

    @property
    def _supervisor(self) -> Supervisor:
        return Supervisor(self.state)

    @property
    def specs(self) -> dict[str, ServiceSpec]:
        return service_specs(self.profile, self.state)

    @property
    def env_file(self) -> Path:
        return self.state / ENV_FILE

    def status(self) -> list[ServiceStatus]:
        specs = self.specs
        return self._supervisor.status([specs[name] for name in SERVICES])

    def save_state(self) -> None:
        """The profile (for ``status`` and ``down``) and the env file (for users) in the state folder."""
        self.state.mkdir(parents=True, exist_ok=True)
        record = {**asdict(self.profile), "home": str(self.profile.home), "project_dir": str(self.profile.project_dir)}
        (self.state / "profile.json").write_text(json.dumps(record))
        self.env_file.write_text(env_file_text(client_env(self.profile)))

    def up(self, *, timeout: float = 120.0) -> list[str]:
        """Create the databases, start S3 and its buckets, then MLflow and Prefect together, then
        the work pool and its worker; wait until each answers. Returns the servers started."""
        if find_binary("moto_server") is None:
            raise StackError("production profile: moto_server is missing (pip install 'moto[server]')")
        self.save_state()
        create_databases(self.profile)
        specs, supervisor = self.specs, self._supervisor
        started = supervisor.start([[specs["moto"]]], timeout=timeout)
        try:
            create_buckets(self.profile)
            started += supervisor.start([[specs["mlflow"], specs["prefect"]]], timeout=timeout)
            create_work_pool(self.profile)
            started += supervisor.start([[specs["worker"]]], timeout=timeout)
        except BaseException:
            supervisor.stop([name for name in reversed(SERVICES) if name in started], grace=10.0)
            raise
        return started

    def down(self, *, grace: float = 10.0) -> list[str]:
        """Stop the worker, then the servers; returns those that were running. Databases stay."""
        return self._supervisor.stop(list(reversed(SERVICES)), grace=grace)


# -- what the servers need before and after they start -----------------------------------------
def create_databases(profile: ProductionProfile) -> list[str]:
    """Create the profile's databases that do not exist yet; returns those created."""
    from sqlalchemy import create_engine, text  # lazy: keeps `foresight --help` fast
    from sqlalchemy.engine import make_url  # lazy: as above

    admin_url = make_url(profile.pg_url).set(drivername="postgresql+psycopg")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    created = []
    try:
        with engine.connect() as conn:
            existing = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
            for role in ("prefect", "mlflow", "forecasts"):
                name = profile.database(role)
                if name not in existing:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))  # name checked by ProductionProfile
                    created.append(name)
    except Exception as exc:
        raise StackError(f"production profile: cannot create databases on "
                         f"{admin_url.render_as_string()}: {exc}") from exc
    finally:
        engine.dispose()
    return created


def create_buckets(profile: ProductionProfile) -> None:
    """The lake and artifact buckets in the profile's S3."""
    import boto3  # lazy: heavy, and only the production profile needs it

    s3 = boto3.client("s3", endpoint_url=profile.s3_endpoint, region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                      aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for role in ("lake", "artifacts"):
        if profile.bucket(role) not in existing:
            s3.create_bucket(Bucket=profile.bucket(role))


def create_work_pool(profile: ProductionProfile) -> None:
    """The ``process`` work pool prefect.yaml deploys to, with Prefect's default job template
    (an existing pool is kept as it is)."""
    from prefect.workers.process import ProcessWorker  # lazy: Prefect is heavy; only the pool needs it

    body: dict[str, Any] = {"name": profile.work_pool, "type": "process",
            "base_job_template": ProcessWorker.get_default_base_job_template()}
    response = requests.post(f"{profile.prefect_api}/work_pools/", json=body, timeout=30)
    if response.status_code not in (200, 201, 409):  # 409: it exists
        raise StackError(f"production profile: creating work pool {profile.work_pool!r} failed "
                         f"({response.status_code}): {response.text[:500]}")
