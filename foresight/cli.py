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


@app.command()
def settings(config: Path = typer.Option(None, "--config", help="Optional YAML settings file.")) -> None:
    """Print the effective settings (secrets masked)."""
    from foresight.settings import load_settings

    console.print_json(data=load_settings(config).redacted())


if __name__ == "__main__":
    app()
