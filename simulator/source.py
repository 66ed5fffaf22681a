"""The ``simulator`` source: the fleet's telemetry, catalogue, logs and ground-truth incidents.

The whole configured span is always generated and then sliced, so a sample's value never
depends on the window asked for; a source instance keeps the last span it generated.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.sources.base import SOURCES, SourceBatch, Window
from foresight.schemas import CATALOGUE_COLUMNS, INCIDENT_COLUMNS, UTC_DTYPE
from simulator.fleet import Fleet, build_fleet
from simulator.logs import generate_logs
from simulator.scenarios import PlannedIncident, plan_scenario
from simulator.signals import METRIC_UNITS, Signals, generate_signals
from simulator.timegrid import TimeGrid, build_grid, resolve_end

# Beyond INCIDENT_COLUMNS: the instance at fault, a readable summary, and when the precursor began
# (so lead-time evaluation knows how early a warning could honestly have come).
INCIDENT_EXTRA_COLUMNS: tuple[str, ...] = ("resource_id", "description", "precursor_start")


class SimulatorOptions(BaseModel):
    """Options of a ``simulator`` source (``SourceConfig.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    days: int = Field(default=21, ge=1)  # days of telemetry generated
    step_minutes: int = Field(default=5, ge=1)  # sampling step; must divide a day
    end: str | datetime | None = None  # the span's exclusive end (UTC); None: today's UTC midnight
    services_instances: int = Field(default=2, ge=1)  # instances per service

    @field_validator("step_minutes")
    @classmethod
    def _divides_a_day(cls, value: int) -> int:
        if (24 * 60) % value:
            raise ValueError(f"step_minutes must divide a day evenly, got {value}")
        return value

    @field_validator("end")
    @classmethod
    def _a_time(cls, value: str | datetime | None) -> str | datetime | None:
        if value is not None:
            resolve_end(value)
        return value


@SOURCES.register("simulator")
class SimulatorSource:
    """A deterministic simulated web-shop fleet: same parameters and end, same frames."""

    Settings: ClassVar[type[BaseModel]] = SimulatorOptions  # its options, checked when the settings load

    def __init__(
        self,
        name: str = "simulator",
        seed: int = 7,
        days: int = 21,
        step_minutes: int = 5,
        end: str | pd.Timestamp | None = None,
        services_instances: int = 2,
    ) -> None:
        try:
            SimulatorOptions(seed=seed, days=days, step_minutes=step_minutes, services_instances=services_instances)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
            raise ValueError(f"simulator {name!r}: " + "; ".join(problems)) from None
        self.name = name
        self.seed = int(seed)
        self.days = int(days)
        self.step_minutes = int(step_minutes)
        self.end = None if end is None else resolve_end(end)
        self.services_instances = int(services_instances)
        self._cached: tuple[pd.Timestamp, SourceBatch] | None = None

    def fetch(self, window: Window | None = None) -> SourceBatch:
        """The span ending at ``end`` (default: today's UTC midnight), or only what lies in ``window``."""
        end = self.end if self.end is not None else resolve_end(None)
        if self._cached is None or self._cached[0] != end:
            full = simulate(
                self.name,
                seed=self.seed,
                days=self.days,
                step_minutes=self.step_minutes,
                end=end,
                services_instances=self.services_instances,
            )
            self._cached = (end, full)
        full = self._cached[1]
        return _copy(full) if window is None else slice_batch(full, window)

    def __repr__(self) -> str:
        return (
            f"SimulatorSource(name={self.name!r}, seed={self.seed}, days={self.days}, "
            f"step_minutes={self.step_minutes}, end={self.end!r}, "
            f"services_instances={self.services_instances})"
        )


def simulate(
    name: str = "simulator",
    *,
    seed: int = 7,
    days: int = 21,
    step_minutes: int = 5,
    end: str | pd.Timestamp | None = None,
    services_instances: int = 2,
) -> SourceBatch:
    """Generate a whole span (fleet, plan, signals, then frames) without a source object."""
    fleet = build_fleet(seed, services_instances)
    grid = build_grid(resolve_end(end), days, step_minutes)
    scenario = plan_scenario(seed, fleet, grid)
    signals = generate_signals(seed, fleet, grid, scenario)
    return SourceBatch(
        source=name,
        telemetry=telemetry_frame(fleet, grid, signals, scenario.scrape_gaps),
        catalogue=catalogue_frame(fleet, name),
        logs=generate_logs(seed, fleet, grid, scenario, signals),
        incidents=incidents_frame(fleet, grid, signals, name),
    )


def _series(fleet: Fleet) -> list[tuple[str, int, str]]:
    """(unique_id, instance position, metric) for every series, sorted by unique_id."""
    return sorted(
        (f"{inst.service}/{inst.instance_id}/{metric}", k, metric)
        for k, inst in enumerate(fleet.instances)
        for metric in METRIC_UNITS
    )


def telemetry_frame(fleet: Fleet, grid: TimeGrid, signals: Signals, gaps: np.ndarray) -> pd.DataFrame:
    """Long telemetry sorted by ``(unique_id, ds)``; a failed scrape loses every metric of its instance."""
    series = _series(fleet)
    values = np.stack([signals.values[metric][k] for _, k, metric in series])
    present = ~np.stack([gaps[k] for _, k, _ in series])
    uids = np.array([uid for uid, _, _ in series], dtype=object)
    ds = np.broadcast_to(grid.ds.asi8, values.shape)[present]
    return pd.DataFrame(
        {
            "unique_id": pd.array(np.repeat(uids, present.sum(axis=1)), dtype="string"),
            "ds": pd.Series(ds.astype("datetime64[us]")).dt.tz_localize("UTC").astype(UTC_DTYPE),
            "y": values[present].astype("float64"),
        }
    )


def catalogue_frame(fleet: Fleet, source: str) -> pd.DataFrame:
    """One row per series with ``CATALOGUE_COLUMNS``; labels are JSON text."""
    rows = []
    for uid, k, metric in _series(fleet):
        inst = fleet.instances[k]
        labels = json.dumps({"service": inst.service, "instance": inst.instance_id, "az": inst.az})
        unit = METRIC_UNITS[metric]
        rows.append((uid, source, metric, labels, inst.service, inst.instance_id, inst.instance_type, unit))
    return pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS)).astype("string")


def _severity(peak_error: float, latency_over_slo: float) -> str:
    """PagerDuty severity from the impact: failed requests first, then latency against the SLO."""
    if peak_error >= 0.1 or latency_over_slo >= 2.0:
        return "critical"
    if peak_error >= 0.03 or latency_over_slo >= 1.0:
        return "error"
    return "warning"


def _describe(
    inc: PlannedIncident, fleet: Fleet, grid: TimeGrid, signals: Signals
) -> tuple[str, float, float]:
    """A one-line description plus the incident's peak error ratio and peak latency / SLO."""
    v, k = signals.values, inc.instance
    iid = fleet.instances[k].instance_id
    span = slice(inc.start, inc.end)
    peak_err = float(v["error_rate"][k, span].max())
    lat_ratio = float(v["latency_p95"][k, span].max() / signals.slo_s[k])
    hours = (inc.start - inc.precursor) * grid.step_minutes / 60.0
    if inc.category == "resource_leak" and inc.variant == "container_oom":
        text = (f"memory leak on {iid}: the container hit its memory limit after {hours:.1f} h (host memory "
                f"{v['mem_pct'][k, inc.precursor]:.0f}% -> {v['mem_pct'][k, inc.start - 1]:.0f}%); "
                f"OOM-killed and restarted")
    elif inc.category == "resource_leak":
        text = (f"memory leak on {iid}: memory grew from {v['mem_pct'][k, inc.precursor]:.0f}% to 100% "
                f"over {hours:.1f} h; container OOM-killed and restarted")
    elif inc.category == "disk":
        already = " (volume already high for days)" if inc.variant == "prefilled_volume" else ""
        text = (f"runaway writer on {iid}: disk filled from {v['disk_pct'][k, inc.precursor]:.0f}%{already} to "
                f"{v['disk_pct'][k, inc.start]:.0f}% over {hours:.1f} h; writes failed until cleanup")
    elif inc.category == "saturation":
        text = (f"hot-key traffic surge on {iid}: CPU {v['cpu_pct'][k, span].max():.0f}%, latency p95 "
                f"{v['latency_p95'][k, span].max():.2f}s past the {signals.slo_s[k]:.2f}s SLO")
    else:
        text = f"bad release {inc.version} canaried on {iid}: error ratio up to {peak_err:.0%}; rolled back"
    return text, peak_err, lat_ratio


def incidents_frame(fleet: Fleet, grid: TimeGrid, signals: Signals, source: str) -> pd.DataFrame:
    """Ground truth: ``INCIDENT_COLUMNS`` then ``INCIDENT_EXTRA_COLUMNS``, one row per incident."""
    rows = []
    for inc in signals.incidents:
        text, peak_err, lat_ratio = _describe(inc, fleet, grid, signals)
        start = grid.ds[inc.start]
        rows.append({
            "incident_id": f"{source}-{start:%Y%m%dT%H%MZ}-{inc.service}-{inc.category}",
            "service": inc.service,
            "category": inc.category,
            "start": start,
            "end": grid.ds[inc.end],
            "severity": _severity(peak_err, lat_ratio),
            "resource_id": fleet.instances[inc.instance].instance_id,
            "description": text,
            "precursor_start": grid.ds[inc.precursor],
        })
    columns = [*INCIDENT_COLUMNS, *INCIDENT_EXTRA_COLUMNS]
    times = ("start", "end", "precursor_start")
    dtypes = {c: (UTC_DTYPE if c in times else "string") for c in columns}
    return pd.DataFrame(rows, columns=columns).astype(dtypes)


def slice_batch(batch: SourceBatch, window: Window) -> SourceBatch:
    """Samples and log lines in ``[start, end)``, and the incidents that overlap it."""
    start, end = window.start.tz_convert("UTC"), window.end.tz_convert("UTC")

    def inside(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame[(frame[column] >= start) & (frame[column] < end)].reset_index(drop=True)

    incidents = batch.incidents
    if incidents is not None:
        incidents = incidents[(incidents["start"] < end) & (incidents["end"] > start)].reset_index(drop=True)
    return SourceBatch(
        source=batch.source,
        telemetry=inside(batch.telemetry, "ds"),
        catalogue=batch.catalogue.copy(),
        logs=None if batch.logs is None else inside(batch.logs, "ts"),
        incidents=incidents,
    )


def _copy(batch: SourceBatch) -> SourceBatch:
    """A deep copy, so callers can mutate frames without touching the cached span."""
    return SourceBatch(
        batch.source,
        batch.telemetry.copy(),
        batch.catalogue.copy(),
        None if batch.logs is None else batch.logs.copy(),
        None if batch.incidents is None else batch.incidents.copy(),
    )
