"""One LightGBM model across all series: recursive multi-step forecasts, conformal intervals.

Why global: a fleet has hundreds of similar resource series with a few weeks of history each;
one model learns the shared daily/weekly shape from all of them. To let it work across series
of different magnitude, every series is divided by its recent level (mean absolute value of the
last ``scale_window`` steps) before features are built, and forecasts are multiplied back.

Target: the scaled change over one season, ``(y[t] - y[t - season]) / scale``. Trees cannot
output values outside those seen in training, so a model of the level itself flattens a trending
series at its historical maximum; the seasonal change is stationary under a linear trend, and
adding it to last season's value extrapolates the trend (the comparison with a level target:
docs/forecasting.md, *LightGBM global model: target and threads*).

Forecasts are recursive: step k's prediction becomes the lag-1 value of step k+1, using
:func:`features.lags.history_features` so training and forecasting share one definition.

Intervals are split-conformal on multi-step errors, not quantile objectives: a quantile model
trained on one-step targets gives one-step quantiles, while the error of a recursive forecast
grows with the horizon. At fit, a calibration model is trained without the last
``calibration steps`` of every series and forecasts them recursively from several origins; the
absolute scaled errors per horizon step are kept, and ``predict(level=...)`` takes their
``level`` quantile per step (monotone in the step, extended by sqrt(k) beyond the calibrated
steps). The final model is then refit on all data. Any level can be asked for without refitting.

Series shorter than twice the longest lag/window are left out of the global model and forecast
by :class:`SeasonalNaive`, recorded in ``fallbacks_`` (unique_id -> reason), as Prophet does.

``n_jobs`` defaults to 1: the data are small (tens of thousands of rows) and on a shared host
OpenMP threads spin against other processes, so more threads made the fit slower
(docs/forecasting.md, *LightGBM global model: target and threads*).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from features.calendar import CALENDAR_FEATURES, calendar_features, future_grid
from features.lags import (
    history_features,
    history_length,
    history_windows,
    lag_features,
    lag_names,
    rolling_features,
    rolling_names,
)
from features.resample import freq_to_timedelta, regular_grid
from foresight.schemas import ID_COL, TARGET_COL, TIME_COL
from models.boosted_trees import LIGHTGBM_LOCK, booster_importance
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.seasonal_naive import SeasonalNaive

log = logging.getLogger(__name__)

# A per-step error quantile needs this many samples to be trusted; later steps extrapolate.
MIN_CALIBRATION_SAMPLES = 20


class InsufficientHistoryError(ValueError):
    """Series too short to train the global model; ``.lengths`` maps unique_id -> steps."""

    def __init__(self, lengths: dict[str, int], needed: int) -> None:
        self.lengths, self.needed = lengths, needed
        sample = dict(list(lengths.items())[:3])
        super().__init__(f"{len(lengths)} series have fewer than {needed} steps of history, e.g. {sample}")


@FORECASTERS.register("lgbm_global")
class LGBMGlobalForecaster(Forecaster):
    """A single LightGBM regressor over every series, forecasting recursively."""

    name = "lgbm_global"
    pip_extras = ("lightgbm",)
    is_global = True

    def __init__(
        self,
        lags: Sequence[int] = (1, 2, 3, 24, 168),
        windows: Sequence[int] = (24,),
        num_leaves: int = 31,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        seed: int = 0,
        season: int = 24,
        scale_window: int = 168,
        calibration_horizon: int = 168,
        n_jobs: int = 1,
    ) -> None:
        lags, windows = tuple(int(k) for k in lags), tuple(int(w) for w in windows)
        if season not in lags:
            raise ValueError(f"the season lag {season} must be one of the lags {lags}")
        super().__init__(
            lags=lags,
            windows=windows,
            num_leaves=num_leaves,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            seed=seed,
            season=season,
            scale_window=scale_window,
            calibration_horizon=calibration_horizon,
            n_jobs=n_jobs,
        )
        self.lags, self.windows, self.season = lags, windows, season
        self.feature_names_ = [*lag_names(lags), *rolling_names(windows), *CALENDAR_FEATURES]
        self.history_ = history_length(lags, windows)

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        """Daily and weekly lags, a daily window, intervals calibrated at the backtest horizon."""
        return cls(
            lags=(1, 2, 3, season_length, 7 * season_length),
            windows=(season_length,),
            season=season_length,
            scale_window=7 * season_length,
            calibration_horizon=horizon,
        )

    # -- fit -----------------------------------------------------------------------------------
    def _fit(self, df: pd.DataFrame) -> None:
        self._step = freq_to_timedelta(self.freq_)
        grid = regular_grid(self._split_off_short_series(df), self.freq_)
        sizes = grid.groupby(ID_COL, sort=True, observed=True).size()
        self.ids_ = sizes.index
        self.last_ds_ = grid.groupby(ID_COL, sort=True, observed=True)[TIME_COL].max()
        self.scale_ = _series_scale(grid, self.params["scale_window"])
        scaled = grid[TARGET_COL].to_numpy() / np.repeat(self.scale_, sizes.to_numpy())
        grid = grid.assign(**{TARGET_COL: scaled})
        X, target = self._training_rows(grid)
        cal_steps = self._calibration_steps(sizes)
        from_end = grid.groupby(ID_COL, sort=False, observed=True).cumcount(ascending=False).to_numpy()
        early = from_end >= cal_steps
        cal_model = self._train(X[early], target[early])
        self.calibration_errors_ = self._calibration_errors(cal_model, grid, sizes.to_numpy(), cal_steps)
        self.booster_ = self._train(X, target)
        ends = np.cumsum(sizes.to_numpy())
        self.history_buffer_ = history_windows(scaled, ends - sizes.to_numpy(), ends, self.history_)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Total ``gain`` (or ``split`` count) per feature of the global model, largest first."""
        self._require_fitted()
        return booster_importance(self.booster_, self.feature_names_, kind)

    def _split_off_short_series(self, df: pd.DataFrame) -> pd.DataFrame:
        """Series spanning fewer than two feature histories go to seasonal naive (``fallbacks_``).

        Raises :class:`InsufficientHistoryError` when no series is long enough for the model.
        """
        needed = 2 * self.history_
        span = df.groupby(ID_COL, sort=True, observed=True)[TIME_COL].agg(["min", "max"])
        steps = (span["max"] - span["min"]) // self._step + 1
        short = steps[steps < needed]
        self.fallbacks_: dict[str, str] = {
            str(uid): f"InsufficientHistoryError: {int(n)} steps, the model needs {needed}"
            for uid, n in short.items()
        }
        self.fallback_model_: SeasonalNaive | None = None
        if len(short) == len(steps):
            raise InsufficientHistoryError({str(k): int(v) for k, v in short.items()}, needed)
        if self.fallbacks_:
            log.warning("lgbm_global: %d series fell back to seasonal naive: %s", len(short), self.fallbacks_)
            is_short = df[ID_COL].isin(short.index)
            self.fallback_model_ = SeasonalNaive(self.season).fit(df[is_short], freq=self.freq_)
            return df[~is_short]
        return df

    def _training_rows(self, grid: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Feature matrix and seasonal-change target for every grid row (NaN target: unusable)."""
        lagged = lag_features(grid, self.lags)
        feats = pd.concat(
            [lagged, rolling_features(grid, self.windows), calendar_features(grid[TIME_COL])], axis=1
        )
        target = grid[TARGET_COL].to_numpy() - lagged[f"lag_{self.season}"].to_numpy()
        return feats[self.feature_names_].to_numpy(dtype="float64"), target

    def _train(self, X: np.ndarray, target: np.ndarray) -> Any:
        import lightgbm as lgb  # lazy: LightGBM takes ~2 s

        usable = np.isfinite(target)
        if usable.sum() < 10:
            raise InsufficientHistoryError({"(all)": int(usable.sum())}, 10)
        params = {
            "objective": "regression",
            "num_leaves": self.params["num_leaves"],
            "learning_rate": self.params["learning_rate"],
            "seed": self.params["seed"],
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.params["n_jobs"],
            "verbosity": -1,
        }
        with LIGHTGBM_LOCK:
            data = lgb.Dataset(X[usable], target[usable], feature_name=self.feature_names_, free_raw_data=True)
            return lgb.train(params, data, num_boost_round=self.params["n_estimators"])

    def _calibration_steps(self, sizes: pd.Series) -> int:
        """Steps held out per series for calibration: up to a third of the shortest series."""
        return int(max(1, min(self.params["calibration_horizon"], sizes.min() // 3)))

    def _calibration_errors(
        self, model: Any, grid: pd.DataFrame, sizes: np.ndarray, steps: int
    ) -> np.ndarray:
        """Absolute scaled errors (origins x steps) of recursive forecasts over the held-out tail.

        Origins are spread over the held-out tail (every ``steps // 8`` steps), each forecasting
        until the tail's end, so early horizon steps get more samples than late ones (NaN pads).
        """
        values = grid[TARGET_COL].to_numpy()
        stride = max(1, steps // 8)
        back = np.arange(steps, 0, -stride)  # steps before the end where each origin starts
        starts = np.repeat(np.cumsum(sizes) - sizes, len(back))
        series_end = np.repeat(np.cumsum(sizes), len(back))
        origin = series_end - np.tile(back, len(sizes))
        history = history_windows(values, starts, origin, self.history_)
        origin_ds = grid[TIME_COL].to_numpy()[origin - 1]
        forecast = self._recursive(model, history, pd.DatetimeIndex(origin_ds), steps)
        idx = origin[:, None] + np.arange(steps)[None, :]
        inside = idx < series_end[:, None]
        actual = np.where(inside, values[np.clip(idx, 0, len(values) - 1)], np.nan)
        return np.abs(actual - forecast)

    # -- predict -------------------------------------------------------------------------------
    def _predict(self, h: int, level: int) -> pd.DataFrame:
        scaled = self._recursive(self.booster_, self.history_buffer_, pd.DatetimeIndex(self.last_ds_), h)
        yhat = scaled * self.scale_[:, None]
        half = self._half_width(h, level)[None, :] * self.scale_[:, None]
        out = future_grid(self.last_ds_, h, self.freq_)
        out["yhat"] = yhat.ravel()
        out["yhat_lower"] = (yhat - half).ravel()
        out["yhat_upper"] = (yhat + half).ravel()
        if self.fallback_model_ is None:
            return out
        out = pd.concat([out, self.fallback_model_.predict(h, level)], ignore_index=True)
        return out.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)

    def _recursive(self, model: Any, history: np.ndarray, last: pd.DatetimeIndex, h: int) -> np.ndarray:
        """Scaled forecasts (rows x h), feeding each step's prediction back as history."""
        n = history.shape[0]
        buffer = np.concatenate([history, np.full((n, h), np.nan)], axis=1)
        offsets = pd.TimedeltaIndex(np.arange(1, h + 1) * self._step)
        stamps = last.repeat(h) + np.tile(offsets, n)
        calendar = calendar_features(stamps)[list(CALENDAR_FEATURES)].to_numpy().reshape(n, h, -1)
        L = self.history_
        for k in range(h):
            window = buffer[:, k : k + L]
            X = np.column_stack([history_features(window, self.lags, self.windows), calendar[:, k, :]])
            with LIGHTGBM_LOCK:
                change = model.predict(X, num_threads=self.params["n_jobs"])
            base = window[:, -self.season]
            # A missing season-ago value (gap) falls back to the window's mean level.
            base = np.where(np.isfinite(base), base, np.nanmean(window[:, -self.season :], axis=1))
            buffer[:, L + k] = base + change
        return buffer[:, L:]

    def _half_width(self, h: int, level: int) -> np.ndarray:
        """Per-step conformal half-width in scaled units: monotone, sqrt-extended past calibration."""
        errors = self.calibration_errors_
        counts = np.isfinite(errors).sum(axis=0)
        reliable = np.flatnonzero(counts >= min(MIN_CALIBRATION_SAMPLES, counts.max()))
        k0 = int(reliable.max()) + 1  # last reliable step, 1-based
        q = np.nanquantile(errors[:, :k0], level / 100, axis=0)
        q = np.maximum.accumulate(q)
        steps = np.arange(1, h + 1)
        beyond = q[-1] * np.sqrt(steps / k0)
        return np.where(steps <= k0, q[np.minimum(steps, k0) - 1], beyond)


def _series_scale(grid: pd.DataFrame, window: int) -> np.ndarray:
    """Mean |y| of each series' last ``window`` observed steps (1 where that is 0): its level."""
    tail = grid.dropna(subset=[TARGET_COL]).groupby(ID_COL, sort=True, observed=True).tail(window)
    level = tail[TARGET_COL].abs().groupby(tail[ID_COL], sort=True, observed=True).mean()
    level = level.reindex(grid[ID_COL].drop_duplicates().sort_values().to_numpy()).to_numpy()
    return np.where(np.isfinite(level) & (level > 0), level, 1.0)
