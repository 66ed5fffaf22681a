"""The forecaster family's template (:class:`Forecaster`), its registry and frequency inference."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import validate_telemetry
from models.base import Model
from models.forecasting.metrics import coverage, smape


class Forecaster(Model):
    """Forecasts every series of a long frame ``unique_id, ds, y`` h steps ahead with intervals.

    ``predict`` returns ``unique_id, ds, yhat, yhat_lower, yhat_upper`` (the central
    ``level`` % interval), h rows per series, in order.
    """

    family = "forecaster"
    # A global model learns across all series at once, so it cannot be fanned out per series.
    is_global: ClassVar[bool] = False

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        """A fresh instance as per-series selection runs it: a daily season of ``season_length``
        steps, backtests ``horizon`` steps long. Default: the constructor's defaults."""
        return cls()

    def fit(self, df: pd.DataFrame, freq: str | None = None) -> Self:
        df = validate_telemetry(df)
        self.freq_ = freq or infer_freq(df)
        self._fit(df)
        self.scales_ = self._mase_scales(df)
        self._fitted = True
        return self

    def score(self, actuals: pd.DataFrame, level: int = 80) -> dict[str, float]:
        """MASE, sMAPE and interval coverage of the forecast against actuals that followed the
        training data (``unique_id, ds, y``); MASE is scaled by each series' in-sample
        seasonal-naive error (daily season), as in the rolling-origin backtest."""
        self._require_fitted()
        actuals = validate_telemetry(actuals)
        h = int(actuals.groupby("unique_id").size().max())
        scored = self.predict(h, level).merge(actuals, on=["unique_id", "ds"], how="inner")
        if scored.empty:
            raise ValueError("the actuals do not overlap the forecast horizon after the training data")
        errors = (scored["y"] - scored["yhat"]).abs().groupby(scored["unique_id"]).mean()
        mase = (errors / self.scales_.reindex(errors.index)).replace([np.inf, -np.inf], np.nan)
        return {
            "mase": float(mase.mean()),
            "smape": smape(scored["y"], scored["yhat"]),
            "coverage": coverage(scored["y"], scored["yhat_lower"], scored["yhat_upper"]),
            "n_series": float(errors.size),
        }

    def _mase_scales(self, df: pd.DataFrame) -> pd.Series:
        season = max(1, int(pd.Timedelta("1D") / pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq_))))
        return series_scales(df, season)

    def predict(self, h: int, level: int = 80) -> pd.DataFrame:
        self._require_fitted()
        if h < 1:
            raise ValueError(f"horizon must be at least 1 step, got {h}")
        if not 0 < level < 100:
            raise ValueError(f"interval level must be within (0, 100), got {level}")
        return self._predict(h, level)

    @abstractmethod
    def _fit(self, df: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, h: int, level: int) -> pd.DataFrame: ...


def series_scales(df: pd.DataFrame, season: int | np.ndarray) -> pd.Series:
    """:func:`~models.forecasting.metrics.seasonal_scale` of every series of a validated frame (sorted by
    series and time), as array operations over the whole frame instead of a call per series.
    ``season`` is one for all, or one per series (in sorted id order)."""
    sizes = df.groupby("unique_id", sort=True, observed=True).size()
    n = sizes.to_numpy()
    lag = np.where(n > season, season, 1)  # seasonal_scale's own rule: one step when not longer than a season
    row_lag = np.repeat(lag, n)
    position = np.arange(len(df)) - np.repeat(np.cumsum(n) - n, n)
    y = df["y"].to_numpy(dtype="float64")
    paired = position >= row_lag
    diffs = np.abs(y[paired] - y[np.flatnonzero(paired) - row_lag[paired]])
    codes = np.repeat(np.arange(len(n)), n)[paired]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.bincount(codes, weights=diffs, minlength=len(n)) / np.bincount(codes, minlength=len(n))
    return pd.Series(np.where(n > lag, scale, np.nan), index=sizes.index, name="y")


def infer_freq(df: pd.DataFrame) -> str:
    """The most common step between consecutive samples, as a pandas frequency string."""
    steps = df.groupby("unique_id", sort=False)["ds"].diff().dropna()
    if steps.empty:
        raise ValueError("cannot infer a frequency: every series has a single sample; pass freq=")
    step = steps.mode().iloc[0]
    return pd.tseries.frequencies.to_offset(step).freqstr


# The built-in forecasters' modules import this one; the registry imports them on its first read.
FORECASTERS: Registry[type[Forecaster]] = Registry("forecaster", builtins=(
    "models.forecasting.seasonal_naive", "models.forecasting.smoothing", "models.forecasting.ensemble",
    "models.forecasting.prophet_model", "models.forecasting.lgbm_global", "models.forecasting.selection",
))
