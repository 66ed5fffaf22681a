"""Incident benchmark on generated systems: per scenario family, the incident protocol's figures
and event F1.

``foresight bench scenarios`` generates each family's systems
(:mod:`simulator.scenario_families`), replays them through the incident pipeline with
:func:`bench.incidents.run_days` and reports per family: faults detected within the window,
false alarms per system-day, AC@1, AC@3, fault-type accuracy, and event-wise precision / recall /
F1, where

- precision = incidents that match a fault (opened within the window after it; each incident
  matches at most one fault) / incidents raised,
- recall = faults detected / faults,
- F1 = their harmonic mean (undefined for a family without faults: read its false alarms).

Fault-type accuracy is the share of found faults whose incident names the fault type itself
(``category``, fine-grained: :mod:`models.incidents.fault_types`); coarse accuracy the share whose
``coarse_category`` is the type's coarse class (:data:`models.incidents.fault_types.COARSE_CATEGORY`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.datasets.nezha import NezhaDay
from bench.detection_corpora import INCIDENTS, Corpus
from bench.incidents import IncidentFigures, run_days
from models.incidents.fault_types import COARSE_CATEGORY
from models.incidents.settings import StreamSettings
from simulator.scenario_families import FAMILIES, generate_family

DEFAULT_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


@dataclass(frozen=True)
class FamilyFigures:
    """One family's figures over its systems."""

    family: str
    systems: int
    services: str  # smallest-largest system
    with_graph: int  # systems whose call graph was handed out
    figures: IncidentFigures
    precision: float | None
    recall: float | None
    f1: float | None
    type_accuracy: float | None
    coarse_accuracy: float | None
    seconds: float
    found_by_kind: str = ""  # "kind found/faults" per fault type, ";"-joined

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "figures"}
        return {**out, **{f"incidents_{k}": v for k, v in self.figures.to_dict().items()}}


def event_scores(figures: IncidentFigures) -> tuple[float | None, float | None, float | None]:
    """Event-wise ``(precision, recall, F1)`` of matched incidents (module doc); None where undefined."""
    precision = figures.detected / figures.incidents if figures.incidents else None
    recall = figures.detected / figures.faults if figures.faults else None
    if precision is None or recall is None:
        return precision, recall, None
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def type_accuracy(matches: pd.DataFrame) -> float | None:
    """Share of found faults whose incident names the fault type itself (None when none was found)."""
    found = matches[matches["detected"]] if len(matches) else matches
    if not len(found):
        return None
    return float((found["category"] == found["kind"]).mean())


def coarse_accuracy(matches: pd.DataFrame) -> float | None:
    """Share of found faults whose incident's coarse category is the fault type's coarse class."""
    found = matches[matches["detected"]] if len(matches) else matches
    if not len(found) or "coarse_category" not in found.columns:
        return None
    expected = found["kind"].map(COARSE_CATEGORY)
    return float((found["coarse_category"] == expected).mean())


def found_by_kind(matches: pd.DataFrame) -> str:
    """``kind found/faults`` per fault type (sorted by name), ``;``-joined; empty without faults."""
    if not len(matches):
        return ""
    counts = matches.groupby("kind")["detected"].agg(["sum", "count"])
    return ";".join(f"{kind} {int(row['sum'])}/{int(row['count'])}" for kind, row in counts.iterrows())


def score_family(name: str, days: Sequence[NezhaDay], settings: StreamSettings | None = None) -> FamilyFigures:
    """Replay and score one family's generated days with the protocol (5-minute window)."""
    started = time.perf_counter()
    figures, _, matches = run_days(days, settings=settings)
    precision, recall, f1 = event_scores(figures)
    sizes = [d.catalogue["service"].nunique() for d in days]
    return FamilyFigures(
        family=name,
        systems=len(days),
        services=f"{min(sizes)}-{max(sizes)}" if sizes else "",
        with_graph=sum(bool(d.call_graph) for d in days),
        figures=figures,
        precision=precision,
        recall=recall,
        f1=f1,
        type_accuracy=type_accuracy(matches),
        coarse_accuracy=coarse_accuracy(matches),
        seconds=time.perf_counter() - started,
        found_by_kind=found_by_kind(matches),
    )


def scenario_corpora(systems: int = 4, seed: int = 0, days: int = 1, step_minutes: int = 1) -> list[Corpus]:
    """Each family as an incident corpus of ``bench detection`` (named ``scenarios/<family>``;
    nothing is generated until a corpus is loaded). Register them with
    ``corpora.register(c.name)(c)`` on :func:`bench.detection.default_corpora`'s registry."""

    def load(name: str) -> Callable[[Path], list[NezhaDay]]:
        return lambda _root: generate_family(name, systems=systems, seed=seed, days=days, step_minutes=step_minutes)

    return [
        Corpus(f"scenarios/{name}", INCIDENTS, load(name), f"{systems} generated systems: {spec.description}")
        for name, spec in FAMILIES.items()
    ]


def run(
    families: Sequence[str] = DEFAULT_FAMILIES,
    systems: int = 4,
    seed: int = 0,
    days: int = 1,
    step_minutes: int = 1,
    settings: StreamSettings | None = None,
) -> list[FamilyFigures]:
    """Generate ``systems`` systems of each family and score them (one row per family, in order)."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown scenario famil{'ies' if len(unknown) > 1 else 'y'} {unknown}; "
                         f"choose from: {', '.join(FAMILIES)}")
    rows = []
    for name in families:
        generated = generate_family(name, systems=systems, seed=seed, days=days, step_minutes=step_minutes)
        rows.append(score_family(name, generated, settings))
    return rows


def write_figures(rows: Sequence[FamilyFigures], out: Path) -> None:
    """CSV with one row per family (:meth:`FamilyFigures.to_dict`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([r.to_dict() for r in rows]).to_csv(out, index=False)
