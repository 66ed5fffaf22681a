"""``foresight bench logparse``: the log template miner on Loghub-2.0-layout folders, scored per system."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from foresight.cli.runtime import console

commands = typer.Typer()  # joined into ``foresight bench`` (foresight.cli.bench)


@commands.command("logparse")
def bench_logparse(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="Folder of <S>/<S>_2k.log systems."
    ),
    out: Path = typer.Option(
        ..., "--out", file_okay=False, help="Where to write <S>.csv (LineId,EventId,EventTemplate)."
    ),
    log_format: str = typer.Option(
        None,
        "--format",
        help="Header format for every system, Loghub notation "
        "(e.g. '<Date> <Time> <Level>: <Content>'); default: the protocol's, else a guess.",
    ),
    loso: bool = typer.Option(
        False,
        "--loso",
        help="Also choose the settings leave-one-system-out and print "
        "the held-out figures (needs every system's truth).",
    ),
    speed_lines: int = typer.Option(
        100_000, "--speed-lines", min=0, help="Lines for the throughput run (0: skip)."
    ),
) -> None:
    """Mine templates of every system under DATA, write them to OUT, print GA / PA / FGA beside baselines."""
    from bench.logparse import leave_one_system_out, run, throughput  # lazy: keeps `foresight --help` fast

    try:
        results = run(data, out, log_format=log_format)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    parsers = list(dict.fromkeys(r.parser for r in results))
    table = Table(title=f"Log parsing on {data} (worst GA first; lines/s of one cold pass)")
    for column in ("system", "parser", "GA", "PA", "FGA", "templates", "true", "lines/s"):
        table.add_column(column, justify="left" if column in ("system", "parser") else "right")
    ours = sorted(
        (r for r in results if r.parser == "foresight"), key=lambda r: r.scores.ga if r.scores else 2.0
    )
    for r in ours:
        s = r.scores
        cells = (
            ("-", "-", "-", "-")
            if s is None
            else (f"{s.ga:.3f}", f"{s.pa:.3f}", f"{s.fga:.3f}", str(s.true_groups))
        )
        table.add_row(
            r.system, r.parser, *cells[:3], str(r.templates), cells[3], f"{r.lines_per_second:,.0f}"
        )
    for parser in parsers:
        scored = [r.scores for r in results if r.parser == parser and r.scores is not None]
        if scored:
            n = len(scored)
            table.add_row(
                f"mean of {n}",
                parser,
                f"{sum(s.ga for s in scored) / n:.3f}",
                f"{sum(s.pa for s in scored) / n:.3f}",
                f"{sum(s.fga for s in scored) / n:.3f}",
                "",
                "",
                "",
            )
    console.print(table)
    console.print(f"wrote {len(ours)} file(s) to {out}")
    if loso:
        held, best = leave_one_system_out(data)
        console.print("leave-one-system-out (each system scored with the setting best on the others):")
        for h in held:
            console.print(
                f"  {h.system}: depth {h.chosen.depth}, similarity {h.chosen.similarity}, "
                f"count_wildcards {h.chosen.count_wildcards} -> GA {h.scores.ga:.3f} PA {h.scores.pa:.3f} "
                f"FGA {h.scores.fga:.3f}"
            )
        n = len(held)
        console.print(
            f"  held-out mean: GA {sum(h.scores.ga for h in held) / n:.3f} "
            f"PA {sum(h.scores.pa for h in held) / n:.3f} FGA {sum(h.scores.fga for h in held) / n:.3f}; "
            f"best on all: depth {best.depth}, similarity {best.similarity}, "
            f"count_wildcards {best.count_wildcards}"
        )
    if speed_lines:
        lines, rate, per_cpu = throughput(data, min_lines=speed_lines)
        console.print(
            f"TemplateMiner.add: {rate:,.0f} lines/s, {per_cpu:,.0f} lines per CPU-second, over {lines:,} "
            "lines (one core; digits rotated per loop)"
        )
