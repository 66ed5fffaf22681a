"""The failed-request share of an error or a success rate: one percentage point in its own units.

Any share of failed requests has an absolute floor (the stream's ``error_floor``) and counts
``error_weight`` times once it rose ``error_material`` percentage points
(:mod:`models.incidents.stream`), whatever unit the catalogue gives it: :func:`failed_share_unit`
reads the unit, :func:`with_share_units` fills in an unstated one from the series' values. Pure.
"""

from __future__ import annotations

import pandas as pd

from models.incidents.category import metric_direction, metric_kind
from models.incidents.metric_vocabulary import metric_unit


def failed_share_unit(metric: str, unit: str) -> float:
    """One percentage point in the units of ``metric`` when it is a share of failed (or, for a
    success rate, succeeded) requests, else 0 (not a share: no absolute floor).

    An ``errors`` metric is a share when its unit says so (``percent`` / ``%`` or ``ratio``; an
    empty unit is read from the name, e.g. ``error_pct``, ``error_ratio``:
    :func:`models.incidents.metric_vocabulary.metric_unit`); a success rate is one whatever its unit (a
    ratio unless it says percent). An error rate in ``ratio`` units sits near 0, so its relative
    floor is ~0 and a blip of a few tenths of a point reads as a many-sigma jump: the simulator's
    ``error_rate`` paged on such blips without this floor (docs/incidents.md, *How the stream's
    settings were chosen*).
    """
    if metric_kind(metric) != "errors":
        return 0.0
    unit = unit.strip().lower() or metric_unit(metric)
    if unit in ("percent", "%"):
        return 1.0
    if unit == "ratio" or is_success_rate(metric):
        return 0.01
    return 0.0


def with_share_units(catalogue: pd.DataFrame, telemetry: pd.DataFrame) -> pd.DataFrame:
    """``catalogue`` with the empty ``unit`` of each ``errors`` series whose name states none
    either filled from its values: all within [0, 1] is a ``ratio``, within [0, 100] a
    ``percent``; otherwise (a count of errors) it stays empty. Series with a unit are untouched."""
    unit = (
        catalogue["unit"].fillna("").astype(str)
        if "unit" in catalogue.columns
        else pd.Series("", index=catalogue.index)
    )
    metric = catalogue["metric"].astype(str)
    unknown = (unit.str.strip() == "") & metric.map(lambda m: metric_kind(m) == "errors" and not metric_unit(m))
    if not unknown.any():
        return catalogue
    ids = set(catalogue.loc[unknown, "unique_id"].astype(str))
    values = telemetry[telemetry["unique_id"].astype(str).isin(ids)]
    bounds = values.groupby(values["unique_id"].astype(str))["y"].agg(["min", "max"])
    share = pd.Series("", index=bounds.index, dtype=object)
    share[(bounds["min"] >= 0) & (bounds["max"] <= 100)] = "percent"
    share[(bounds["min"] >= 0) & (bounds["max"] <= 1)] = "ratio"
    filled = catalogue["unique_id"].astype(str).map(share).fillna("")
    return catalogue.assign(unit=unit.where(~unknown, filled))


def is_success_rate(metric: str) -> bool:
    """A share of requests that succeeded: an ``errors`` metric whose fall is the problem."""
    return metric_kind(metric) == "errors" and metric_direction(metric) < 0
