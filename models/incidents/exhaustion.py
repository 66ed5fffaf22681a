"""How full a service's resource is and when it will be full, read from the telemetry at a moment.

:func:`resource_outlook` looks at a service's series of one resource kind (memory, disk, CPU) that
are shares of capacity (unit ``percent`` or ``ratio``) and returns the instance nearest full at
``at``: its value, its normal level (median over the trailing ``baseline``) and, when it is
filling, the minutes until 100 % at its least-squares trend over the trailing ``trend`` (the
forecast a page states: "full in ~70 min"). A leak fills the leaking instance; the most
*surprising* series of an incident can be another one (a neighbour taking its load), so a page
about a resource names the instance nearest exhaustion. Pure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.incidents.category import metric_kind

SHARE_SCALE: dict[str, float] = {"percent": 100.0, "%": 100.0, "ratio": 1.0}
HORIZON_MINUTES = 7 * 24 * 60.0  # a resource that needs longer than this to fill is not filling up


@dataclass(frozen=True)
class ResourceOutlook:
    """One instance's resource at a moment: ``value`` and ``normal`` in the series' unit, ``full``
    its capacity in that unit, ``minutes_to_full`` None when it is not filling (within a week)."""

    unique_id: str
    resource_id: str
    metric: str
    unit: str
    value: float
    normal: float | None
    full: float
    minutes_to_full: float | None


def resource_outlook(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    service: str,
    at: pd.Timestamp,
    kinds: Collection[str],
    trend: pd.Timedelta = pd.Timedelta(minutes=30),
    baseline: pd.Timedelta = pd.Timedelta(days=1),
) -> ResourceOutlook | None:
    """The instance of ``service`` whose ``kinds`` resource is nearest full at ``at`` (None when
    the service has no such share series with a sample in the ``trend`` before ``at``)."""
    if telemetry.empty or catalogue.empty:
        return None
    cat = catalogue.drop_duplicates("unique_id")
    cat = cat[cat["service"].astype(str) == str(service)]
    units = cat["unit"].astype(str).str.lower() if "unit" in cat.columns else pd.Series("", index=cat.index)
    best: ResourceOutlook | None = None
    for row, unit in zip(cat.itertuples(index=False), units, strict=True):
        metric = str(row.metric)
        full = SHARE_SCALE.get(unit)
        if full is None or metric_kind(metric) not in kinds:
            continue
        resource = getattr(row, "resource_id", None)
        outlook = _series_outlook(
            telemetry, str(row.unique_id), resource, metric, unit, full, pd.Timestamp(at), trend, baseline
        )
        if outlook is not None and (best is None or _nearer_full(outlook, best)):
            best = outlook
    return best


def _series_outlook(
    telemetry: pd.DataFrame,
    uid: str,
    resource: object,
    metric: str,
    unit: str,
    full: float,
    at: pd.Timestamp,
    trend: pd.Timedelta,
    baseline: pd.Timedelta,
) -> ResourceOutlook | None:
    series = telemetry[
        (telemetry["unique_id"] == uid) & (telemetry["ds"] <= at) & (telemetry["ds"] > at - baseline)
    ]
    series = series.dropna(subset=["y"]).sort_values("ds")
    recent = series[series["ds"] > at - trend]
    if recent.empty:
        return None
    value = float(recent["y"].iloc[-1])
    minutes = (recent["ds"] - recent["ds"].iloc[0]).dt.total_seconds().to_numpy() / 60.0
    slope = (
        float(np.polyfit(minutes, recent["y"].to_numpy(dtype="float64"), 1)[0]) if len(recent) >= 3 else 0.0
    )
    to_full = (full - value) / slope if slope > 0 else None
    return ResourceOutlook(
        unique_id=uid,
        resource_id=str(resource) if resource is not None and not pd.isna(resource) else uid,
        metric=metric,
        unit=unit,
        value=value,
        normal=float(series["y"].median()) if len(series) else None,
        full=full,
        minutes_to_full=max(to_full, 0.0) if to_full is not None and to_full <= HORIZON_MINUTES else None,
    )


def _nearer_full(a: ResourceOutlook, b: ResourceOutlook) -> bool:
    """Whether ``a`` is nearer exhaustion than ``b``: the higher share, then the sooner full."""
    share_a, share_b = a.value / a.full, b.value / b.full
    if not np.isclose(share_a, share_b):
        return share_a > share_b
    return (a.minutes_to_full if a.minutes_to_full is not None else np.inf) < (
        b.minutes_to_full if b.minutes_to_full is not None else np.inf
    )


def series_level(
    telemetry: pd.DataFrame, unique_id: str, at: pd.Timestamp, baseline: pd.Timedelta = pd.Timedelta(days=1)
) -> tuple[float | None, float | None]:
    """A series' last value at or before ``at`` and its normal level (median over the trailing
    ``baseline``); ``(None, None)`` without a sample in it. For evidence that knows no values (the
    roll-up's, a derived ``<id>#wire`` series' source)."""
    at = pd.Timestamp(at)
    uid = str(unique_id).split("#", 1)[0]
    rows = telemetry[
        (telemetry["unique_id"] == uid) & (telemetry["ds"] <= at) & (telemetry["ds"] > at - baseline)
    ]
    values = rows.dropna(subset=["y"]).sort_values("ds")["y"]
    if values.empty:
        return None, None
    return float(values.iloc[-1]), float(values.median())
