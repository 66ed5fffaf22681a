"""``foresight bench forecast`` and ``bench forecast-score``: forecasts of a long CSV, and their scores
against held-out points or other methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from foresight.cli.runtime import console

commands = typer.Typer()  # joined into ``foresight bench`` (foresight.cli.bench)
# Each command imports its benchmark inside its body, so ``--help`` need not wait for it.


def lead_line(summary: dict[str, float]) -> str:
    """Coverage and pinball per lead bucket present in ``summary`` (``coverage_lead_<bucket>`` ...)."""
    cover, loss = (
        {k.removeprefix(f"{p}_lead_"): v for k, v in summary.items() if k.startswith(f"{p}_lead_")}
        for p in ("coverage", "pinball")
    )
    points = {k.removeprefix("points_lead_"): v for k, v in summary.items() if k.startswith("points_lead_")}
    return "; ".join(f"{b}: coverage {cover[b]:.3f}, pinball {loss[b]:.3f} ({int(points.get(b, 0)):,} points)"
                     for b in cover) or "no scored points"


@commands.command("forecast")
def bench_forecast(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Long CSV unique_id,ds,y (or .csv.gz)."),
    horizon: int = typer.Option(..., "--horizon", min=1, help="Steps to forecast after each series' end."),
    level: int = typer.Option(80, "--level", min=1, max=99, help="Central prediction interval, percent."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write unique_id,ds,yhat,yhat_lower,yhat_upper."),
) -> None:
    """Fit per-series champion selection on all of DATA and write the next HORIZON steps of every series."""
    from bench.forecast import forecast_file  # lazy: keeps `foresight --help` fast
    from bench.pipeline import peak_memory_mib  # lazy: keeps `foresight --help` fast

    try:
        fc, seconds = forecast_file(data, horizon, level, out)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"wrote {len(fc):,} rows ({fc['unique_id'].nunique():,} series x {horizon} steps) to {out}")
    console.print(f"wall time: {seconds:.2f} s; peak resident memory: {peak_memory_mib():,.0f} MiB")


@commands.command("forecast-score")
def bench_forecast_score(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Long CSV unique_id,ds,y (or .csv.gz)."),
    methods: str = typer.Option("foresight,prophet,seasonal_naive", help="Comma-separated methods to compare."),
    level: int = typer.Option(80, "--level", min=1, max=99, help="Central prediction interval, percent."),
    per_series: Path = typer.Option(None, "--per-series", dir_okay=False, help="Optional CSV of per-series scores."),
    forecasts: Path = typer.Option(None, "--forecasts", exists=True, dir_okay=False,
                                   help="Score this forecast file (from `bench forecast`) instead; --data is then "
                                        "its training file and --actuals the held-out points."),
    actuals: Path = typer.Option(None, "--actuals", exists=True, dir_okay=False,
                                 help="Held-out points (unique_id,ds,y) for --forecasts."),
    processes: int = typer.Option(1, "--processes", min=1,
                                  help="Worker processes per method: every method (Prophet and Foresight alike) "
                                       "forecasts its share of the series in this many processes."),
) -> None:
    """Hold out each series' last h points (the capacity-dev protocol) and compare methods in one run;
    or, with --forecasts and --actuals, score a forecast file against held-out actuals."""
    from bench.forecast import compare, read_series, score_file  # lazy: keeps `foresight --help` fast

    if (forecasts is None) != (actuals is None):
        console.print("[red]--forecasts and --actuals go together[/red]")
        raise typer.Exit(2)
    if forecasts is not None and actuals is not None:
        try:
            summary, scored = score_file(data, actuals, forecasts, level)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        console.print(f"{forecasts.name}: {int(summary['n_series'])} series; mean MASE {summary['mase']:.3f}, "
                      f"mean sMAPE {summary['smape']:.2f}, {level}% coverage {summary['coverage']:.3f}, "
                      f"pinball {summary['pinball']:.3f}")
        for group in sorted(k.removeprefix("mase_") for k in summary if k.startswith("mase_")):
            console.print(f"  {group}: MASE {summary[f'mase_{group}']:.3f}, sMAPE {summary[f'smape_{group}']:.2f}, "
                          f"coverage {summary[f'coverage_{group}']:.3f}")
        console.print(f"  by lead: {lead_line(summary)}")
        if per_series is not None:
            scored.to_csv(per_series, index=False)
        return
    try:
        results = compare(read_series(data), [m.strip() for m in methods.split(",") if m.strip()], level, processes)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"{data.name}: last 288/48 points held out, {level}% interval; MASE overall, gcd, long",
                  caption="MiB: the process's peak resident memory after each method (methods run in order)")
    columns = ("method", "MASE", "gcd", "long", "sMAPE", "cover", "pinball", "sec", "MiB")
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=True)
    for r in results:
        s = r.summary
        table.add_row(r.name, f"{s['mase']:.3f}", f"{s.get('mase_gcd', float('nan')):.3f}",
                      f"{s.get('mase_long', float('nan')):.3f}", f"{s['smape']:.2f}", f"{s['coverage']:.3f}",
                      f"{s['pinball']:.3f}", f"{r.seconds:.1f}", f"{r.peak_mib:,.0f}")
    console.print(table)
    for r in results:
        groups = sorted(k.removeprefix("mase_") for k in r.summary if k.startswith("mase_"))
        console.print(f"{r.name}: " + "; ".join(
            f"{g}: MASE {r.summary[f'mase_{g}']:.3f}, sMAPE {r.summary[f'smape_{g}']:.2f}, "
            f"coverage {r.summary[f'coverage_{g}']:.3f}" for g in groups)
            + f"; forecast values outside the history's bounds: {int(r.summary.get('outside_bounds', 0)):,}")
    for r in results:
        console.print(f"{r.name} by lead: {lead_line(r.summary)}")
    for line in goal_lines({r.name: r for r in results}, processes):
        console.print(line)
    if per_series is not None:
        import pandas as pd  # lazy: keeps `foresight --help` fast

        pd.concat([r.per_series.assign(method=r.name) for r in results]).to_csv(per_series, index=False)


def goal_lines(by_name: dict[str, Any], processes: int) -> list[str]:
    """The capacity goals checked on this run's figures: MASE against Prophet and seasonal naive
    per group, and the speed ratio to Prophet measured in this run with the same process count."""
    lines: list[str] = []
    ours = by_name.get("foresight")
    if ours is None:
        return lines
    groups = [k for k in ("mase", "mase_gcd", "mase_long") if k in ours.summary]
    for other, goal in (("prophet", "<= 0.80"), ("seasonal_naive", "< 1")):
        if other in by_name:
            theirs = by_name[other].summary
            ratios = ", ".join(f"{k.removeprefix('mase').strip('_') or 'overall'} {ours.summary[k] / theirs[k]:.2f}"
                               for k in groups if k in theirs)
            lines.append(f"Foresight MASE / {other} MASE: {ratios} (goal {goal} in every group)")
    if "prophet" in by_name:
        theirs_s = by_name["prophet"].seconds
        lines.append(f"in this run, {processes} process(es) per method: Foresight {ours.seconds:.1f} s, "
                     f"per-series Prophet {theirs_s:.1f} s: Foresight is {theirs_s / ours.seconds:.1f}x faster "
                     "(goal >= 20x)")
    return lines
