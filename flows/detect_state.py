"""The detect flow's incident-stream state between runs, kept with the stream processor's
checkpoint store (:mod:`connectors.sinks.checkpoint_store`): one file,
``<stream checkpoint url>/_detect/partition-0.ckpt``, written whole (temporary file, fsync,
rename; one PUT on S3). Its ``offsets`` hold the next telemetry step to score (epoch ns) under
``("lake/telemetry", 0)``; its state is a :class:`~models.incidents.stream_resume.StreamState`.

A checkpoint that cannot be read is no reason to stop paging: the run replays its window and says
why (:func:`load_stream_state`); one that cannot be written is logged and the next run resumes
from the previous one (the same steps give the same incidents, and the outbox skips events it holds).
"""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointStore
from foresight.settings import Settings
from foresight.timeutil import utc_now
from models.incidents.stream_resume import StreamState

# The group folder beside the stream processor's (a Kafka group id would not start with "_").
DETECT_GROUP = "_detect"
OFFSET_KEY = ("lake/telemetry", 0)


def checkpoint_store(settings: Settings) -> CheckpointStore:
    return CheckpointStore(settings.stream_checkpoint_url)


@task(cache_policy=NO_CACHE)
def load_stream_state(settings: Settings) -> tuple[StreamState | None, str]:
    """The last run's stream state, or None and why there is none to resume (never raises)."""
    store = checkpoint_store(settings)
    try:
        checkpoint = store.load(DETECT_GROUP, 0)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means a replay, never a failed run
        return None, f"unreadable checkpoint {store.path(DETECT_GROUP, 0)} ({type(exc).__name__}: {exc})"
    if checkpoint is None:
        return None, "no checkpoint yet (first run)"
    if not isinstance(checkpoint.state, StreamState):
        return (
            None,
            f"checkpoint {store.path(DETECT_GROUP, 0)} holds no stream state ({type(checkpoint.state).__name__})",
        )
    return checkpoint.state, ""


@task(cache_policy=NO_CACHE)
def save_stream_state(settings: Settings, state: StreamState) -> str | None:
    """Checkpoint ``state``; its path, or None when it could not be written (logged)."""
    store = checkpoint_store(settings)
    offsets = {} if state.last_step is None else {OFFSET_KEY: pd.Timestamp(state.last_step).value + 1}
    try:
        return store.save(Checkpoint(DETECT_GROUP, 0, offsets, state, pd.Timestamp(utc_now())))
    except Exception as exc:  # noqa: BLE001 - the pages already went out; the next run resumes from the older state
        get_run_logger().warning(
            "could not checkpoint the incident stream to %s (%s: %s); the next run resumes from the "
            "previous checkpoint",
            store.path(DETECT_GROUP, 0),
            type(exc).__name__,
            exc,
        )
        return None
