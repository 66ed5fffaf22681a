"""Seasonal-naive forecaster: tomorrow looks like today. The baseline every model must beat.

Point forecast: each series repeats its last ``season_length`` values (the last value when the
series is not longer than a season). Interval: symmetric, from the empirical ``level`` quantile
of the in-sample absolute seasonal-naive errors, widened by sqrt(k) for a step k seasons ahead
(the random-walk growth of FPP3 §5.5), so it needs no distributional assumption beyond symmetry.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from features.calendar import future_grid
from features.lags import history_windows
from foresight.schemas import ID_COL, TARGET_COL, TIME_COL
from models.forecasting.base import FORECASTERS, Forecaster

FORECAST_COLUMNS: tuple[str, ...] = (ID_COL, TIME_COL, "yhat", "yhat_lower", "yhat_upper")


@FORECASTERS.register("seasonal_naive")
class SeasonalNaive(Forecaster):
    """Repeat the last season of each series; intervals from in-sample seasonal-naive errors."""

    name = "seasonal_naive"

    def __init__(self, season_length: int = 24) -> None:
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        super().__init__(season_length=season_length)
        self.season_length = season_length

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        return cls(season_length=season_length)

    def _fit(self, df: pd.DataFrame) -> None:
        m = self.season_length
        grouped = df.groupby(ID_COL, sort=True, observed=True)
        sizes = grouped.size()
        self.ids_ = sizes.index
        self.last_ds_ = grouped[TIME_COL].max()
        # Per-series period: the season when there is more than one season of history, else 1.
        self.period_ = np.where(sizes.to_numpy() > m, m, 1)
        ends = np.cumsum(sizes.to_numpy())
        values = df[TARGET_COL].to_numpy(dtype="float64")
        self.tail_ = history_windows(values, ends - sizes.to_numpy(), ends, m)
        period_by_row = np.repeat(self.period_, sizes.to_numpy())
        y = df[TARGET_COL]
        lag_m, lag_1 = grouped[TARGET_COL].shift(m), grouped[TARGET_COL].shift(1)
        prev = np.where(period_by_row == m, lag_m.to_numpy(), lag_1.to_numpy())
        abs_err = np.abs(y.to_numpy() - prev)
        keep = np.isfinite(abs_err)
        self.abs_residuals_ = pd.DataFrame({ID_COL: df[ID_COL].to_numpy()[keep], "abs_err": abs_err[keep]})

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        m, period = self.season_length, self.period_[:, None]
        steps = np.arange(h)[None, :]
        yhat = np.take_along_axis(self.tail_, m - period + steps % period, axis=1)
        half = self._half_width(level)[:, None] * np.sqrt(np.ceil((steps + 1) / period))
        out = future_grid(self.last_ds_, h, self.freq_)
        out["yhat"] = yhat.ravel()
        out["yhat_lower"] = (yhat - half).ravel()
        out["yhat_upper"] = (yhat + half).ravel()
        return out

    def forecast_values(self, values: np.ndarray, h: int, season: int | None = None) -> np.ndarray:
        """Point forecasts (rows x h) for right-aligned, NaN-padded histories (see ``models.forecasting.panel``).

        Same rule as ``predict``: repeat the last season, or the last value for a row not longer
        than a season. ``season`` defaults to the model's ``season_length``.
        """
        m = season or self.season_length
        n, width = values.shape
        observed = np.isfinite(values)
        first = np.where(observed.any(axis=1), observed.argmax(axis=1), width)
        period = np.where(width - first > m, m, 1)[:, None]
        steps = np.arange(h)[None, :]
        cols = width - period + steps % period
        out = values[np.arange(n)[:, None], np.clip(cols, 0, max(width - 1, 0))] if width else np.full((n, h), np.nan)
        # A gap at the copied position: carry the last observed value instead.
        last = _last_observed(values)
        return np.where(np.isfinite(out), out, last[:, None])

    def _half_width(self, level: int) -> np.ndarray:
        """Per-series ``level`` quantile of absolute one-season errors (0 without any)."""
        q = self.abs_residuals_.groupby(ID_COL, sort=True, observed=True)["abs_err"].quantile(level / 100)
        return q.reindex(self.ids_).fillna(0.0).to_numpy()


def _last_observed(values: np.ndarray) -> np.ndarray:
    """Each row's last finite value (NaN for a row without any)."""
    observed = np.isfinite(values)
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    last = values.shape[1] - 1 - observed[:, ::-1].argmax(axis=1)
    return np.where(observed.any(axis=1), values[np.arange(values.shape[0]), last], np.nan)
