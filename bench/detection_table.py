"""Print a :class:`bench.detection.DetectionRun`: one row per corpus, worst first, systems side by side."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.detection import FORESIGHT, SYSTEMS, DetectionRun
from bench.detection_corpora import NAB

HEADERS = {FORESIGHT: "Foresight", "robust_z": "robust z", "robust_z_nms": "robust z + NMS"}


def _setting(setting: Any) -> str:
    return f"z >= {setting:g}" if isinstance(setting, int | float) else json.dumps(setting, sort_keys=True)


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN is a missing value in the frame


def _pct(value: Any) -> str:
    return f"{100 * value:.0f}%" if _present(value) else "n/a"


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return fmt.format(value) if _present(value) else "n/a"


def incident_cell(row: dict[str, Any]) -> str:
    """Detected/faults and false alarms per day; AC@1 and AC@3; fault type and median delay; the
    objective (three-four short lines, so three systems fit 80 columns)."""
    delay = row.get("median_delay_seconds")
    return (f"{int(row['detected'])}/{int(row['faults'])} {_num(row['false_alarms_per_day'])}/d\n"
            f"AC {_pct(row['ac_at_1'])} {_pct(row['ac_at_3'])}\n"
            f"type {_pct(row['fault_type_accuracy'])} {_num(delay, '{:.0f}s')}\n"
            f"obj {_num(row['objective'], '{:.2f}')}")


def nab_cell(row: dict[str, Any]) -> str:
    """Standard, low FP / low FN at the corpus-optimised threshold; standard at an untuned one."""
    return (f"std {row['nab_standard']:.1f}\n"
            f"FP/FN {row['nab_low_fp']:.1f}/{row['nab_low_fn']:.1f}\n"
            f"untuned {row['nab_standard_fixed']:.1f}\n"
            f"obj {_num(row['objective'], '{:.2f}')}")


def render_detection(console: Console, result: DetectionRun, budget: float) -> None:
    """The summary table, the set-aside line and the leave-one-out choices."""
    frame = result.frame()
    by = {(r["corpus"], r["system"]): r for r in frame.to_dict("records")}
    systems = [s for s in SYSTEMS if any(k[1] == s for k in by)]
    table = Table(title="Detection on every dev corpus, worst first", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("corpus", no_wrap=True)
    for s in systems:
        table.add_column(HEADERS[s], no_wrap=True)
    for corpus in result.order:
        cells = []
        for s in systems:
            row = by.get((corpus, s))
            cells.append("" if row is None else nab_cell(row) if result.kinds[corpus] == NAB else incident_cell(row))
        table.add_row(corpus, *cells, end_section=True)
        aside = [by.get((corpus, s), {}) for s in systems]
        if any(_present(r.get("false_alarms_set_aside")) for r in aside):
            table.add_row("  cadence gaps\n  set aside",
                          *(f"-{int(r['false_alarms_set_aside'])} FA: {_num(r.get('false_alarms_per_day_gaps_aside'))}"
                            f"/d\nobj {_num(r.get('objective_gaps_aside'), '{:.2f}')}"
                            if _present(r.get("false_alarms_set_aside")) else "" for r in aside),
                          end_section=True)
    console.print(table)
    console.print("Incidents: detected within 5 min / faults, false alarms per day (/d), AC@1 and AC@3 (AC), "
                  "fault-type accuracy (the baselines raise no category: n/a), median delay. NAB: standard, low-FP and "
                  "low-FN profiles at the threshold NAB optimises on the corpus; 'untuned': standard at a "
                  "threshold not chosen on it (Foresight: production; baselines: leave-one-out).")
    console.print(f"obj: NAB standard / 100 untuned; incidents: recall x min(1, {budget:g} / false alarms per day). "
                  "Corpora are ordered by Foresight's obj.")
    for s in SYSTEMS:
        if s in result.choices:
            picks = ", ".join(f"{c}: {_setting(ch.setting)} (others {ch.others_objective:.2f}, held out "
                              f"{ch.held_out_objective:.2f})" for c, ch in result.choices[s].items())
            console.print(f"{HEADERS[s]}: setting chosen without the held-out part: {picks}")
