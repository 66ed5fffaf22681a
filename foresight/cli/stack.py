"""``foresight stack up | status | down``: the local development stack
(:mod:`foresight.cli.local_stack`), started in the background and inspected from the command line;
``--profile production`` runs the production profile instead
(:mod:`foresight.cli.local_stack.production`: Prefect, MLflow and the forecast store on
PostgreSQL, the lake and model artifacts in S3, a work pool and its worker)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from foresight.cli.runtime import console

# The stack is imported inside each command: it brings pandas and the simulator, which ``--help``
# and a mistyped option should not wait for.
stack_app = typer.Typer(help="A local Prometheus, Kafka (tansu) and CloudWatch (moto) for development; "
                             "--profile production: the production backends on loopback.",
                        no_args_is_help=True)


class Profile(StrEnum):
    dev = "dev"
    production = "production"


PROFILE = typer.Option(Profile.dev, "--profile", help="dev: telemetry servers to ingest from; production: "
                       "Prefect + worker, MLflow, forecast store on PostgreSQL, lake and artifacts in S3 (moto).")


def _stack_home(home: Path | None) -> Path:
    return home or Path(os.environ.get("FORESIGHT_HOME", ".foresight"))


@stack_app.command("up")
def stack_up(
    seed: bool = typer.Option(False, "--seed", help="Load simulated telemetry (Prometheus is backfilled first)."),
    days: int = typer.Option(14, min=1, help="Days of telemetry to seed (train/forecast/detect want about 14)."),
    home: Path = typer.Option(None, help="Stack state lives in HOME/stack (default: FORESIGHT_HOME or .foresight)."),
    prometheus_port: int = typer.Option(9090),
    node_exporter_port: int = typer.Option(9100),
    pushgateway_port: int = typer.Option(9091),
    kafka_port: int = typer.Option(9092),
    moto_port: int = typer.Option(5055),
    timeout: float = typer.Option(60.0, help="Seconds each server may take to become healthy."),
    profile: Profile = PROFILE,
    pg_url: str = typer.Option("postgresql://postgres@127.0.0.1:5432/postgres",
                               help="production: a PostgreSQL account that may create databases."),
    prefix: str = typer.Option("foresight", help="production: names its databases (PREFIX_prefect, "
                               "PREFIX_mlflow, PREFIX_forecasts) and buckets (PREFIX-lake, PREFIX-artifacts)."),
    project_dir: Path = typer.Option(Path("."), help="production: the checkout the worker runs flows from."),
    s3_port: int = typer.Option(5056, help="production: S3 (moto)."),
    mlflow_port: int = typer.Option(5000, help="production"),
    prefect_port: int = typer.Option(4200, help="production"),
    worker_port: int = typer.Option(8081, help="production: the worker's health endpoint."),
) -> None:
    """Start every server that is not running (each in the background) and wait until all answer."""
    if profile is Profile.production:
        _production_up(_stack_home(home), pg_url, prefix, project_dir,
                       (s3_port, mlflow_port, prefect_port, worker_port), max(timeout, 120.0))
        return
    from foresight.cli.local_stack.launcher import StackError  # lazy: keeps `foresight --help` fast
    from foresight.cli.local_stack.stack import LocalStack, StackPorts  # lazy: keeps `foresight --help` fast

    ports = StackPorts(prometheus_port, node_exporter_port, pushgateway_port, kafka_port, moto_port)
    stack = LocalStack(_stack_home(home), ports)
    try:
        report = stack.up(seed_days=days if seed else 0, timeout=timeout)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _print_stack_status(stack)
    if report is not None:
        console.print(f"seeded {report.days} days: {report.prometheus_samples:,} Prometheus samples, "
                      f"{report.cloudwatch_datapoints:,} CloudWatch datapoints, {report.kafka_metric_messages:,} "
                      f"Kafka metric and {report.kafka_log_messages:,} log messages; {report.incidents} "
                      f"incidents in {report.incident_labels}")


@stack_app.command("status")
def stack_status(home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight."),
                 profile: Profile = PROFILE) -> None:
    """Which servers run and answer their health check; exits 1 unless all are up."""
    from foresight.cli.local_stack.stack import LocalStack  # lazy: keeps `foresight --help` fast

    stack = _production(_stack_home(home)) if profile is Profile.production else LocalStack.from_state(_stack_home(home))
    if not all(s.healthy for s in _print_stack_status(stack)):
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down(
    home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight."),
    grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL."),
    profile: Profile = PROFILE,
) -> None:
    """Stop every server of the stack (production: the worker first; its databases stay)."""
    from foresight.cli.local_stack.stack import LocalStack  # lazy: keeps `foresight --help` fast

    stack = _production(_stack_home(home)) if profile is Profile.production else LocalStack.from_state(_stack_home(home))
    stopped = stack.down(grace=grace)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def _production(home: Path) -> Any:
    from foresight.cli.local_stack.launcher import StackError  # lazy: keeps `foresight --help` fast
    from foresight.cli.local_stack.production import ProductionStack  # lazy: as above

    try:
        return ProductionStack.from_state(home)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _production_up(home: Path, pg_url: str, prefix: str, project_dir: Path, ports: tuple[int, int, int, int],
                   timeout: float) -> None:
    from foresight.cli.local_stack.launcher import StackError  # lazy: keeps `foresight --help` fast
    from foresight.cli.local_stack.production import (  # lazy: as above
        ProductionPorts,
        ProductionProfile,
        ProductionStack,
    )

    try:
        stack = ProductionStack(ProductionProfile(home, project_dir, pg_url, prefix, ProductionPorts(*ports)))
        stack.up(timeout=timeout)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _print_stack_status(stack)
    console.print(f"Settings for clients, `prefect deploy` and your shell (`source {stack.env_file}`):")
    typer.echo(stack.env_file.read_text(), nl=False)  # unwrapped: to copy into a shell
    console.print("Then: prefect deploy --all (from the checkout), prefect deployment run ingest/ingest, ...")


def _print_stack_status(stack: Any) -> list[Any]:
    statuses = stack.status()
    table = Table(title=f"stack ({stack.state})")
    for column in ("server", "pid", "health", "address"):
        table.add_column(column)
    for s in statuses:
        table.add_row(s.name, str(s.pid or "-"), "[green]up[/green]" if s.healthy else "[red]down[/red]", s.address)
    console.print(table)
    return statuses
