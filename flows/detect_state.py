"""The detect flow's states between runs, kept with the stream processor's checkpoint store
(:mod:`connectors.sinks.checkpoint_store`), each one file written whole (temporary file, fsync,
rename; one PUT on S3):

- ``<stream checkpoint url>/_detect/partition-0.ckpt``: the incident stream's
  :class:`~models.incidents.stream_resume.StreamState`;
- ``<stream checkpoint url>/_detect_detector/partition-0.ckpt``: the per-series detector's
  :class:`~models.anomaly.state_resume.DetectorState` (every scoring batch's online state).

Their ``offsets`` hold the next telemetry step to score (epoch ns) under ``("lake/telemetry", 0)``.

A checkpoint that cannot be read is no reason to stop paging: the run replays its window and says
why (:func:`load_stream_state`); one that cannot be written is logged and the next run resumes
from the previous one (the same steps give the same incidents, and the outbox skips events it holds).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointStore
from foresight.settings import Settings
from foresight.timeutil import utc_now
from models.anomaly.state_resume import DetectorState
from models.incidents.stream_resume import StreamState

# The group folder beside the stream processor's (a Kafka group id would not start with "_").
DETECT_GROUP = "_detect"
DETECTOR_GROUP = "_detect_detector"
OFFSET_KEY = ("lake/telemetry", 0)


def checkpoint_store(settings: Settings) -> CheckpointStore:
    return CheckpointStore(settings.stream_checkpoint_url)


@task(cache_policy=NO_CACHE)
def load_stream_state(settings: Settings) -> tuple[StreamState | None, str]:
    """The last run's stream state, or None and why there is none to resume (never raises)."""
    return _load(settings, DETECT_GROUP, StreamState, "stream state")


@task(cache_policy=NO_CACHE)
def save_stream_state(settings: Settings, state: StreamState) -> str | None:
    """Checkpoint ``state``; its path, or None when it could not be written (logged)."""
    return _save(settings, DETECT_GROUP, state, state.last_step, "the incident stream")


@task(cache_policy=NO_CACHE)
def load_detector_state(settings: Settings) -> tuple[DetectorState | None, str]:
    """The last run's per-series detector state, or None and why there is none (never raises)."""
    return _load(settings, DETECTOR_GROUP, DetectorState, "detector state")


@task(cache_policy=NO_CACHE)
def save_detector_state(settings: Settings, state: DetectorState) -> str | None:
    """Checkpoint the detector's ``state``; its path, or None when it could not be written (logged)."""
    return _save(settings, DETECTOR_GROUP, state, state.last_step, "the detector state")


def _load(settings: Settings, group: str, kind: type, what: str) -> tuple[Any, str]:
    store = checkpoint_store(settings)
    try:
        checkpoint = store.load(group, 0)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means a replay, never a failed run
        return None, f"unreadable checkpoint {store.path(group, 0)} ({type(exc).__name__}: {exc})"
    if checkpoint is None:
        return None, "no checkpoint yet (first run)"
    if not isinstance(checkpoint.state, kind):
        return None, f"checkpoint {store.path(group, 0)} holds no {what} ({type(checkpoint.state).__name__})"
    return checkpoint.state, ""


def _save(settings: Settings, group: str, state: Any, last_step: pd.Timestamp | None, what: str) -> str | None:
    store = checkpoint_store(settings)
    offsets = {} if last_step is None else {OFFSET_KEY: pd.Timestamp(last_step).value + 1}
    try:
        return store.save(Checkpoint(group, 0, offsets, state, pd.Timestamp(utc_now())))
    except Exception as exc:  # noqa: BLE001 - the pages already went out; the next run resumes from the older state
        get_run_logger().warning(
            "could not checkpoint %s to %s (%s: %s); the next run resumes from the previous checkpoint",
            what,
            store.path(group, 0),
            type(exc).__name__,
            exc,
        )
        return None
