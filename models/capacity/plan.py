"""Capacity plan: when will each resource reach its threshold, how likely that is, and how much
capacity keeps it safe.

Pure: forecasts, current values, thresholds and the catalogue in, one row per resource series
out. "p50" is the point forecast ``yhat`` and "p90" is ``yhat_upper``, the upper bound of the
central interval (forecast with ``level=80``). The runway a plan leads with is the median's: the
day the forecast itself reaches the threshold. The upper band's crossing is the earliest plausible
day, and the chance of crossing within the horizon comes from the same band
(:mod:`models.capacity.runway`), so a series whose median stays far below its threshold shows a
wide band as a small probability, never as a short runway. Each metric is planned against its own
target utilisation (memory's, ``capacity.memory_target_utilisation``, is the one rightsizing uses
too), and every row carries the forecast-start check of :mod:`models.capacity.forecast_start` when
``current`` holds the recent history.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, UTC_DTYPE, require_columns
from models.capacity.forecast_start import START_COLUMNS, forecast_start_checks
from models.capacity.runway import band_z, horizon_crossing_probability

PLAN_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "service",
    "resource_id",
    "metric",
    "threshold",
    "current",
    "peak_p50",
    "peak_p90",
    "days_to_threshold",
    "days_to_threshold_earliest",
    "crossing_probability",
    "threshold_date",
    "threshold_date_earliest",
    "threshold_date_latest",
    "capacity_needed",
    "crosses_threshold",
    "target_utilisation",
    "start_jump",
    "start_noise",
    "start_warning",
)
_DAY = pd.Timedelta(days=1)


def capacity_plan(
    forecasts: pd.DataFrame,
    current: pd.DataFrame,
    thresholds: Mapping[str, float],
    catalogue: pd.DataFrame,
    target_utilisation: float,
    metric_targets: Mapping[str, float] | None = None,
    *,
    start_k: float = 5.0,
    start_window: int = 48,
    level: float = 80.0,
) -> pd.DataFrame:
    """One row per forecast series whose metric has a threshold, most urgent first.

    Inputs: ``forecasts`` (unique_id, ds, yhat, yhat_lower, yhat_upper; a central interval of
    ``level`` percent), ``current`` (unique_id, y and optionally ds: the latest value per series is
    used, and its ds is the forecast origin; telemetry works as is), ``thresholds`` (metric ->
    "full" line), ``catalogue`` (unique_id, service, resource_id, metric) and
    ``target_utilisation`` (same unit as the metric, e.g. 70 for percent metrics), overridden per
    metric by ``metric_targets``.

    Columns:
    - unique_id, service, resource_id, metric, threshold
    - current: latest observed value; peak_p50 / peak_p90: max of yhat / yhat_upper over the horizon
    - days_to_threshold: the runway, days from the forecast origin (current's ds, else one step
      before the first forecast) to the first step whose median (yhat) reaches the threshold, the
      expected crossing; NaN if the median stays below it within the horizon
    - days_to_threshold_earliest: the same for the upper band (p90): the earliest plausible
      crossing; NaN if even the band stays below
    - crossing_probability: the chance the resource reaches its threshold at some step of the
      horizon, from the band (:func:`models.capacity.runway.horizon_crossing_probability`: the
      largest per-step probability, a lower bound). At least 0.5 when the median crosses and at
      least ``(1 - level/100) / 2`` (0.1) when the band does, so every runway has its probability.
    - threshold_date: the median's crossing step (NaT if never), the date to plan on; around it
      threshold_date_earliest = first step the upper bound (p90) crosses and
      threshold_date_latest = first step the lower bound (p10) crosses (NaT: not within the
      horizon, so that date is beyond it)
    - capacity_needed: peak_p90 / target_utilisation, the factor capacity must scale by so the
      p90 peak stays at the target (1.25 = +25 %; <= 1 means current capacity suffices)
    - crosses_threshold: whether the median reaches the threshold within the horizon
      (days_to_threshold is not NaN)
    - target_utilisation: the target capacity_needed is against (the metric's own, else the default)
    - start_jump, start_noise, start_warning: the forecast-start check
      (:func:`models.capacity.forecast_start.forecast_start_checks` with ``start_k`` and
      ``start_window``; NaN / None where ``current`` holds fewer than two values of a series)

    Most urgent first: soonest median crossing, then the most likely to cross, then the largest
    capacity needed.
    """
    require_columns(forecasts, (ID_COL, TIME_COL, "yhat", "yhat_lower", "yhat_upper"), "capacity_plan forecasts")
    require_columns(current, (ID_COL, TARGET_COL), "capacity_plan current")
    require_columns(catalogue, (ID_COL, "service", "resource_id", "metric"), "capacity_plan catalogue")
    band_z(level)  # an impossible level fails here, before any work
    targets = {**{m: float(target_utilisation) for m in thresholds}, **dict(metric_targets or {})}
    bad = {m: t for m, t in [("default", target_utilisation), *targets.items()] if not t > 0}
    if bad:
        raise ValueError(f"target_utilisation must be positive, got {bad}")
    limits = pd.Series(dict(thresholds), name="threshold", dtype="float64")
    series = catalogue[[ID_COL, "service", "resource_id", "metric"]].drop_duplicates(ID_COL)
    series = series.assign(threshold=series["metric"].map(limits)).dropna(subset=["threshold"])
    fc = forecasts.merge(series[[ID_COL, "threshold"]], on=ID_COL, how="inner")
    if fc.empty:
        return _empty_plan()
    fc = fc.sort_values([ID_COL, TIME_COL], kind="stable")
    grouped = fc.groupby(ID_COL, sort=True, observed=True)
    plan = pd.DataFrame(
        {
            "peak_p50": grouped["yhat"].max(),
            "peak_p90": grouped["yhat_upper"].max(),
            "threshold_date": _first_crossing(fc, "yhat"),
            "threshold_date_earliest": _first_crossing(fc, "yhat_upper"),
            "threshold_date_latest": _first_crossing(fc, "yhat_lower"),
            "crossing_probability": horizon_crossing_probability(fc, level),
            "origin": _origins(fc, current),
        }
    )
    plan["current"] = _latest(current)
    plan["days_to_threshold"] = (plan["threshold_date"] - plan["origin"]) / _DAY
    plan["days_to_threshold_earliest"] = (plan["threshold_date_earliest"] - plan["origin"]) / _DAY
    plan["crosses_threshold"] = plan["threshold_date"].notna()
    out = series.merge(plan.reset_index(names=ID_COL), on=ID_COL, how="inner")
    out["target_utilisation"] = out["metric"].map(targets).fillna(float(target_utilisation)).astype("float64")
    out["capacity_needed"] = out["peak_p90"] / out["target_utilisation"]
    out = out.merge(_start_checks(fc, current, start_k, start_window), on=ID_COL, how="left")
    urgency = ["days_to_threshold", "crossing_probability", "capacity_needed"]
    out = out.sort_values(urgency, ascending=[True, False, False], na_position="last")
    return out[list(PLAN_COLUMNS)].reset_index(drop=True)


def _start_checks(fc: pd.DataFrame, current: pd.DataFrame, k: float, window: int) -> pd.DataFrame:
    if TIME_COL not in current.columns or not {"yhat_lower", "yhat_upper"} <= set(fc.columns):
        return pd.DataFrame({c: pd.Series(dtype="object" if c in (ID_COL, "start_warning") else "float64")
                             for c in START_COLUMNS})
    return forecast_start_checks(fc, current, k=k, window=window)


def _first_crossing(fc: pd.DataFrame, column: str) -> pd.Series:
    """Per series, the first ds where ``column`` reaches the threshold (NaT when it never does)."""
    crossed = fc[fc[column] >= fc["threshold"]]
    first = crossed.groupby(ID_COL, sort=True, observed=True)[TIME_COL].min()
    return first.reindex(fc[ID_COL].drop_duplicates().sort_values().to_numpy())


def _origins(fc: pd.DataFrame, current: pd.DataFrame) -> pd.Series:
    """The forecast origin per series: current's last ds, else one forecast step before the first."""
    grouped = fc.groupby(ID_COL, sort=True, observed=True)[TIME_COL]
    first = grouped.min()
    steps = grouped.diff().groupby(fc[ID_COL], observed=True).min()
    inferred = first - steps.reindex(first.index).fillna(pd.Timedelta(0))
    if TIME_COL not in current.columns:
        return inferred
    observed = current.groupby(ID_COL, sort=True, observed=True)[TIME_COL].max()
    return observed.reindex(first.index).fillna(inferred)


def _latest(current: pd.DataFrame) -> pd.Series:
    """The last value per series (by ds when present, else by row order)."""
    ordered = current
    if TIME_COL in current.columns:
        ordered = current.sort_values([ID_COL, TIME_COL], kind="stable")
    return ordered.groupby(ID_COL, sort=True, observed=True)[TARGET_COL].last()


def _empty_plan() -> pd.DataFrame:
    dtypes = dict.fromkeys(PLAN_COLUMNS, "float64")
    dtypes.update(dict.fromkeys(("unique_id", "service", "resource_id", "metric"), "string"))
    dates = ("threshold_date", "threshold_date_earliest", "threshold_date_latest")
    dtypes.update(dict.fromkeys(dates, UTC_DTYPE))
    dtypes["crosses_threshold"] = "bool"
    dtypes["start_warning"] = "object"
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
