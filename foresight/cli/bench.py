"""``foresight bench``: benchmarks that print figures. The speed ones (``pipeline``, ``ingest``) are
here; the detection and forecasting ones are joined from :mod:`foresight.cli.bench_detection`,
:mod:`foresight.cli.bench_forecast`, :mod:`foresight.cli.bench_scale`, :mod:`foresight.cli.bench_logs` and
:mod:`foresight.cli.bench_stream`, in this order (it is the order ``--help`` lists them in)."""

from __future__ import annotations

import typer
from rich.table import Table

from foresight.cli import bench_detection, bench_forecast, bench_logs, bench_scale, bench_stream
from foresight.cli.runtime import console, quiet_runtime

bench_app = typer.Typer(help="Benchmarks that print figures (speed, memory).", no_args_is_help=True)
# Each command imports its benchmark inside its body, so ``--help`` need not wait for it.


@bench_app.command("pipeline")
def bench_pipeline(
    days: int = typer.Option(21, help="Simulated days (the demo uses 21)."),
    seed: int = typer.Option(7, help="Simulator seed."),
) -> None:
    """Time every embedded pipeline stage on the simulator's fleet; print throughput and peak memory."""
    quiet_runtime()
    from bench.pipeline import peak_memory_mib, run  # lazy: keeps `foresight --help` fast

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
    from bench.pipeline import peak_memory_mib  # lazy: keeps `foresight --help` fast
    from bench.prometheus_ingest import run as run_ingest  # lazy: keeps `foresight --help` fast

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
    console.print(f"peak resident memory: {peak_memory_mib():,.0f} MiB")


for _part in (bench_detection.commands, bench_forecast.commands, bench_scale.commands, bench_logs.commands,
              bench_stream.commands):
    bench_app.registered_commands.extend(_part.registered_commands)
