"""Does feeding log aggregates to the stream's engine add detections without adding pages?

The fleet simulator (:func:`simulator.simulate`: metrics, raw log lines and labelled incidents;
its log lines follow the error ratio, latency, heap and disk of each instance, and deploys, OOM
kills and restarts are logged) is replayed in event-time order through the stream processor's
scoring path, in process: a :class:`~streaming.partition_state.PartitionState` per partition
(key = service, as producers key the topics), metric samples to its
:class:`~streaming.keyed_scoring.KeyScorer` s, each log line through the template miner and the
per-minute aggregates, then sealed for the scorers (:meth:`PartitionState.logs_counted`), exactly
as the processor takes them. The same messages run once per variant (no log series, then the
log series asked for); each ``open`` event is a page.

A page matches a labelled incident of its service when it opens between ``grace`` before the
incident's start and the incident's end; the first match's delay is the time to detect. Every
other page is false. Figures per incident category (the simulator's fault families), worst
first. Pure but for the simulator's generation; deterministic for a seed.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from connectors.sources.base import SourceBatch
from connectors.sources.kafka.log_batches import LogLine
from features.logs.miner import TemplateMiner
from foresight.settings import DetectConfig
from models.incidents.settings import PipelineSettings
from simulator import simulate
from streaming.keyed_scoring import KeyScorer, Sample
from streaming.log_counting import count_lines
from streaming.log_steps import LOG_FEATURES
from streaming.partition_state import PartitionState

END = pd.Timestamp("2026-05-01", tz="UTC")  # as bench.detect: figures do not move from day to day
SEEDS: tuple[int, ...] = (3, 5, 7)
GRACE = pd.Timedelta(minutes=5)
NO_LOGS = "metrics only"


@dataclass
class Page:
    service: str
    at: pd.Timestamp


@dataclass
class VariantRun:
    """One variant's pages on one seed's fleet, and its wall time."""

    variant: str
    seed: int
    pages: list[Page] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class FamilyFigures:
    """One variant's figures for one incident category (``family``; ``all``: every category)."""

    variant: str
    family: str
    incidents: int
    detected: int
    minutes_to_detect: list[float]
    false_pages: int  # only on the ``all`` row: false pages are not of a category
    system_days: float

    @property
    def median_minutes(self) -> float:
        return float(np.median(self.minutes_to_detect)) if self.minutes_to_detect else float("nan")

    @property
    def false_per_day(self) -> float:
        return self.false_pages / self.system_days if self.system_days else float("nan")


def _messages(batch: SourceBatch) -> Iterator[tuple[float, int, Sample | LogLine]]:
    """Metric samples and log lines in event-time order (a step's samples before its lines)."""
    telemetry, catalogue, logs = batch.telemetry, batch.catalogue, batch.logs
    if logs is None:
        raise ValueError("the batch has no logs")
    info = catalogue.set_index("unique_id")[["service", "metric", "resource_id", "unit"]]
    t = telemetry.join(info, on="unique_id").sort_values(["ds", "unique_id"], kind="stable")
    ds_us = _us(t["ds"])
    samples = (
        (ds / 1e6, 0, Sample(s, u, s, m, r, str(un or ""), int(ds), float(y)))
        for ds, u, s, m, r, un, y in zip(
            ds_us, t["unique_id"], t["service"], t["metric"], t["resource_id"], t["unit"], t["y"], strict=True
        )
    )
    lg = logs.sort_values("ts", kind="stable")
    ts = _us(lg["ts"]) / 1e6
    lines = (
        (float(x), 1, LogLine(s, str(lv), str(msg), float(x), str(r)))
        for x, s, lv, msg, r in zip(ts, lg["service"], lg["level"], lg["message"], lg["resource_id"], strict=True)
    )
    return heapq.merge(samples, lines, key=lambda m: (m[0], m[1]))


def _us(column: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]").astype("int64"))


def replay(
    batch: SourceBatch,
    log_series: Sequence[str],
    *,
    partitions: int = 1,
    grace_seconds: float = 5.0,
    cfg: DetectConfig | None = None,
) -> list[Page]:
    """The pages the stream's scoring path raises on ``batch`` (a simulator batch), every
    service its own key, services spread over ``partitions`` by their sorted order."""
    settings = PipelineSettings.from_detect(cfg or DetectConfig())
    services = sorted(set(batch.catalogue["service"]))
    part_of = {s: i % partitions for i, s in enumerate(services)}
    grace = grace_seconds if log_series else None
    states = {p: PartitionState(p, miner=TemplateMiner(), log_grace_seconds=grace) for p in range(partitions)}

    def new_scorer(key: str) -> KeyScorer:
        return KeyScorer(key, settings.stream, identity_window=settings.rollup.resolve_after, log_series=log_series)

    pages: list[Page] = []
    for _, _, payload in _messages(batch):
        if isinstance(payload, Sample):
            result = states[part_of[payload.service]].score(payload, new_scorer)
        else:  # one line per message, as a plain producer sends them
            state = states[part_of[payload.service]]
            count_lines(state.miner, state.logs, [payload], topic="logs")
            result = state.logs_counted([payload.ts_seconds])
        pages += [Page(str(e.incident["service"]), e.at) for e in result.events if e.state == "open"]
    return pages


def figures(runs: Sequence[VariantRun], truths: dict[int, pd.DataFrame], days: int) -> list[FamilyFigures]:
    """Per variant and incident category, then ``all`` with the false pages."""
    out: list[FamilyFigures] = []
    for variant in dict.fromkeys(r.variant for r in runs):
        mine = [r for r in runs if r.variant == variant]
        per_family: dict[str, list[float | None]] = {}
        false_pages = 0
        for run in mine:
            truth = truths[run.seed]
            matched: set[int] = set()
            for _, inc in truth.iterrows():
                hits = [p for p in run.pages if p.service == inc["service"]
                        and inc["start"] - GRACE <= p.at <= inc["end"]]
                matched.update(id(p) for p in hits)
                first = min((p.at for p in hits), default=None)
                delay = None if first is None else max((first - inc["start"]).total_seconds() / 60, 0.0)
                per_family.setdefault(str(inc["category"]), []).append(delay)
            false_pages += sum(id(p) not in matched for p in run.pages)
        system_days = float(len(mine) * days)
        everything = [d for ds in per_family.values() for d in ds]
        for family, delays in [*sorted(per_family.items()), ("all", everything)]:
            found = [d for d in delays if d is not None]
            out.append(FamilyFigures(variant, family, len(delays), len(found), found,
                                     false_pages if family == "all" else 0, system_days))
    return out


def run(
    seeds: Sequence[int] = SEEDS,
    days: int = 21,
    step_minutes: int = 1,
    variants: dict[str, Sequence[str]] | None = None,
    partitions: int = 1,
) -> tuple[list[VariantRun], list[FamilyFigures]]:
    """Every variant (name -> log series; default: none, then :data:`LOG_FEATURES`) on every seed."""
    variants = variants or {NO_LOGS: (), "with log series": [n for n, _ in LOG_FEATURES]}
    runs: list[VariantRun] = []
    truths: dict[int, pd.DataFrame] = {}
    for seed in seeds:
        batch = simulate(seed=seed, days=days, step_minutes=step_minutes, end=END)
        if batch.incidents is None:
            raise ValueError("the simulator returned no incident history")
        truths[seed] = batch.incidents
        for name, series in variants.items():
            started = time.perf_counter()
            pages = replay(batch, series, partitions=partitions)
            runs.append(VariantRun(name, seed, pages, time.perf_counter() - started))
    return runs, figures(runs, truths, days)
