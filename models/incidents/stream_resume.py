"""The stream mode's state kept between detect runs, and a run resumed from it.

A detect run used to replay its whole window (a week of context and 72 hours) through a fresh
:class:`~models.incidents.stream.IncidentStream`; a :class:`StreamState` keeps the stream after
the last step it scored, so the next run feeds only the steps after that one
(:func:`resume_stream`): a run's cost grows with new data, not with history. Fed the same steps
in the same order, the resumed stream is the stream a single replay would have built (the state
pickles exactly), so its incidents are that replay's.

A state is used only when it fits (:func:`unusable_reason`, else a full replay and why):

- it was built by the same champion version and the same settings (:class:`StateKey`: the
  stream settings, the identity window, the trained calibration and the call graph, hashed), and
  by this state format (:data:`STATE_FORMAT`, raised when the engine's state changes shape);
- the loaded telemetry reaches back to its last step (a checkpoint older than the window the
  flow loads would skip the steps in between) and not past its end (a rebuilt lake);
- the telemetry brings no series the stream does not watch (its arrays are sized once).

**Late samples**: a sample for a step at or before the last step scored is not rescored; the
samples that were not there when their step was fed are counted (:attr:`ResumeReport.late_samples`,
per step against :attr:`StreamState.fed`, up to :data:`LATE_HORIZON` behind that step). A series missing at a step (a held-back source) is
NaN there, as in the stream processor.

**Identity**: an incident's ``incident_id`` and ``window_start`` are fixed the first run that
reports it (the rule of :func:`models.incidents.stream_builder.incident_rows`, applied against
the ids already given out), so a ranking refined in a later run never makes a second page. A
reported incident stays tracked until its resolve has been published
(:meth:`StreamState.forget_resolved`), even once it started before the reported window.

Pure: no I/O (the detect flow checkpoints the state through
:mod:`connectors.sinks.checkpoint_store`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from models.anomaly.state_resume import ResumeReport
from models.incidents.base import incident_id
from models.incidents.replay import incidents_frame, new_stream, step_rows
from models.incidents.settings import StreamSettings
from models.incidents.stream import IncidentStream, StreamIncident

# Raised whenever IncidentStream's or this module's state changes shape: an older checkpoint
# then replays instead of being stepped with attributes it lacks.
STATE_FORMAT = 1
# How far behind the checkpointed step late samples are still counted (older ones are not even read).
LATE_HORIZON = pd.Timedelta(days=1)


@dataclass(frozen=True)
class StateKey:
    """What a state was built by: the champion's version and a hash of everything else that
    shapes the stream (:func:`settings_hash`)."""

    model_version: str
    settings_hash: str
    state_format: int = STATE_FORMAT


def settings_hash(
    settings: StreamSettings,
    identity_window: pd.Timedelta,
    calibration: Mapping[str, float] | None,
    call_graph: Mapping[str, Sequence[str]] | None,
) -> str:
    """A short hash of the stream settings, identity window, trained calibration and call graph."""
    described = {
        "stream": asdict(settings),
        "identity_window": str(pd.Timedelta(identity_window)),
        "calibration": {str(k): float(v) for k, v in sorted((calibration or {}).items())},
        "call_graph": {str(k): sorted(map(str, v)) for k, v in sorted((call_graph or {}).items())},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TrackedIncident:
    """A reported incident and the identity it was first reported with."""

    incident: StreamIncident
    incident_id: str
    window_start: pd.Timestamp


@dataclass
class StreamState:
    """The stream after ``last_step``, the incidents it has reported and the samples fed per step."""

    key: StateKey
    stream: IncidentStream
    last_step: pd.Timestamp | None = None
    tracked: list[TrackedIncident] = field(default_factory=list)
    fed: dict[int, int] = field(default_factory=dict)  # step (epoch ns) -> samples fed at it

    def forget_resolved(self, since: pd.Timestamp | None, kept_open: Collection[str] = ()) -> None:
        """Stop tracking incidents that started before ``since`` (out of the reported window) and
        have closed, so their resolve went out with this run, unless their top-ranked service is
        in ``kept_open`` (a failed source holds its incidents open: the resolve is still to come)."""
        if since is None:
            return
        since = pd.Timestamp(since)
        self.tracked = [
            t
            for t in self.tracked
            if t.incident.opened_at >= since
            or t.incident.closed_at is None
            or t.incident.services[0] in kept_open
        ]


@dataclass(frozen=True)
class Resumed:
    """A run's reported incidents (:func:`models.incidents.replay.incidents_frame` rows, each with
    its fixed ``incident_id`` and ``window_start``), the state after it and the report."""

    reported: list[TrackedIncident]
    state: StreamState
    report: ResumeReport


def unusable_reason(
    state: StreamState, key: StateKey, telemetry: pd.DataFrame, catalogue: pd.DataFrame
) -> str | None:
    """Why ``state`` cannot be resumed on ``telemetry`` (None: it can)."""
    if state.key.state_format != key.state_format:
        return f"checkpoint state format {state.key.state_format}, this version writes {key.state_format}"
    if state.key.model_version != key.model_version:
        return f"champion changed (checkpoint of version {state.key.model_version}, now {key.model_version})"
    if state.key.settings_hash != key.settings_hash:
        return "stream settings, calibration or call graph changed since the checkpoint"
    if state.last_step is None:
        return "checkpoint has scored no step yet"
    first, newest = telemetry["ds"].min(), telemetry["ds"].max()
    if first > state.last_step:
        return (
            f"checkpoint at {state.last_step.isoformat()} is older than the loaded window "
            f"(from {pd.Timestamp(first).isoformat()})"
        )
    if newest < state.last_step:
        return (
            f"checkpoint at {state.last_step.isoformat()} is ahead of the newest telemetry "
            f"({pd.Timestamp(newest).isoformat()})"
        )
    catalogued = set(catalogue["unique_id"].astype(str))
    new = set(telemetry.loc[telemetry["ds"] > state.last_step, "unique_id"].astype(str)) & catalogued
    unwatched = new - set(state.stream.series)
    if unwatched:
        return f"{len(unwatched)} series the checkpointed stream does not watch (e.g. {min(unwatched)})"
    return None


def resume_stream(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    call_graph: Mapping[str, Sequence[str]],
    settings: StreamSettings,
    calibration: Mapping[str, float] | None,
    *,
    key: StateKey,
    state: StreamState | None,
    identity_window: pd.Timedelta,
    since: pd.Timestamp | None = None,
    no_state_reason: str = "no checkpoint",
) -> Resumed:
    """Feed ``telemetry``'s steps after ``state.last_step`` through its stream, or, when ``state``
    is None or unusable (:func:`unusable_reason`), every step through a fresh stream; incidents
    opened at or after ``since`` are reported from then on (see the module doc)."""
    reason = no_state_reason if state is None else unusable_reason(state, key, telemetry, catalogue)
    if state is not None and reason is None:
        try:
            return _advance(state, telemetry, since, identity_window, reason="")
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # A state pickled by other code can load yet not fit this engine: replay instead.
            reason = f"checkpoint state does not fit this version ({type(exc).__name__}: {exc})"
    fresh = StreamState(key, new_stream(telemetry, catalogue, call_graph, settings, calibration))
    return _advance(fresh, telemetry, since, identity_window, reason=reason or "")


def _advance(
    state: StreamState,
    telemetry: pd.DataFrame,
    since: pd.Timestamp | None,
    identity_window: pd.Timedelta,
    *,
    reason: str,
) -> Resumed:
    stream = state.stream
    if state.last_step is not None:  # what a resumed run reads: the new steps and a day of late samples
        telemetry = telemetry[telemetry["ds"] > state.last_step - LATE_HORIZON]
    watched = telemetry[telemetry["unique_id"].astype(str).isin(set(stream.series)) & telemetry["y"].notna()]
    late = 0
    if state.last_step is not None:
        old = watched[watched["ds"] <= state.last_step].drop_duplicates(["unique_id", "ds"])
        counts = old.groupby("ds").size()
        seen = np.array([state.fed.get(pd.Timestamp(ds).value, 0) for ds in counts.index], dtype=int)
        late = int(np.clip(counts.to_numpy() - seen, 0, None).sum())
        watched = watched[watched["ds"] > state.last_step]
    steps = 0
    raised: list[StreamIncident] = []
    for ds, row in step_rows(watched, stream):
        raised += stream.step(ds, row)
        state.fed[ds.value] = int(np.isfinite(row).sum())
        state.last_step = ds
        steps += 1
    _forget_closed(stream)
    if state.last_step is not None:  # per-step counts only as far back as late samples are counted
        first = (state.last_step - LATE_HORIZON).value
        state.fed = {ds: n for ds, n in state.fed.items() if ds > first}
    since = None if since is None else pd.Timestamp(since)
    _track(state, [i for i in raised if since is None or i.opened_at >= since], pd.Timedelta(identity_window))
    report = ResumeReport(not reason, reason, steps, late, state.last_step)
    return Resumed(list(state.tracked), state, report)


def _track(state: StreamState, raised: list[StreamIncident], window: pd.Timedelta) -> None:
    """Give newly raised incidents their identity, in start then service order: the service and
    the start floored to ``window``, or, when an incident already holds that id, its own start."""
    taken = {t.incident_id for t in state.tracked}
    for incident in sorted(raised, key=lambda i: (i.opened_at, i.services[0])):
        service, start = incident.services[0], pd.Timestamp(incident.opened_at)
        window_start = start.floor(window)
        ident = incident_id(service, window_start)
        if ident in taken:
            window_start = start
            ident = incident_id(service, window_start)
        taken.add(ident)
        state.tracked.append(TrackedIncident(incident, ident, window_start))


def _forget_closed(stream: IncidentStream) -> None:
    """Closed incidents past re-opening, out of the engine's list (it only looks back
    ``reopen_within`` steps), so a state kept for months stays bounded."""
    horizon = stream._steps - stream.settings.reopen_within - 1
    stream.closed = [i for i in stream.closed if i.closed_step >= horizon]


def reported_frame(reported: Sequence[TrackedIncident]) -> pd.DataFrame:
    """The reported incidents as :func:`models.incidents.replay.incidents_frame` rows, in order."""
    return incidents_frame([t.incident for t in reported])
