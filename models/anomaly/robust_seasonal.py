"""``robust_seasonal`` (:class:`RobustSeasonalDetector`): a point residual against
a causal baseline (median of the same time of day over previous days, or a trailing median
for series without a daily cycle, chosen per series in ``fit``) plus a level-shift/trend
signal (short recent mean against the median of the preceding day), both in units of a
trailing robust scale (MAD). The larger of the two, each relative to its own 99th percentile
in the training data, is calibrated per series against its empirical distribution in ``fit``
with an exponential tail beyond its 99th percentile: a score of 0.99 means "more extreme
than 99 % of normal history".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.grid import duration_steps, past_rolling, to_grid
from models.anomaly.settings import DetectorSettings, Duration

_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
_MIN_CALIBRATION_SAMPLES = 50  # fewer calibrated values than this: use the pooled calibration


def _block_past_median(values: np.ndarray, block: int, n_blocks: int, min_blocks: int, lag: int) -> np.ndarray:
    """Median of the last ``n_blocks`` complete block medians ending ``lag`` steps before t.

    Blocks are ``block`` consecutive grid steps from the grid origin; only blocks whose last step
    is at or before ``t - lag`` count, so the statistic stays causal.
    """
    steps, n_cols = values.shape
    n_full = -(-steps // block)
    padded = np.full((n_full * block, n_cols), np.nan)
    padded[:steps] = values
    per_block = _nanmedian_axis0(padded.reshape(n_full, block, n_cols).transpose(1, 0, 2), max(1, block // 2))
    rolled = pd.DataFrame(per_block).rolling(n_blocks, min_periods=min(min_blocks, n_blocks)).median().to_numpy()
    last_block = (np.arange(steps) - lag + 1) // block - 1
    out = rolled[np.clip(last_block, 0, None)]
    out[last_block < 0] = np.nan
    return out


def _nanmedian_axis0(stack: np.ndarray, min_count: int) -> np.ndarray:
    """Median over axis 0 ignoring NaN (vectorised via one sort); NaN below ``min_count`` values."""
    if stack.shape[0] == 0:
        return np.full(stack.shape[1:], np.nan)
    ordered = np.sort(stack, axis=0)  # NaN sorts last
    count = np.sum(~np.isnan(stack), axis=0)
    lo = np.clip((count - 1) // 2, 0, None)[None]
    hi = np.clip(count // 2, 0, stack.shape[0] - 1)[None]
    median = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    return np.where(count >= max(min_count, 1), median, np.nan)


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """``values`` shifted down ``lag`` rows (NaN above)."""
    out = np.full_like(values, np.nan)
    if lag < len(values):
        out[lag:] = values[: len(values) - lag]
    return out


# --------------------------------------------------------------------------------------------
# Robust seasonal detector.


@dataclass(frozen=True)
class _Calibration:
    """Per-series state learned in ``fit``: baseline kind, scale floor, signal scales, ECDF + tail."""

    seasonal: bool
    scale_floor: float
    point_q: float  # 99th percentile of the point signal in fit
    level_q: float  # 99th percentile of the level signal in fit
    knots: np.ndarray  # sorted quantiles of the combined statistic in fit
    tail: float  # mean excess over the 95th percentile: scale of the exponential tail


# Which way a deviation is a problem, by metric (the last "/" part of a series id). A memory drop
# after a restart or a CPU dip at night is unusual but harmless; traffic matters both ways.
DEFAULT_DIRECTIONS: dict[str, str] = {
    "cpu_pct": "up", "mem_pct": "up", "disk_pct": "up", "latency_p95": "up", "error_rate": "up",
    "request_rate": "both",
}
_SIGNS = {"up": 1, "down": -1, "both": 0}


def _directional(signal: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Keep the deviations that matter per column: rises (+1), falls (-1) or both (0)."""
    return np.where(signs[None, :] == 0, np.abs(signal), np.fmax(signal * signs[None, :], 0.0))


class RobustSeasonalSettings(DetectorSettings):
    season: Duration = "1D"
    n_seasons: int = Field(default=7, ge=1)  # past seasons the seasonal baseline is the median of
    point_window: Duration = "1h"
    level_window: Duration = "30min"
    scale_window: Duration = "1D"
    seasonal_gain: float = Field(default=0.8, gt=0, le=1)
    max_knots: int = Field(default=2048, ge=2)  # quantiles kept of each series' calibration
    # metric name -> which deviations count; None: DEFAULT_DIRECTIONS
    directions: dict[str, Literal["up", "down", "both"]] | None = None


@DETECTORS.register("robust_seasonal")
class RobustSeasonalDetector(AnomalyDetector):
    """Production detector: seasonal/trailing residual + level shift, robust scale, calibrated."""

    name: ClassVar[str] = "robust_seasonal"
    Settings: ClassVar[type[DetectorSettings]] = RobustSeasonalSettings

    def __init__(
        self,
        season: str = "1D",
        n_seasons: int = 7,
        point_window: str = "1h",
        level_window: str = "30min",
        scale_window: str = "1D",
        seasonal_gain: float = 0.8,
        max_knots: int = 2048,
        directions: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        directions = dict(DEFAULT_DIRECTIONS if directions is None else directions)
        bad = {m: d for m, d in directions.items() if d not in _SIGNS}
        if bad:
            raise ValueError(f"directions must be one of {sorted(_SIGNS)}; got {bad}")
        super().__init__(
            season=season, n_seasons=n_seasons, point_window=point_window, level_window=level_window,
            scale_window=scale_window, seasonal_gain=seasonal_gain, max_knots=max_knots,
            directions=directions, **params,
        )
        if n_seasons < 1:
            raise ValueError(f"n_seasons must be at least 1, got {n_seasons}")
        if not 0.0 < seasonal_gain <= 1.0:
            raise ValueError(f"seasonal_gain must be within (0, 1], got {seasonal_gain}")

    def _directions(self, ids: Any) -> np.ndarray:
        """Per column: +1 only rises count, -1 only falls, 0 both (by the id's metric suffix)."""
        directions = self.params["directions"]
        return np.array([_SIGNS[directions.get(str(uid).rsplit("/", 1)[-1], "both")] for uid in ids])

    # Window lengths in grid steps, from the durations in params.
    def _windows(self) -> tuple[int, int, int, int]:
        p, step = self.params, self.step_
        return (
            duration_steps(p["season"], step, "season"),
            duration_steps(p["point_window"], step, "point_window"),
            duration_steps(p["level_window"], step, "level_window"),
            max(2, duration_steps(p["scale_window"], step, "scale_window")),
        )

    def _context_length(self) -> pd.Timedelta:
        season, point, level, scale = self._windows()
        return self.step_ * (season * self.params["n_seasons"] + scale + level + point + 1)

    def _fit(self, df: pd.DataFrame) -> None:
        grid = to_grid(df, self.step_)
        y_median = self._trailing_median(grid.values)
        # A tenth of each series' typical noise: keeps near-flat stretches from dividing by ~0.
        floors = np.nan_to_num(0.1 * _MAD_TO_SIGMA * _col_nanmedian(np.abs(grid.values - y_median)), nan=0.0)
        trailing = self._signals(grid.values, seasonal=False, floors=floors, y_median=y_median)
        seasonal = self._signals(grid.values, seasonal=True, floors=floors, y_median=y_median)
        use_seasonal = self._prefer_seasonal(trailing[2], seasonal[2])
        signs = self._directions(grid.ids)
        point = _directional(np.where(use_seasonal[None, :], seasonal[0], trailing[0]), signs)
        level = _directional(np.where(use_seasonal[None, :], seasonal[1], trailing[1]), signs)
        self.calibration_: dict[str, _Calibration] = {}
        pooled: list[np.ndarray] = []
        warm_up = self._warm_up_steps(len(grid.values), use_seasonal)
        for j, uid in enumerate(grid.ids):
            ready = np.isfinite(point[:, j]) & np.isfinite(level[:, j])
            ready[: warm_up[j]] = False
            pq, lq = _positive_quantile(point[ready, j]), _positive_quantile(level[ready, j])
            combined = np.maximum(point[ready, j] / pq, level[ready, j] / lq)
            pooled.append(combined)
            if combined.size < _MIN_CALIBRATION_SAMPLES:
                continue  # too little normal history of its own: scored with the pooled calibration
            self.calibration_[str(uid)] = _Calibration(
                seasonal=bool(use_seasonal[j]), scale_floor=float(floors[j]), point_q=pq, level_q=lq,
                knots=_knots(combined, self.params["max_knots"]), tail=_tail_scale(combined),
            )
        everything = np.concatenate(pooled)
        if everything.size < _MIN_CALIBRATION_SAMPLES:
            raise ValueError(
                f"not enough history to calibrate: {everything.size} usable samples across {len(grid.ids)} "
                f"series; fit on at least {self._context_length()} of data"
            )
        cals = list(self.calibration_.values()) or [
            _Calibration(False, 0.0, _positive_quantile(point.ravel()), _positive_quantile(level.ravel()), everything, 0.5)
        ]
        # Unseen series (added after fit) fall back to a pooled calibration and the trailing baseline.
        self.pooled_ = _Calibration(
            seasonal=False, scale_floor=0.0,
            point_q=float(np.median([c.point_q for c in cals])), level_q=float(np.median([c.level_q for c in cals])),
            knots=_knots(everything, self.params["max_knots"]), tail=_tail_scale(everything),
        )

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        cals = [self.calibration_.get(str(uid), self.pooled_) for uid in grid.ids]
        use_seasonal = np.array([c.seasonal for c in cals], dtype=bool)
        floors = np.array([c.scale_floor for c in cals])
        point = np.full_like(grid.values, np.nan)
        level = np.full_like(grid.values, np.nan)
        for flag in (False, True):  # each column needs only the baseline chosen for it in fit
            cols = np.flatnonzero(use_seasonal == flag)
            if cols.size:
                p, lv, _ = self._signals(grid.values[:, cols], seasonal=flag, floors=floors[cols])
                point[:, cols], level[:, cols] = p, lv
        signs = self._directions(grid.ids)
        point, level = _directional(point, signs), _directional(level, signs)
        point_q = np.array([c.point_q for c in cals])
        level_q = np.array([c.level_q for c in cals])
        combined = np.maximum(point / point_q, level / level_q)
        scores = np.full_like(combined, np.nan)
        for j, cal in enumerate(cals):
            scores[:, j] = _calibrated(combined[:, j], cal.knots, cal.tail)
        return grid.to_long(scores)

    def _signals(
        self, y: np.ndarray, *, seasonal: bool, floors: np.ndarray, y_median: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed point and level signals (in robust-scale units) and the point residual, per column.

        With ``seasonal`` the columns are first de-seasonalised by the median of the same step
        over the previous ``n_seasons`` seasons; until one season of history exists the trailing
        median stands in for it. ``y_median`` (the trailing median of ``y``) may be passed in
        when already computed. The day-long medians (scale, level reference) are medians of
        completed per-``point_window`` block medians: robust, and ~10x cheaper than exact ones.
        """
        season, point_w, level_w, scale_w = self._windows()
        min_points = max(1, point_w // 2)
        if y_median is None:
            y_median = past_rolling(y, point_w, "median", min_periods=min_points)
        if seasonal:
            v = y - self._seasonal_baseline(y, season, fallback=y_median)
            past_median = past_rolling(v, point_w, "median", min_periods=min_points)
        else:
            v, past_median = y, y_median
        residual = v - past_median
        n_blocks, min_blocks = max(1, scale_w // point_w), 2
        mad = _block_past_median(np.abs(residual), point_w, n_blocks, min_blocks, lag=1)
        scale = np.fmax(_MAD_TO_SIGMA * mad, floors[None, :])
        scale = np.fmax(scale, 1e-4 * np.abs(past_median) + 1e-12)  # a flat series still has a unit
        recent = past_rolling(v, level_w, "mean", min_periods=max(1, level_w // 2), lag=0)
        reference = _block_past_median(v, point_w, n_blocks, min_blocks, lag=level_w)
        return residual / scale, (recent - reference) / scale, residual

    def _seasonal_baseline(self, y: np.ndarray, season: int, fallback: np.ndarray) -> np.ndarray:
        """Median of the same step in the previous ``n_seasons`` seasons, else ``fallback``."""
        stack = np.stack([_lagged(y, season * k) for k in range(1, self.params["n_seasons"] + 1)])
        base = _nanmedian_axis0(stack, min_count=1)
        return np.where(np.isnan(base), fallback, base)

    def _trailing_median(self, y: np.ndarray) -> np.ndarray:
        """Median of the ``point_window`` steps before each step (the trailing baseline)."""
        point_w = self._windows()[1]
        return past_rolling(y, point_w, "median", min_periods=max(1, point_w // 2))

    def _warm_up_steps(self, n_steps: int, use_seasonal: np.ndarray) -> np.ndarray:
        """Leading steps per column kept out of calibration: their baselines are still forming.

        A full scale window (plus a season for seasonal columns) must precede a calibrated value;
        when the data is too short for that, only the first half of it is skipped.
        """
        season, point_w, level_w, scale_w = self._windows()
        trailing = scale_w + level_w + point_w
        steps = np.where(use_seasonal, trailing + season, trailing)
        return np.minimum(steps, n_steps // 2)

    def _prefer_seasonal(self, trailing_residual: np.ndarray, seasonal_residual: np.ndarray) -> np.ndarray:
        """Per column: does the seasonal baseline clearly beat the trailing one (smaller MAD)?

        Compared only after the first ``n_seasons`` seasons, where the seasonal median is complete.
        """
        season = self._windows()[0]
        start = season * self.params["n_seasons"] if len(trailing_residual) > 2 * season * self.params["n_seasons"] else season
        t, s = np.abs(trailing_residual[start:]), np.abs(seasonal_residual[start:])
        both = np.isfinite(t) & np.isfinite(s)
        enough = both.sum(axis=0) >= season  # at least one full season to compare on
        t_mad = _col_nanmedian(np.where(both, t, np.nan))
        s_mad = _col_nanmedian(np.where(both, s, np.nan))
        return enough & (s_mad < self.params["seasonal_gain"] * t_mad)


def _col_nanmedian(values: np.ndarray) -> np.ndarray:
    """Per-column median ignoring NaN; NaN for an all-NaN column (without a warning)."""
    return _nanmedian_axis0(values, min_count=1)


def _positive_quantile(values: np.ndarray, q: float = 0.99) -> float:
    """The ``q`` quantile of finite values, or 1.0 when there are none or it is not positive."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    out = float(np.quantile(values, q))
    return out if out > 0 else 1.0


def _knots(values: np.ndarray, max_knots: int) -> np.ndarray:
    """The sorted sample, thinned to at most ``max_knots`` evenly spaced order statistics."""
    values = np.sort(values[np.isfinite(values)])
    if values.size <= max_knots:
        return values
    return values[np.rint(np.linspace(0, values.size - 1, max_knots)).astype(np.int64)]


def _tail_scale(values: np.ndarray) -> float:
    """Scale of the exponential tail fitted to the excess over the 95th percentile.

    Uses the *median* excess (an exponential's median is ``scale * ln 2``), so a few extreme
    values in the training data (an incident nobody labelled) cannot stretch the tail and hide
    the next incident of the same size.
    """
    values = values[np.isfinite(values)]
    if values.size < 20:
        return 0.5
    u = np.quantile(values, 0.95)
    excess = values[values > u] - u
    return float(max(np.median(excess) / np.log(2.0) if excess.size else 0.0, 0.02))


# Above this quantile of the training statistic, scores come from the fitted tail, not the sample.
_BODY_QUANTILE = 0.99


def _calibrated(x: np.ndarray, knots: np.ndarray, tail: float) -> np.ndarray:
    """Empirical CDF (mid-rank, so ties at a constant value score ~0.5) up to the 99th percentile,
    then an exponential tail: the rarest training values do not set the scale of the extremes."""
    m = knots.size
    if m == 0:
        return np.full_like(x, np.nan)
    finite = np.isfinite(x)
    safe = np.where(finite, x, -np.inf)
    mid_rank = 0.5 * (np.searchsorted(knots, safe, "left") + np.searchsorted(knots, safe, "right"))
    cdf = np.minimum(mid_rank / (m + 1), _BODY_QUANTILE)
    body_end = float(np.quantile(knots, _BODY_QUANTILE))
    beyond = safe > body_end
    excess = np.where(beyond, safe - body_end, 0.0)
    cdf = np.where(beyond, 1.0 - (1.0 - _BODY_QUANTILE) * np.exp(-excess / tail), cdf)
    return np.where(finite, cdf, np.nan)


# --------------------------------------------------------------------------------------------
# Rolling z-score baseline.
