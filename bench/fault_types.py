"""Fault types on simulated fleets: does the stream name the fault the simulator injected?

``foresight bench fault-types`` generates each seed's fleet, replays its whole history through
:class:`models.incidents.stream.IncidentStream` with the simulator's call graph, and matches every
ground-truth incident to the first incident not yet matched whose top-ranked service is the
incident's service, opened from ``lead`` (60 minutes, the failure horizon) before its start to its
end. The simulator's categories name the fault types of :mod:`models.incidents.fault_types`
(:data:`SIMULATOR_FAULT_TYPES`). Nezha's days are scored by ``foresight bench incidents``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.detect import DAYS, END, SEEDS
from models.incidents.replay import replay
from models.incidents.settings import StreamSettings
from simulator import CALL_GRAPH, simulate

# The simulator's incident categories (simulator.effects) -> the fault they are.
SIMULATOR_FAULT_TYPES: dict[str, str] = {
    "resource_leak": "memory_leak",  # memory grows per request until the container is OOM-killed
    "disk": "disk_full",  # a runaway writer fills a volume; writes fail
    "saturation": "saturation",  # a hot-key surge drives CPU past capacity
    "errors": "bad_deploy",  # a bad release canaried onto an instance
}
LEAD = pd.Timedelta("60min")
MATCH_COLUMNS: tuple[str, ...] = ("service", "start", "injected", "detected", "named", "confidence")


def match_fault_types(raised: pd.DataFrame, truth: pd.DataFrame, lead: pd.Timedelta = LEAD) -> pd.DataFrame:
    """Per ground-truth incident (``service, start, end, category``; time order): the first raised
    incident (:func:`models.incidents.replay.replay` rows) not yet matched whose top-ranked service is
    its service, opened in ``[start - lead, end]`` (``end`` missing: its start). Returns
    :data:`MATCH_COLUMNS`; ``named`` is None and ``confidence`` NaN when nothing matched."""
    top = raised["services"].astype(str).str.split(";").str[0].tolist() if len(raised) else []
    opened = pd.to_datetime(raised["opened_at"], utc=True).tolist() if len(raised) else []
    used: set[int] = set()
    rows = []
    for _, t in truth.sort_values("start").iterrows():
        end = t["end"] if pd.notna(t["end"]) else t["start"]
        hit = next(
            (i for i in range(len(top))
             if i not in used and top[i] == t["service"] and t["start"] - lead <= opened[i] <= end),
            None,
        )
        if hit is not None:
            used.add(hit)
        rows.append(
            {
                "service": t["service"],
                "start": t["start"],
                "injected": SIMULATOR_FAULT_TYPES.get(str(t["category"]), str(t["category"])),
                "detected": hit is not None,
                "named": None if hit is None else str(raised.iloc[hit]["fault_type"]),
                "confidence": float("nan") if hit is None else float(raised.iloc[hit]["fault_type_confidence"]),
            }
        )
    return pd.DataFrame(rows, columns=list(MATCH_COLUMNS))


def simulated_fault_types(
    seeds: Sequence[int] = SEEDS, days: int = DAYS, settings: StreamSettings | None = None
) -> pd.DataFrame:
    """:func:`match_fault_types` for every seed's whole history (a ``seed`` column added)."""
    parts = []
    for seed in seeds:
        batch = simulate(seed=seed, days=days, end=END)
        if batch.incidents is None:
            raise ValueError("the simulator returned no incident history")
        raised = replay(batch.telemetry, batch.catalogue, CALL_GRAPH, settings)
        parts.append(match_fault_types(raised, batch.incidents).assign(seed=seed))
    return pd.concat(parts, ignore_index=True)


def fault_type_accuracy(matches: pd.DataFrame) -> float | None:
    """Share of the detected incidents whose named type is the injected one (None: none detected)."""
    detected = matches[matches["detected"]]
    return float((detected["named"] == detected["injected"]).mean()) if len(detected) else None
