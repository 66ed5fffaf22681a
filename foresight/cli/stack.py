"""``foresight stack up | status | down``: the local development stack
(:mod:`foresight.cli.local_stack`), started in the background and inspected from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from foresight.cli.runtime import console

# The stack is imported inside each command: it brings pandas and the simulator, which ``--help``
# and a mistyped option should not wait for.
stack_app = typer.Typer(help="A local Prometheus, Kafka (tansu) and CloudWatch (moto) for development.",
                        no_args_is_help=True)


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
) -> None:
    """Start every server that is not running (each in the background) and wait until all answer."""
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
def stack_status(home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight.")) -> None:
    """Which servers run and answer their health check; exits 1 unless all are up."""
    from foresight.cli.local_stack.stack import LocalStack  # lazy: keeps `foresight --help` fast

    stack = LocalStack.from_state(_stack_home(home))
    if not all(s.healthy for s in _print_stack_status(stack)):
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down(
    home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight."),
    grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Stop every server of the stack."""
    from foresight.cli.local_stack.stack import LocalStack  # lazy: keeps `foresight --help` fast

    stopped = LocalStack.from_state(_stack_home(home)).down(grace=grace)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def _print_stack_status(stack: Any) -> list[Any]:
    statuses = stack.status()
    table = Table(title=f"local stack ({stack.state})")
    for column in ("server", "pid", "health", "address"):
        table.add_column(column)
    for s in statuses:
        table.add_row(s.name, str(s.pid or "-"), "[green]up[/green]" if s.healthy else "[red]down[/red]", s.address)
    console.print(table)
    return statuses
