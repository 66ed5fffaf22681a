"""Long telemetry as a right-aligned matrix, so per-series statistical models run vectorised.

A :class:`Panel` holds one row per series and one column per step of ``freq``. Rows are aligned
on their *last* step (column ``T - 1`` is every series' newest value), padded with NaN on the
left where a series is shorter and at missing steps (gaps). Right alignment makes a
rolling-origin backtest a column slice: ``values[:, : T - k]`` is every series with its own last
``k`` steps held out, which is exactly what :func:`models.forecasting.backtest.backtest` does
with frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.calendar import future_grid
from features.resample import freq_to_timedelta, regular_grid
from foresight.schemas import ID_COL, TARGET_COL, TIME_COL


@dataclass(frozen=True)
class Panel:
    """Series as rows of a right-aligned, NaN-padded matrix (see the module docstring)."""

    ids: pd.Index
    values: np.ndarray
    last_ds: pd.Series
    freq: str

    @property
    def lengths(self) -> np.ndarray:
        """Steps from each series' first observation to its last (gaps included)."""
        observed = np.isfinite(self.values)
        first = np.where(observed.any(axis=1), observed.argmax(axis=1), self.values.shape[1])
        return self.values.shape[1] - first

    def subset(self, rows: np.ndarray) -> Panel:
        """The panel restricted to ``rows`` (a boolean mask or integer positions)."""
        ids = self.ids[rows]
        return Panel(ids, self.values[rows], self.last_ds.loc[ids], self.freq)


def to_panel(df: pd.DataFrame, freq: str) -> Panel:
    """A validated long frame ``unique_id, ds, y`` (sorted by series and time) as a :class:`Panel`."""
    step = freq_to_timedelta(freq)
    ids = df[ID_COL]
    same_series = (ids == ids.shift()).to_numpy(dtype=bool, na_value=False)
    steps = df[TIME_COL].diff()
    # Telemetry is usually on its grid already; the outer merge that fills gaps is the slow part.
    regular = bool((steps[same_series] == step).all())
    grid = df if regular else regular_grid(df, freq)
    sizes = grid.groupby(ID_COL, sort=True, observed=True).size()
    width = int(sizes.max())
    row = np.repeat(np.arange(len(sizes)), sizes.to_numpy())
    col = (
        width
        - np.repeat(sizes.to_numpy(), sizes.to_numpy())
        + grid.groupby(ID_COL, sort=True, observed=True).cumcount().to_numpy()
    )
    values = np.full((len(sizes), width), np.nan)
    values[row, col] = grid[TARGET_COL].to_numpy(dtype="float64")
    last_ds = grid.groupby(ID_COL, sort=True, observed=True)[TIME_COL].max()
    return Panel(sizes.index, values, last_ds, freq)


def forecast_frame(panel: Panel, yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> pd.DataFrame:
    """``unique_id, ds, yhat, yhat_lower, yhat_upper`` from (series x h) arrays, h rows per series."""
    h = yhat.shape[1]
    out = future_grid(panel.last_ds, h, panel.freq)
    out["yhat"] = yhat.ravel()
    out["yhat_lower"] = lower.ravel()
    out["yhat_upper"] = upper.ravel()
    return out


def steps_per_day(freq: str) -> int:
    """How many ``freq`` steps make a day (the daily season); at least 1."""
    return max(1, int(pd.Timedelta("1D") / freq_to_timedelta(freq)))


def seasonal_scales(values: np.ndarray, season: int) -> np.ndarray:
    """Per row: MASE's denominator, the mean absolute in-sample seasonal-naive error.

    Uses ``season`` where a row has more than ``season`` steps, else the one-step naive error
    (as :func:`models.forecasting.metrics.seasonal_scale` does for one series); NaN-padded rows
    are fine. NaN where a row has no usable pair.
    """
    lengths = Panel(pd.RangeIndex(len(values)), values, pd.Series(dtype="float64"), "1h").lengths
    out = np.full(len(values), np.nan)
    for m, rows in ((season, lengths > season), (1, lengths <= season)):
        if not rows.any() or values.shape[1] <= m:
            continue
        diffs = np.abs(values[rows, m:] - values[rows, :-m])
        count = np.isfinite(diffs).sum(axis=1)
        total = np.nansum(diffs, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = np.where(count > 0, total / count, np.nan)
    return out
