"""Incident benchmark on any system's incident history: replay, raise incidents as a stream, score them.

``foresight bench incidents --data DIR --out INCIDENTS.csv`` loads every day under ``DIR``
(:func:`load_days`: the plain layout of :mod:`connectors.labels.incident_layout` or the Nezha data set's,
:mod:`bench.datasets.nezha`), puts each on its replay grid (:mod:`bench.incident_sampling`: sub-minute
samples averaged into minutes) and feeds it step by step through
:class:`models.incidents.stream.IncidentStream` (causal: an incident is raised at the minute the
pipeline would have raised it live, from samples up to that minute only), writes one row per
incident and scores them with the data set's protocol (``shared/data/README.md`` beside the checkout).
``--pipeline flow`` raises the incidents the way the detect flow's roll-up builder does instead
(default anomaly detector, then the roll-up builder, :class:`models.incidents.rollup_builder.RollupBuilder`; :mod:`bench.incidents_flow`),
scored by the same protocol:

- a fault is *detected* when an incident is opened within ``window`` (default 5 minutes) after its
  ``inject_time``; each incident detects at most one fault, every other incident is a false
  alarm (reported per day of data); the delay is from injection to that incident;
- AC@1 / AC@3: share of detected faults whose injected service is the incident's first / among
  its first three ranked services;
- fault-type accuracy: share of detected faults whose incident ``category`` is the injected fault
  type itself (``inject_type``; the stream names it with :func:`models.incidents.fault_types.classify_fault`,
  :func:`with_fault_types`); beside it, the coarse category accuracy: the incident's
  ``coarse_category`` against the coarse class the injected type shows as (:data:`FAULT_CATEGORIES`).

Besides the protocol's figures, false alarms are split by whether they open inside a *fault hour*
(a clock hour holding at least one listed injection, the grouping of the data set's fault lists)
or outside, with the rate per day of fault-free hours: an alarm amid the injections may be an
unlisted disturbance or an after-effect, one in the fault-free hours is a false page for certain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.datasets.nezha import NezhaLayoutError, load_day
from bench.incident_sampling import replay_grid, sampling_interval, settings_for_interval
from bench.incidents_flow import flow_incidents
from connectors.labels.incident_layout import Fault, IncidentDay, is_incident_dir, read_incident_dir
from foresight.settings import DetectConfig
from models.incidents.fault_types import COARSE_CATEGORY
from models.incidents.replay import replay
from models.incidents.settings import StreamSettings

# Nezha's inject types -> Foresight's coarse incident categories (the coarse figure only).
FAULT_CATEGORIES: dict[str, str] = {
    kind: COARSE_CATEGORY[kind] for kind in ("cpu_contention", "cpu_consumed", "network_delay", "exception", "return")
}
DETECTION_WINDOW = pd.Timedelta("5min")
PIPELINES: tuple[str, ...] = ("stream", "flow")  # models.incidents.stream; the detect flow's roll-up
OUTPUT_COLUMNS: tuple[str, ...] = (
    "opened_at",
    "services",
    "category",
    "score",
    "severity",
    "closed_at",
    "day",
    "evidence",
    "reopened",
    "coarse_category",
    "fault_type_confidence",
)


@dataclass(frozen=True)
class IncidentFigures:
    """The protocol's figures over all replayed days."""

    faults: int
    detected: int
    incidents: int
    false_alarms: int
    days: float
    median_delay_seconds: float | None
    ac_at_1: float | None
    ac_at_3: float | None
    fault_type_accuracy: float | None
    coarse_category_accuracy: float | None = None  # coarse_category against FAULT_CATEGORIES
    false_alarms_outside_fault_hours: int = 0  # opened in a clock hour without listed injections
    fault_free_days: float = 0.0  # how much of the data lies outside the fault hours

    @property
    def detection_rate(self) -> float | None:
        return self.detected / self.faults if self.faults else None

    @property
    def false_alarms_per_day(self) -> float | None:
        return self.false_alarms / self.days if self.days > 0 else None

    @property
    def false_alarms_in_fault_hours(self) -> int:
        return self.false_alarms - self.false_alarms_outside_fault_hours

    @property
    def false_alarms_per_fault_free_day(self) -> float | None:
        if self.fault_free_days <= 0:
            return None
        return self.false_alarms_outside_fault_hours / self.fault_free_days

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "detection_rate": self.detection_rate,
            "false_alarms_per_day": self.false_alarms_per_day,
            "false_alarms_in_fault_hours": self.false_alarms_in_fault_hours,
            "false_alarms_per_fault_free_day": self.false_alarms_per_fault_free_day,
        }


def match_faults(
    incidents: pd.DataFrame, faults: Sequence[Fault], window: pd.Timedelta = DETECTION_WINDOW
) -> pd.DataFrame:
    """Per fault (time order): the first not yet used incident opened within ``window`` after it.

    Returns ``inject_time, service, kind, detected, incident, opened_at, delay_seconds, top1, top3,
    category, category_ok, coarse_category, coarse_ok`` (``incident``: the row position of the
    detecting incident; incident fields NA / NaN / False when undetected). ``category_ok``: the
    incident's ``category`` is the fault's kind; ``coarse_ok``: its ``coarse_category`` (when it has
    one) is the kind's coarse class (:data:`FAULT_CATEGORIES`).
    """
    opened = (
        pd.to_datetime(incidents["opened_at"], utc=True)
        if len(incidents)
        else pd.Series([], dtype="datetime64[ns, UTC]")
    )
    used: set[int] = set()
    rows = []
    for fault in sorted(faults, key=lambda f: f.inject_time):
        hit = None
        for i, t in enumerate(opened):
            if i not in used and fault.inject_time <= t <= fault.inject_time + window:
                hit = i
                break
        row: dict[str, Any] = {
            "inject_time": fault.inject_time,
            "service": fault.service,
            "kind": fault.kind,
            "detected": hit is not None,
            "incident": hit,
            "opened_at": pd.NaT,
            "delay_seconds": float("nan"),
            "top1": False,
            "top3": False,
            "category": None,
            "category_ok": False,
            "coarse_category": None,
            "coarse_ok": False,
        }
        if hit is not None:
            used.add(hit)
            ranked = str(incidents.iloc[hit]["services"]).split(";")
            category = str(incidents.iloc[hit]["category"])
            coarse = incidents.iloc[hit].get("coarse_category")
            coarse = str(coarse) if coarse is not None and pd.notna(coarse) else None
            row.update(
                opened_at=opened.iloc[hit],
                delay_seconds=(opened.iloc[hit] - fault.inject_time).total_seconds(),
                top1=ranked[:1] == [fault.service],
                top3=fault.service in ranked[:3],
                category=category,
                category_ok=category == fault.kind,
                coarse_category=coarse,
                coarse_ok=coarse is not None and FAULT_CATEGORIES.get(fault.kind) == coarse,
            )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["incident"] = frame["incident"].astype("Int64")
    return frame


def fault_hours(faults: Sequence[Fault]) -> list[pd.Timestamp]:
    """The clock hours (their starts, UTC) holding at least one injection, in time order."""
    return sorted({f.inject_time.floor("h") for f in faults})


def in_fault_hours(times: pd.Series, faults: Sequence[Fault]) -> pd.Series:
    """Per time: whether it falls in a clock hour holding at least one injection."""
    hours = set(fault_hours(faults))
    return pd.to_datetime(times, utc=True).dt.floor("h").isin(hours)


def fault_free_length(start: pd.Timestamp, end: pd.Timestamp, faults: Sequence[Fault]) -> float:
    """Days of ``[start, end)`` outside the fault hours."""
    hour = pd.Timedelta("1h")
    inside = sum(
        (max(min(h + hour, end) - max(h, start), pd.Timedelta(0)) for h in fault_hours(faults)),
        pd.Timedelta(0),
    )
    return float(((end - start) - inside) / pd.Timedelta("1D"))


def score_incidents(
    incidents: pd.DataFrame,
    faults: Sequence[Fault],
    days: float,
    window: pd.Timedelta = DETECTION_WINDOW,
    fault_free_days: float = 0.0,
) -> tuple[IncidentFigures, pd.DataFrame]:
    """The protocol's figures for ``incidents`` against ``faults`` over ``days`` of data (of which
    ``fault_free_days`` outside the fault hours), and the per-fault matches behind them."""
    if days < 0 or not 0 <= fault_free_days <= days:
        raise ValueError(f"need 0 <= fault_free_days <= days, got {fault_free_days} and {days}")
    matches = match_faults(incidents, faults, window)
    detected = matches[matches["detected"]] if len(matches) else matches
    n = len(detected)
    false_alarm = ~pd.Series(range(len(incidents))).isin(set(detected["incident"]) if n else set())
    outside = ~in_fault_hours(pd.Series(incidents["opened_at"]).reset_index(drop=True), faults)
    figures = IncidentFigures(
        faults=len(faults),
        detected=n,
        incidents=len(incidents),
        false_alarms=len(incidents) - n,
        days=days,
        median_delay_seconds=float(detected["delay_seconds"].median()) if n else None,
        ac_at_1=float(detected["top1"].mean()) if n else None,
        ac_at_3=float(detected["top3"].mean()) if n else None,
        fault_type_accuracy=float(detected["category_ok"].mean()) if n else None,
        coarse_category_accuracy=float(detected["coarse_ok"].mean()) if n else None,
        false_alarms_outside_fault_hours=int((false_alarm & outside).sum()),
        fault_free_days=fault_free_days,
    )
    return figures, matches


def load_days(data: Path) -> list[IncidentDay]:
    """Every day under ``data``: a plain-layout folder (it holds ``telemetry.csv.gz``), a Nezha day
    folder (it holds ``metric/``), or a folder of such folders (each read by its own layout, in
    name order)."""
    data = Path(data)
    if not data.is_dir():
        raise NezhaLayoutError(f"{data} is not a directory")
    if is_incident_dir(data) or (data / "metric").is_dir():
        return [_load_one(data)]
    folders = sorted(p for p in data.iterdir() if is_incident_dir(p) or (p / "metric").is_dir())
    if not folders:
        raise NezhaLayoutError(
            f"{data} holds no incident data: expected a folder with telemetry.csv.gz (plain layout) "
            "or metric/ (Nezha layout), or a folder of such folders"
        )
    return [_load_one(folder) for folder in folders]


def _load_one(folder: Path) -> IncidentDay:
    return read_incident_dir(folder) if is_incident_dir(folder) else load_day(folder)


def on_replay_grid(day: IncidentDay) -> IncidentDay:
    """``day`` with its telemetry on the grid it is replayed at (:func:`bench.incident_sampling.replay_grid`)."""
    telemetry, _ = replay_grid(day.telemetry)
    if telemetry is day.telemetry:
        return day
    return replace(day, telemetry=telemetry)


def replay_day(day: IncidentDay, settings: StreamSettings | None = None) -> pd.DataFrame:
    """One day's incidents as the streaming pipeline raises them (``day`` column added); on data
    sampled less often than every minute, ``settings``' durations keep their length in minutes
    (:func:`bench.incident_sampling.settings_for_interval`)."""
    settings = settings_for_interval(settings or StreamSettings(), sampling_interval(day.telemetry))
    incidents = replay(day.telemetry, day.catalogue, day.call_graph, settings)
    return incidents.assign(day=day.name)


def day_span(day: IncidentDay) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of the data ``day`` holds (its last sample plus one sampling interval)."""
    ds = day.telemetry["ds"]
    return ds.min(), ds.max() + sampling_interval(day.telemetry)


def day_length(day: IncidentDay) -> float:
    """How many days of data ``day`` holds (its span plus one sampling interval)."""
    start, end = day_span(day)
    return float((end - start) / pd.Timedelta("1D"))


def day_pipeline(
    pipeline: str, settings: StreamSettings | None = None, detect: DetectConfig | None = None
) -> Callable[[IncidentDay], pd.DataFrame]:
    """The function raising one day's incidents for ``pipeline`` (one of :data:`PIPELINES`):
    ``stream`` with ``settings``, ``flow`` with ``detect`` (default: the shipped settings)."""
    if pipeline == "stream":
        return lambda day: replay_day(day, settings)
    if pipeline == "flow":
        return lambda day: flow_incidents(day, detect)
    raise ValueError(f"unknown incident pipeline {pipeline!r}; choose one of: {', '.join(PIPELINES)}")


def run(
    data: Path,
    out: Path | None = None,
    settings: StreamSettings | None = None,
    *,
    pipeline: str = "stream",
    detect: DetectConfig | None = None,
    window: pd.Timedelta = DETECTION_WINDOW,
) -> tuple[IncidentFigures, pd.DataFrame, pd.DataFrame]:
    """Replay and score every day under ``data`` (:func:`load_days`) through ``pipeline``
    (:func:`day_pipeline`); write the incidents to ``out`` when given.

    Returns the figures, the incidents and the per-fault matches.
    """
    day_pipeline(pipeline, settings, detect)  # an unknown pipeline is refused before any reading
    return run_days(load_days(Path(data)), out, settings, pipeline=pipeline, detect=detect, window=window)


def run_days(
    days: Sequence[IncidentDay],
    out: Path | None = None,
    settings: StreamSettings | None = None,
    *,
    pipeline: str = "stream",
    detect: DetectConfig | None = None,
    window: pd.Timedelta = DETECTION_WINDOW,
) -> tuple[IncidentFigures, pd.DataFrame, pd.DataFrame]:
    """:func:`run` on days already in memory (from any reader, or generated); a fault counts as
    detected by an incident opened within ``window`` after it."""
    if window <= pd.Timedelta(0):
        raise ValueError(f"the detection window must be positive, got {window}")
    raise_incidents = day_pipeline(pipeline, settings, detect)
    days = [on_replay_grid(d) for d in days]
    incidents = with_fault_types(pd.concat([raise_incidents(d) for d in days], ignore_index=True))
    faults = [f for d in days for f in d.faults]
    figures, matches = score_incidents(
        incidents,
        faults,
        sum(day_length(d) for d in days),
        window,
        fault_free_days=sum(fault_free_length(*day_span(d), d.faults) for d in days),
    )
    if out is not None:
        write_incidents(incidents, Path(out))
    return figures, incidents, matches


def with_fault_types(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents with the fine fault type in ``category`` and the coarse class in ``coarse_category``.

    The stream names a ``fault_type`` (:mod:`models.incidents.fault_types`); a pipeline whose rows name none
    (the flow's: the roll-up names one only in its evidence JSON) keeps its coarse class in
    ``coarse_category`` and is ``unknown`` in ``category``.
    """
    out = incidents.copy()
    out["coarse_category"] = out["category"]
    if "fault_type" in out.columns:
        out["category"] = out["fault_type"]
        out = out.drop(columns=["fault_type"])
    else:
        out["category"] = "unknown"
        out["fault_type_confidence"] = 0.0
    return out


def fault_type_confusion(matches: pd.DataFrame) -> pd.DataFrame:
    """Detected faults counted by injected kind (rows) and the type named (columns)."""
    detected = matches[matches["detected"]] if len(matches) else matches
    if detected.empty:
        return pd.DataFrame()
    return pd.crosstab(detected["kind"].rename("injected"), detected["category"].rename("named"))


def write_incidents(incidents: pd.DataFrame, out: Path) -> None:
    """CSV with :data:`OUTPUT_COLUMNS`; times as UTC ISO 8601."""
    frame = incidents.reindex(columns=list(OUTPUT_COLUMNS)).copy()
    for col in ("opened_at", "closed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True).map(lambda t: t.isoformat() if pd.notna(t) else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
