"""``foresight bench scale-out``: the forecast flow's per-block work on a synthetic fleet, on a local
Dask cluster of each worker count given."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from foresight.cli.runtime import console

commands = typer.Typer()  # joined into ``foresight bench`` (foresight.cli.bench)
# Each command imports its benchmark inside its body, so ``--help`` need not wait for it.


def parse_workers(text: str) -> list[int]:
    """``"1,2,4"`` as ``[1, 2, 4]``; a clear error for anything else."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give worker counts separated by commas, e.g. 1,2,4") from None
    if not counts or min(counts) < 1:
        raise typer.BadParameter(f"{text!r}: give at least one worker count, each >= 1")
    return counts


@commands.command("scale-out")
def bench_scale_out(
    series: int = typer.Option(20_000, min=1, help="Series in the synthetic fleet."),
    workers: str = typer.Option("1,2,4", help="Worker counts to run, comma-separated (a fresh cluster each)."),
    block_size: int = typer.Option(1000, min=1, help="Series per task (blocks hold this to twice as many)."),
    min_days: int = typer.Option(14, min=1, help="Shortest series' history, days."),
    max_days: int = typer.Option(28, min=1, help="Longest series' history, days."),
    step_minutes: int = typer.Option(15, min=1, help="Raw sample step, minutes (resampled to forecast.freq)."),
    seed: int = typer.Option(7, help="Fleet seed."),
) -> None:
    """Backtest, choose and forecast every series of a synthetic fleet on a local Dask cluster of
    each worker count, sharded by series blocks; print wall time, series/s, CPU-seconds per series
    and each worker's peak memory."""
    counts = parse_workers(workers)
    from bench.scale_fleet import FleetShape  # lazy: keeps `foresight --help` fast
    from bench.scale_out import run  # lazy: keeps `foresight --help` fast

    try:
        shape = FleetShape(min_days=min_days, max_days=max_days, step_minutes=step_minutes, seed=seed)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    caption = (f"{len(os.sched_getaffinity(0))} CPU cores for this process; speed-up: against the 1-worker run; "
               "cores busy: CPU-seconds / wall, below the worker count when other work competes")
    table = Table(title=f"Scale-out: {series:,} series ({min_days}-{max_days} days at {step_minutes} min), "
                        f"blocks of {block_size:,}+ series", caption=caption)
    for column in ("workers", "blocks", "start s", "wall s", "series/s", "speed-up", "CPU s/series",
                   "cores busy", "peak MiB per worker"):
        table.add_column(column, justify="right")
    one_worker = None  # the 1-worker run's wall time: the speed-up's reference
    for fig in run(series, counts, block_size, shape):
        if fig.workers == 1 and one_worker is None:
            one_worker = fig.wall_seconds
        speedup = f"{one_worker / fig.wall_seconds:.2f}x" if one_worker else "-"
        peaks = ", ".join(f"{v:,.0f}" for v in sorted(fig.peak_rss_mib.values(), reverse=True))
        table.add_row(str(fig.workers), str(fig.blocks), f"{fig.startup_seconds:.1f}", f"{fig.wall_seconds:.1f}",
                      f"{fig.series_per_second:,.1f}", speedup, f"{fig.cpu_seconds_per_series:.4f}",
                      f"{fig.cores_busy:.2f}", peaks)
        console.print(f"{fig.workers} worker(s): wall {fig.wall_seconds:.1f} s, {fig.series_per_second:,.1f} series/s, "
                      f"{fig.cpu_seconds_per_series:.4f} CPU s/series, {fig.cores_busy:.2f} cores busy, "
                      f"peak MiB {peaks}; "
                      f"models {dict(sorted(fig.choices.items(), key=lambda kv: -kv[1]))}")
    console.print(table)
