"""The detect flow's per-series scores: resumed from the detector's kept state, or replayed.

A stepped champion detector (:mod:`models.anomaly.stepped`) keeps its online state between runs
(:mod:`models.anomaly.state_resume`, checkpointed by :mod:`flows.detect_state`): a run feeds
each batch's state only the grid rows after the last one it fed. It replays the loaded window
(the detector's context and the reported window) in batches of whole services, as every run
used to, when there is no usable state: the first run, a new champion version or detector
settings, a checkpoint older than the loaded window or unreadable, a series it does not score,
or a forced ``full_replay``; the report's ``full_replay_reason`` says which. A detector without a
step-wise state (``robust_seasonal``, ``knn``, ...) always replays and keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import task, unmapped
from prefect.cache_policies import NO_CACHE

from foresight.schemas import UTC_DTYPE
from models.anomaly.state_resume import (
    DetectorState,
    PartScores,
    ResumeReport,
    SeriesState,
    advance_scores,
    detector_key,
    replay_scores,
    state_of,
    unusable_reason,
)
from models.anomaly.stepped import SteppedDetector, is_stepped

# A state pickled by other code can load yet not fit this detector: replay instead of failing.
STATE_MISFITS = (AttributeError, KeyError, TypeError, ValueError, IndexError)


@dataclass(frozen=True)
class WindowScores:
    """The reported window's scores (``unique_id, ds, y, score``), the state to checkpoint (None
    when the detector keeps none) and what the run did (:class:`ResumeReport`)."""

    scores: pd.DataFrame
    state: DetectorState | None
    report: ResumeReport


@task(cache_policy=NO_CACHE)
def score_services(detector: Any, telemetry: pd.DataFrame) -> pd.DataFrame:
    return detector.predict(telemetry)


@task(cache_policy=NO_CACHE)
def replay_batch(detector: SteppedDetector, telemetry: pd.DataFrame, since: pd.Timestamp,
                 keep_window: bool) -> PartScores:
    return replay_scores(detector, telemetry, since, keep_window)


@task(cache_policy=NO_CACHE)
def advance_batch(state: SeriesState, telemetry: pd.DataFrame, since: pd.Timestamp) -> PartScores:
    return advance_scores(state, telemetry, since)


def service_batches(telemetry: pd.DataFrame, catalogue: pd.DataFrame, n_batches: int) -> list[pd.DataFrame]:
    """The telemetry split into at most ``n_batches`` groups of whole services (a service's series
    are always scored together), services dealt round-robin in name order."""
    services = catalogue.drop_duplicates("unique_id").set_index("unique_id")["service"]
    service = telemetry["unique_id"].map(services)
    names = sorted(service.dropna().unique())
    batch_of = {name: k % max(n_batches, 1) for k, name in enumerate(names)}
    return [g for _, g in telemetry.groupby(service.map(batch_of), sort=True)]


def score_window(detector: Any, model_version: str, telemetry: pd.DataFrame, catalogue: pd.DataFrame,
                 since: pd.Timestamp, n_batches: int, state: DetectorState | None, no_state_reason: str,
                 keep_window: bool = True) -> WindowScores:
    """Scores of ``telemetry`` from ``since``: each batch's ``state`` fed the new rows when it
    fits (:func:`~models.anomaly.state_resume.unusable_reason`), else a replay of every batch.
    Without ``keep_window`` (no incident builder reads the scores) a resumed run returns the new
    rows' scores and each other series' newest from ``since``: what the Pushgateway shows."""
    if not is_stepped(detector):
        groups = service_batches(telemetry, catalogue, n_batches)
        scored = score_services.map(unmapped(detector), groups).result() if groups else []
        scores = _concat([s[s["ds"] >= since] for s in scored])
        name = getattr(detector, "name", type(detector).__name__)
        return WindowScores(scores, None, ResumeReport(False, f"detector {name} keeps no step-wise state",
                                                      telemetry["ds"].nunique(), 0, None))
    key = detector_key(detector, model_version)
    catalogued = set(catalogue["unique_id"].astype(str))
    reason = no_state_reason if state is None else unusable_reason(state, key, telemetry, since, catalogued, keep_window)
    if state is not None and reason is None:
        try:
            parts = advance_batch.map(state.parts, unmapped(telemetry), unmapped(since)).result()
            return _window(state_of(key, parts), parts, "")
        except STATE_MISFITS as exc:
            reason = f"checkpoint state does not fit this detector ({type(exc).__name__}: {exc})"
    groups = service_batches(telemetry, catalogue, n_batches)
    if not groups:
        return WindowScores(_concat([]), None, ResumeReport(False, reason or "no telemetry", 0, 0, None))
    parts = replay_batch.map(unmapped(detector), groups, unmapped(since), unmapped(keep_window)).result()
    return _window(state_of(key, parts), parts, reason or "")


def _window(state: DetectorState, parts: list[PartScores], reason: str) -> WindowScores:
    report = ResumeReport(not reason, reason, max((p.steps for p in parts), default=0),
                         sum(p.late for p in parts), state.last_step)
    return WindowScores(_concat([p.scores for p in parts]), state, report)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if frames:
        return pd.concat(frames, ignore_index=True)
    # The detector's output shape with no rows (every series held back).
    return pd.DataFrame({"unique_id": pd.Series([], dtype=str), "ds": pd.Series([], dtype=UTC_DTYPE),
                         "y": pd.Series([], dtype="float64"), "score": pd.Series([], dtype="float64")})
