"""Print a :class:`bench.detection.DetectionRun`: one row per corpus, worst first, systems side by side."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.detection import BASELINES, FORESIGHT, NAB, SYSTEMS, DetectionRun

HEADERS = {FORESIGHT: "Foresight", "robust_z": "robust z", "robust_z_nms": "robust z + NMS"}


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN is a missing value in the frame


def _pct(value: Any) -> str:
    return f"{100 * value:.0f}%" if _present(value) else "n/a"


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return fmt.format(value) if _present(value) else "n/a"


def incident_cell(row: dict[str, Any]) -> str:
    """``detected/faults, FA/day, AC@1, AC@3, type, median delay`` in one cell."""
    delay = row.get("median_delay_seconds")
    return (f"{row['detected']}/{row['faults']} {_num(row['false_alarms_per_day'])}/d "
            f"{_pct(row['ac_at_1'])} {_pct(row['ac_at_3'])} {_pct(row['fault_type_accuracy'])} "
            f"{_num(delay, '{:.0f}s')}")


def nab_cell(row: dict[str, Any]) -> str:
    """``standard (low FP / low FN) | standard at the untuned threshold``."""
    return (f"{row['nab_standard']:.1f} ({row['nab_low_fp']:.1f}/{row['nab_low_fn']:.1f}) "
            f"| {row['nab_standard_fixed']:.1f}")


def render_detection(console: Console, result: DetectionRun, budget: float) -> None:
    """The summary table, the set-aside line and the leave-one-corpus-out choices."""
    frame = result.frame()
    by = {(r["corpus"], r["system"]): r for r in frame.to_dict("records")}
    systems = [s for s in SYSTEMS if any(k[1] == s for k in by)]
    table = Table(title="Detection on every dev corpus, worst first", box=box.SIMPLE_HEAD)
    table.add_column("corpus", no_wrap=True)
    table.add_column("objective", justify="right")
    for s in systems:
        table.add_column(HEADERS[s], no_wrap=True)
    for corpus in result.order:
        cells = []
        for s in systems:
            row = by.get((corpus, s))
            cells.append("" if row is None else nab_cell(row) if result.kinds[corpus] == NAB else incident_cell(row))
        objectives = "/".join(_num(by[(corpus, s)]["objective"], "{:.2f}") for s in systems if (corpus, s) in by)
        table.add_row(corpus, objectives, *cells)
        aside = [by.get((corpus, s), {}) for s in systems]
        if any(_present(r.get("false_alarms_set_aside")) for r in aside):
            table.add_row("  gaps set aside",
                          "/".join(_num(r.get("objective_gaps_aside"), "{:.2f}") for r in aside),
                          *(f"{int(r['false_alarms_set_aside'])} FA aside: "
                            f"{_num(r.get('false_alarms_per_day_gaps_aside'))}/d"
                            if _present(r.get("false_alarms_set_aside")) else "" for r in aside))
    console.print(table)
    console.print("incident cells: detected/faults, false alarms per day, AC@1, AC@3, fault-type accuracy, "
                  "median delay (baselines raise no category: type n/a). NAB cells: standard (low FP/low FN) at "
                  "the threshold NAB optimises on the corpus | standard at an untuned threshold (Foresight: "
                  "production; baselines: leave-one-corpus-out).")
    console.print(f"objective (per system, same order): NAB standard / 100 at the untuned threshold; incidents: "
                  f"recall x min(1, {budget:g} / false alarms per day).")
    for s in BASELINES:
        if s in result.choices:
            picks = ", ".join(f"{c}: z >= {ch.setting:g} (others {ch.others_objective:.2f}, held out "
                              f"{ch.held_out_objective:.2f})" for c, ch in result.choices[s].items())
            console.print(f"{HEADERS[s]} threshold chosen without the corpus: {picks}")
