"""What a forecast can be: per-series feasible ranges from the catalogue's unit and the history,
and the clipping of forecast frames (point forecast, interval and quantile columns) to them.

A series' range comes from its unit (``foresight.schemas.UNIT_BOUNDS``: percent in [0, 100],
counts, bytes, rates and seconds non-negative). A series without a known unit is bounded only by
what its history shows is impossible: never negative if it never was; otherwise unbounded.

Clipping is applied after the conformal intervals are built, and it never lowers the coverage of
feasible actuals: if ``lo <= y <= hi`` and ``l <= y <= u`` then
``clip(l, lo, hi) <= y <= clip(u, lo, hi)`` (clipping is monotone and leaves ``y`` where it is).
Nor does it raise a point forecast's error on a feasible actual (``|y - clip(yhat)| <= |y - yhat|``).
So the served band is calibrated at least as well as the unbounded one; it may cover more than
nominal where the unbounded band left the range.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, UNIT_BOUNDS

BOUND_COLUMNS: tuple[str, ...] = (ID_COL, "lower", "upper")


def bounds_for(unit: str | None, history: np.ndarray | pd.Series) -> tuple[float, float]:
    """``(lo, hi)`` a series can take: its unit's physical range when the unit is known, else
    ``(0, inf)`` when its finite history was never negative and ``(-inf, inf)`` when it was."""
    if unit is not None and unit in UNIT_BOUNDS:
        lo, hi = UNIT_BOUNDS[unit]
        return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))
    values = np.asarray(history, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size and values.min() >= 0:
        return 0.0, np.inf
    return -np.inf, np.inf


def series_bounds(history: pd.DataFrame, units: Mapping[str, str] | pd.Series | None = None) -> pd.DataFrame:
    """``unique_id, lower, upper`` for every series of long ``history`` (``unique_id, ds, y``);
    ``units`` maps unique_id to the catalogue's unit (missing ids fall back to the history rule)."""
    unit_of = dict(units.items()) if units is not None else {}
    # Vectorised form of ``bounds_for`` per series: NaN-skipping minimum of the history.
    lowest = history.groupby(ID_COL, sort=True, observed=True)[TARGET_COL].min()
    ids = lowest.index.astype(str)
    lower = np.where(lowest.to_numpy(dtype="float64") >= 0, 0.0, -np.inf)
    upper = np.full(lower.size, np.inf)
    for i, uid in enumerate(ids):
        unit = unit_of.get(uid)
        if unit is not None and unit in UNIT_BOUNDS:
            lower[i], upper[i] = bounds_for(unit, np.empty(0))
    return pd.DataFrame({ID_COL: list(ids), "lower": lower, "upper": upper})


def units_from_catalogue(catalogue: pd.DataFrame) -> dict[str, str]:
    """unique_id -> unit from a series catalogue (rows without a unit are left out)."""
    if catalogue.empty or "unit" not in catalogue.columns:
        return {}
    known = catalogue.dropna(subset=["unit"])
    return dict(zip(known[ID_COL].astype(str), known["unit"].astype(str), strict=True))


def forecast_value_columns(frame: pd.DataFrame) -> list[str]:
    """The columns holding forecast values: ``yhat`` and every numeric ``yhat_*`` (interval bounds
    and quantiles such as ``yhat_lower``, ``yhat_upper``, ``yhat_q90``)."""
    return [c for c in frame.columns
            if (c == "yhat" or str(c).startswith("yhat_")) and pd.api.types.is_numeric_dtype(frame[c])]


def _aligned_bounds(frame: pd.DataFrame, bounds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in BOUND_COLUMNS if c not in bounds.columns]
    if missing:
        raise ValueError(f"bounds frame is missing column(s) {missing}; expected {list(BOUND_COLUMNS)}")
    ids = frame[ID_COL].astype(str)
    table = bounds.assign(**{ID_COL: bounds[ID_COL].astype(str)}).drop_duplicates(ID_COL).set_index(ID_COL)
    lower = ids.map(table["lower"]).fillna(-np.inf).to_numpy(dtype="float64")
    upper = ids.map(table["upper"]).fillna(np.inf).to_numpy(dtype="float64")
    return lower, upper


def clip_forecast(frame: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every forecast value column clipped to its series' ``[lower, upper]``
    (series absent from ``bounds`` are left as they are). Never lowers coverage of feasible actuals
    (see the module docstring)."""
    columns = forecast_value_columns(frame)
    if frame.empty or not columns:
        return frame.copy()
    lower, upper = _aligned_bounds(frame, bounds)
    out = frame.copy()
    for column in columns:
        out[column] = np.clip(out[column].to_numpy(dtype="float64"), lower, upper)
    return out


def points_outside(frame: pd.DataFrame, bounds: pd.DataFrame) -> int:
    """How many forecast values (over all value columns) lie outside their series' bounds."""
    columns = forecast_value_columns(frame)
    if frame.empty or not columns:
        return 0
    lower, upper = _aligned_bounds(frame, bounds)
    values = frame[columns].to_numpy(dtype="float64")
    return int(((values < lower[:, None]) | (values > upper[:, None])).sum())


def bound_forecasts(forecasts: pd.DataFrame, history: pd.DataFrame,
                    catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """The forecasts as served: clipped to each series' range from its catalogue unit and history."""
    units = units_from_catalogue(catalogue) if catalogue is not None else None
    return clip_forecast(forecasts, series_bounds(history, units))
