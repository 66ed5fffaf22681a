"""The ``foresight`` command: run the demo, run one flow, inspect what a run produced."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Foresight: forecasts, capacity plans and incidents from your telemetry.",
                  no_args_is_help=True, add_completion=False)
console = Console()

FLOWS = ("ingest", "train", "forecast", "detect", "publish")  # the demo's stages, in order


def _quiet_runtime() -> None:
    """Embedded defaults for a local run: no telemetry, Prefect logs only warnings."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _flow(name: str) -> Any:
    from flows.registry import flow_by_name

    try:
        return flow_by_name(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


@app.command()
def demo(
    home: Path = typer.Option(None, help="Where everything is written (default: .foresight or FORESIGHT_HOME)."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
) -> None:
    """Run the whole pipeline on the built-in telemetry simulator, with no servers to set up."""
    _quiet_runtime()
    if home is not None:
        os.environ["FORESIGHT_HOME"] = str(home)
    from foresight.settings import load_settings

    settings = load_settings(config)
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("pipeline", total=len(FLOWS))
        for name in FLOWS:
            progress.update(task, description=f"[bold]{name}[/bold]")
            kwargs: dict[str, Any] = {"config_file": str(config) if config else None}
            if name == "publish":
                kwargs["detect_summary"] = results.get("detect")
            stage_started = time.perf_counter()
            results[name] = _flow(name)(**kwargs)
            timings[name] = time.perf_counter() - stage_started
            progress.advance(task)
    elapsed = time.perf_counter() - started
    from flows.summary import render_summary

    render_summary(console, results, settings, elapsed, timings)


@app.command()
def run(
    flow: str = typer.Argument(..., help=f"One of: {', '.join(FLOWS + ('pipeline',))}."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
) -> None:
    """Run one flow (or the whole pipeline) once, in-process."""
    _quiet_runtime()
    fn = _flow(flow)
    result = fn(config_file=str(config) if config else None)
    table = Table(title=f"{flow} result")
    table.add_column("key")
    table.add_column("value")
    for key, value in (result.items() if isinstance(result, dict) else enumerate(result)):
        table.add_row(str(key), str(value)[:200])
    console.print(table)


bench_app = typer.Typer(help="Benchmarks that print figures (speed, memory).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("pipeline")
def bench_pipeline(
    days: int = typer.Option(21, help="Simulated days (the demo uses 21)."),
    seed: int = typer.Option(7, help="Simulator seed."),
) -> None:
    """Time every embedded pipeline stage on the simulator's fleet; print throughput and peak memory."""
    _quiet_runtime()
    from bench.pipeline import peak_memory_mib, run

    table = Table(title=f"Foresight pipeline benchmark ({days} simulated days, seed {seed})")
    for column in ("stage", "seconds", "items", "per second"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for fig in run(days=days, seed=seed):
        table.add_row(fig.stage, f"{fig.seconds:.2f}", f"{fig.items:,} {fig.unit}", f"{fig.rate:,.0f} {fig.unit}/s")
    console.print(table)
    console.print(f"peak resident memory: {peak_memory_mib():,.0f} MiB")


@bench_app.command("ingest")
def bench_ingest(
    series: int = typer.Option(1000, help="Series to backfill into a throwaway local Prometheus."),
    days: int = typer.Option(7, help="Days of 1-minute samples per series."),
) -> None:
    """Prometheus source + lake upsert against plain HTTP + JSON decoding of the same queries."""
    from bench.prometheus_ingest import run as run_ingest

    figures = run_ingest(series, days)
    table = Table(title=f"Prometheus ingest: {figures.samples:,} samples ({series} series x {days} days at 1 min)")
    for column in ("client", "seconds", "samples per second"):
        table.add_column(column, justify="left" if column == "client" else "right")
    table.add_row("Foresight fetch + lake upsert", f"{figures.foresight_seconds:.2f}", f"{figures.foresight_rate:,.0f}")
    table.add_row("  of which fetch", f"{figures.fetch_seconds:.2f}", "")
    table.add_row("plain requests + json", f"{figures.plain_seconds:.2f}", f"{figures.plain_rate:,.0f}")
    console.print(table)
    console.print(f"Foresight takes {figures.foresight_seconds / figures.plain_seconds:.2f}x the plain fetch's time "
                  "(goal: at most 1.3x)")
    console.print(f"peak resident memory: {_peak_mib():,.0f} MiB")


def _peak_mib() -> float:
    from bench.pipeline import peak_memory_mib

    return peak_memory_mib()


stack_app = typer.Typer(help="A local Prometheus, Kafka (tansu) and CloudWatch (moto) for development.",
                        no_args_is_help=True)
app.add_typer(stack_app, name="stack")


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
    from foresight.stack import LocalStack, StackError, StackPorts

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
    from foresight.stack import LocalStack

    stack = LocalStack.from_state(_stack_home(home))
    if not all(s.healthy for s in _print_stack_status(stack)):
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down(
    home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight."),
    grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Stop every server of the stack."""
    from foresight.stack import LocalStack

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


@app.command()
def settings(config: Path = typer.Option(None, "--config", help="Optional YAML settings file.")) -> None:
    """Print the effective settings (secrets masked)."""
    from foresight.settings import load_settings

    console.print_json(data=load_settings(config).redacted())


if __name__ == "__main__":
    app()
