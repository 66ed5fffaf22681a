"""Metric samples of one message key scored step by step by the incident engine.

A :class:`KeyScorer` holds the state of one key (a service, or whatever the producers key by):
the samples of the time steps still being assembled, the series it watches and an
:class:`~models.incidents.stream.IncidentStream`. Samples arrive one message at a time; a time
step is fed to the engine once every watched series has reported for it, or once ``open_steps``
newer steps have started (a series that skipped a step is NaN there). A sample for a step already
fed is *late* and not scored (:attr:`KeyScorer.late_samples`).

The series set is learnt from the first ``discovery_steps`` steps (buffered, then fed); a series
first seen later is not scored (:attr:`KeyScorer.unscored_series`): the engine's arrays are sized
once. With ``log_series`` (:mod:`streaming.log_steps`) the engine also watches those log series of
every service of the key, declared when it is built (a minute without lines is 0, not a series
first seen late); a step whose samples are complete then waits for its log minutes to be sealed
by the partition's logs, or for ``open_steps`` newer complete steps (its log series are NaN then). Closing steps depends only on the order of the samples, never on the wall clock, so the
same messages replayed from a checkpoint give the same steps, the same incidents and the same ids.

Incidents come out as :class:`IncidentEvent` (``open``, ``reopened``, ``resolved``), each with the
incident's row in the detect flow's table (:func:`models.incidents.stream_builder.incident_rows`):
the id is the service and the start floored to the roll-up's ``resolve_after`` (a second incident
of the service in one such window keys by its own start), the identity the detect flow and the
PagerDuty dedup key use. Pure: no I/O; picklable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.logs.aggregate import RESOURCE_SUFFIX, series_id
from models.incidents.base import incident_id
from models.incidents.replay import incidents_frame
from models.incidents.settings import StreamSettings
from models.incidents.share_units import with_share_units
from models.incidents.stream import IncidentStream, StreamIncident
from models.incidents.stream_builder import incident_rows
from streaming.log_steps import LOG_FLOORS, LOG_UNITS, LogMinutes, log_feature_names, step_minutes

EventState = Literal["open", "reopened", "resolved"]


@dataclass(frozen=True)
class Sample:
    """One decoded metric message."""

    key: str
    unique_id: str
    service: str
    metric: str
    resource: str
    unit: str
    ds_us: int  # epoch microseconds, UTC
    value: float


@dataclass(frozen=True)
class IncidentEvent:
    """An incident opening, re-opening or resolving; ``incident`` is its detect-flow row."""

    incident_id: str
    state: EventState
    key: str
    at: pd.Timestamp  # the step that raised the change
    incident: dict[str, Any]
    score: float  # the incident's evidence level (summed -log10 p)


@dataclass
class _Tracked:
    incident: StreamIncident
    incident_id: str
    window_start: pd.Timestamp
    is_open: bool = True


@dataclass
class StepResult:
    """What feeding samples did: incident events and the steps fed (for metrics)."""

    events: list[IncidentEvent] = field(default_factory=list)
    steps: int = 0
    late: int = 0
    unscored: int = 0
    evidence: dict[str, float] = field(default_factory=dict)  # per service: its evidence at the last step


class KeyScorer:
    """The incident engine over one key's series, fed one sample at a time."""

    def __init__(
        self,
        key: str,
        settings: StreamSettings,
        *,
        identity_window: pd.Timedelta,
        calibration: Mapping[str, float] | None = None,
        call_graph: Mapping[str, Sequence[str]] | None = None,
        discovery_steps: int = 3,
        open_steps: int = 2,
        log_series: Sequence[str] = (),
    ) -> None:
        if discovery_steps < 1 or open_steps < 1:
            raise ValueError("discovery_steps and open_steps must be at least 1")
        self.key = key
        self.settings = settings
        self.identity_window = pd.Timedelta(identity_window)
        self.calibration = dict(calibration or {})
        self.call_graph = {str(k): list(v) for k, v in (call_graph or {}).items()}
        self.discovery_steps = discovery_steps
        self.open_steps = open_steps
        self.catalogue: dict[str, tuple[str, str, str, str]] = {}  # uid -> service, metric, resource, unit
        self.stream: IncidentStream | None = None
        self._pending: dict[int, dict[str, float]] = {}  # step (epoch us) -> uid -> value
        self._discovered: list[tuple[int, dict[str, float]]] = []  # closed steps before the engine exists
        self._last_fed: int | None = None
        self._tracked: list[_Tracked] = []
        self._ids: dict[str, int] = {}  # incident ids given out -> the step they were given at (bounded)
        self._unscored: set[str] = set()
        self.late_samples = 0
        self.log_series = log_feature_names(log_series)
        self._sealed: deque[tuple[int, dict[str, float]]] = deque()  # complete steps waiting for their logs
        self._log_hi: int | None = None  # end (epoch minute, exclusive) of the log minutes last fed
        self._log_uids: set[str] = set()

    def __setstate__(self, state: dict[str, Any]) -> None:  # checkpoints from before log series
        state.setdefault("log_series", ())
        state.setdefault("_sealed", deque())
        state.setdefault("_log_hi", None)
        state.setdefault("_log_uids", set())
        self.__dict__.update(state)

    @property
    def unscored_series(self) -> int:
        return len(self._unscored)

    @property
    def open_incidents(self) -> int:
        return sum(t.is_open for t in self._tracked)

    def add(self, sample: Sample, logs: LogMinutes | None = None) -> StepResult:
        """Take one sample; feed every step it completes (and whose log minutes ``logs`` has
        sealed); the events those steps raised."""
        result = StepResult()
        if self._last_fed is not None and sample.ds_us <= self._last_fed:
            self.late_samples += 1
            result.late = 1
            return result
        if sample.unique_id not in self.catalogue:
            if self.stream is None:
                self.catalogue[sample.unique_id] = (
                    sample.service,
                    sample.metric,
                    sample.resource,
                    sample.unit,
                )
            else:
                self._unscored.add(sample.unique_id)
                result.unscored = 1
                return result
        self._pending.setdefault(sample.ds_us, {})[sample.unique_id] = sample.value
        for ds in self._ready():
            self._last_fed = ds
            self._sealed.append((ds, self._pending.pop(ds)))
        self._drain(logs, result)
        return result

    def advance(self, logs: LogMinutes | None) -> StepResult:
        """Feed the complete steps whose log minutes are sealed now (after ``logs`` moved on)."""
        result = StepResult()
        self._drain(logs, result)
        return result

    def _drain(self, logs: LogMinutes | None, result: StepResult) -> None:
        while self._sealed:
            ds, values = self._sealed[0]
            if self.log_series:
                lo, hi = step_minutes(ds, self._log_hi)
                if logs is not None and not logs.sealed(hi) and len(self._sealed) <= self.open_steps:
                    return  # its logs may still come: wait (at most open_steps newer complete steps)
                self._log_hi = hi
                if logs is not None:
                    values = {**values, **logs.values(self._services(), lo, hi, self.log_series)}
            self._sealed.popleft()
            self._close(ds, values, result)

    def _services(self) -> list[str]:
        return sorted({v[0] for u, v in self.catalogue.items() if u not in self._log_uids})

    def _ready(self) -> list[int]:
        """Steps to feed now, oldest first: complete ones (and all before them), and any with
        ``open_steps`` newer steps begun."""
        steps = sorted(self._pending)
        ready = set(steps[: max(len(steps) - self.open_steps, 0)])
        if self.stream is not None:
            watched = len(self.stream.series) - len(self._log_uids)
            complete = [ds for ds in steps if len(self._pending[ds]) >= watched]
            if complete:
                ready |= {ds for ds in steps if ds <= complete[-1]}
        return sorted(ready)

    def _close(self, ds: int, values: dict[str, float], result: StepResult) -> None:
        if self.stream is None:
            self._discovered.append((ds, values))
            if len(self._discovered) < self.discovery_steps:
                return
            self.stream = self._build()
            buffered, self._discovered = self._discovered, []
            for step_ds, step_values in buffered:
                self._feed(step_ds, step_values, result)
            return
        self._feed(ds, values, result)

    def _build(self) -> IncidentStream:
        for service in self._services():  # declared up front: a quiet minute is 0, not a late series
            for name in self.log_series:
                uid = series_id(service, name)
                self.catalogue[uid] = (service, name, f"{service}/{RESOURCE_SUFFIX}", LOG_UNITS[name])
                self._log_uids.add(uid)
        uids = sorted(self.catalogue)
        catalogue = pd.DataFrame(
            {
                "unique_id": uids,
                "service": [self.catalogue[u][0] for u in uids],
                "metric": [self.catalogue[u][1] for u in uids],
                "resource_id": [self.catalogue[u][2] for u in uids],
                "unit": [self.catalogue[u][3] for u in uids],
            }
        )
        seen = pd.DataFrame(
            [(u, ds, y) for ds, values in self._discovered for u, y in values.items()],
            columns=["unique_id", "ds", "y"],
        )
        catalogue = with_share_units(catalogue, seen)  # an error share of unstated unit, from its values
        stream = IncidentStream(catalogue, self.call_graph, self.settings, self.calibration)
        floors = stream._scorer.abs_floor  # log counts are sparse: streaming.log_steps.LOG_FLOORS
        for i, uid in enumerate(stream.series):
            if uid in self._log_uids:
                floors[i] = max(floors[i], LOG_FLOORS[self.catalogue[uid][1]])
        return stream

    def _feed(self, ds_us: int, values: dict[str, float], result: StepResult) -> None:
        stream = self.stream
        assert stream is not None
        row = np.array([values.get(u, np.nan) for u in stream.series], dtype="float64")
        ds = pd.Timestamp(ds_us, unit="us", tz="UTC")
        raised = stream.step(ds, row)
        result.steps += 1
        open_now = {id(i) for i in stream.open_incidents}
        for tracked in self._tracked:
            now = id(tracked.incident) in open_now
            if tracked.is_open and not now:
                tracked.is_open = False
                result.events.append(self._event(tracked, "resolved", ds))
            elif not tracked.is_open and now:
                tracked.is_open = True
                result.events.append(self._event(tracked, "reopened", ds))
        for incident in raised:
            tracked = self._track(incident)
            result.events.append(self._event(tracked, "open", ds))
        result.evidence = self._evidence_now()
        self._forget_closed()

    def _track(self, incident: StreamIncident) -> _Tracked:
        service = incident.services[0]
        window = incident.opened_at.floor(self.identity_window)
        ident = incident_id(service, window)
        if ident in self._ids:  # a second incident of the service in one window keys by its own start
            window = incident.opened_at
            ident = incident_id(service, window)
        assert self.stream is not None
        self._ids[ident] = self.stream._steps
        tracked = _Tracked(incident, ident, window)
        self._tracked.append(tracked)
        return tracked

    def _event(self, tracked: _Tracked, state: EventState, ds: pd.Timestamp) -> IncidentEvent:
        catalogue = pd.DataFrame(
            {
                "unique_id": list(self.catalogue),
                "service": [v[0] for v in self.catalogue.values()],
                "metric": [v[1] for v in self.catalogue.values()],
                "resource_id": [v[2] for v in self.catalogue.values()],
            }
        )
        [row] = incident_rows(incidents_frame([tracked.incident]), catalogue, self.identity_window).to_dict(
            "records"
        )
        row["window_start"] = tracked.window_start
        row["incident_id"] = tracked.incident_id
        return IncidentEvent(tracked.incident_id, state, self.key, ds, row, float(tracked.incident.score))

    def _evidence_now(self) -> dict[str, float]:
        """Per service: the evidence of the last step (what the anomaly-score gauge shows)."""
        stream = self.stream
        if stream is None or not stream._recent:
            return {}
        surprise = np.nan_to_num(stream._recent[-1][0], nan=0.0)
        return {sv: float(surprise[stream.service == sv].max(initial=0.0)) for sv in set(stream.service)}

    def _forget_closed(self) -> None:
        """Keep memory bounded for months: closed incidents past re-opening, ids past their window."""
        stream = self.stream
        assert stream is not None
        horizon = stream._steps - self.settings.reopen_within - 1
        stream.closed = [i for i in stream.closed if i.closed_step >= horizon]
        kept = {id(i) for i in stream.closed} | {id(i) for i in stream.open_incidents}
        self._tracked = [t for t in self._tracked if id(t.incident) in kept]
        # An id matters while a later incident could fall in its window: keep a day of steps.
        self._ids = {k: s for k, s in self._ids.items() if stream._steps - s < 10_000}
