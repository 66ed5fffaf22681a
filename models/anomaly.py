"""Anomaly detectors: score every telemetry sample in [0, 1] by how unusual it is, causally.

Template method (after Merlion): the public :meth:`AnomalyDetector.fit` / :meth:`predict` /
:meth:`score` validate the frame, keep causal context and evaluate event-wise; detectors
implement only ``_fit`` and ``_raw_scores`` over a regular time grid.

Causality: a score at ``t`` depends on samples at or before ``t`` only, so a live detect run and
a backtest see the same numbers. ``fit`` keeps the tail of each training series (the detector's
context length) and ``predict`` prepends it to a series whose frame starts later, so scoring the
last few hours gives the same scores as scoring the whole history.

Detectors (registry :data:`DETECTORS`):

- ``robust_seasonal`` (production, :class:`RobustSeasonalDetector`): a point residual against
  a causal baseline (median of the same time of day over previous days, or a trailing median
  for series without a daily cycle, chosen per series in ``fit``) plus a level-shift/trend
  signal (short recent mean against the median of the preceding day), both in units of a
  trailing robust scale (MAD). The larger of the two, each relative to its own 99th percentile
  in the training data, is calibrated per series against its empirical distribution in ``fit``
  with an exponential tail beyond its 99th percentile: a score of 0.99 means "more extreme
  than 99 % of normal history".
- ``rolling_zscore`` (baseline, :class:`RollingZScoreDetector`): ``|z|`` against a trailing
  mean and standard deviation, mapped through the normal CDF.

Samples are snapped to the nearest step of a common grid (the most common sampling step seen in
``fit``); missing steps are gaps that the rolling statistics skip.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, require_columns, validate_telemetry
from models.base import Model
from models.events import as_timedelta, episodes_frame, evaluate_alarms

SCORE_COL = "score"
_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
_MIN_CALIBRATION_SAMPLES = 50  # fewer calibrated values than this: use the pooled calibration


class AnomalyDetector(Model):
    """Scores ``unique_id, ds, y`` samples in [0, 1]; subclasses implement ``_fit`` / ``_raw_scores``."""

    family: ClassVar[str] = "anomaly"
    # Constructor parameters for when the scores feed the incident builder (the train and detect
    # flows' candidate): e.g. leave repeats to its `for:` and hysteresis. Benchmarks use the defaults.
    incident_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def for_incidents(cls, **overrides: Any) -> Self:
        """A fresh instance as it feeds the incident builder: ``incident_params``, then ``overrides``."""
        return cls(**{**cls.incident_params, **overrides})

    def fit(self, df: pd.DataFrame) -> Self:
        """Learn per-series normal behaviour from ``df`` (clean telemetry) and keep causal context."""
        df = validate_telemetry(df)
        self.step_: pd.Timedelta = _infer_step(df)
        self._fit(df)
        self.context_: pd.DataFrame = _series_tails(df, self._context_length())
        self._fitted = True
        return self

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """``unique_id, ds, y, score``: one row per input row, sorted by ``(unique_id, ds)``."""
        self._require_fitted()
        df = validate_telemetry(df)
        frame, is_input = _prepend_context(df, self.context_)
        raw = self._raw_scores(frame)
        scores = np.clip(np.nan_to_num(raw[is_input], nan=0.0), 0.0, 1.0)
        return df.assign(**{SCORE_COL: scores})

    def score(
        self,
        df: pd.DataFrame,
        incidents: pd.DataFrame,
        catalogue: pd.DataFrame,
        threshold: float = 0.99,
        *,
        horizon: str | pd.Timedelta = "60min",
        grace: str | pd.Timedelta = "15min",
        gap: str | pd.Timedelta = "30min",
    ) -> dict[str, Any]:
        """Event-wise recall / precision / lead time of service alarms (any series >= threshold).

        Only incidents starting within ``df``'s time span count: the detector cannot see others.
        """
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be within (0, 1), got {threshold}")
        per_service = service_scores(self.predict(df), catalogue)
        alarms = per_service.assign(alarm=per_service[SCORE_COL] >= threshold)
        episodes = episodes_frame(alarms, "alarm", gap)
        require_columns(incidents, ["service", "start"], "incidents")
        lo, hi = df[TIME_COL].min(), df[TIME_COL].max()
        truth = incidents[(incidents["start"] >= lo) & (incidents["start"] <= hi)]
        metrics = evaluate_alarms(episodes, truth, horizon, grace).to_dict()
        return {**metrics, "threshold": threshold, "incidents": len(truth), "episodes": len(episodes)}

    @property
    def context_length(self) -> pd.Timedelta:
        """How much history a score depends on: pass at least this much before the window of
        interest to ``predict`` when the fitted context does not reach it (fit long ago)."""
        self._require_fitted()
        return self._context_length()

    def _context_length(self) -> pd.Timedelta:
        """How much history before a sample its score depends on (kept from ``fit``)."""
        return pd.Timedelta(0)

    @abstractmethod
    def _fit(self, df: pd.DataFrame) -> None: ...

    @abstractmethod
    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        """Scores in [0, 1] (NaN = not enough history) aligned with the sorted frame ``df``."""


DETECTORS: Registry[type[AnomalyDetector]] = Registry("anomaly detector")
# Detector modules that import this one (so it cannot import them) and register on import.
_DETECTOR_MODULES = (
    "models.streaming_anomaly",
    "models.knn_anomaly",
    "models.ensemble_anomaly",
    "models.streaming_ensemble",
    "models.robust_z_detectors",
)


def detectors() -> Registry[type[AnomalyDetector]]:
    """The registry with every built-in detector registered, whichever module defines it."""
    import importlib

    for module in _DETECTOR_MODULES:
        importlib.import_module(module)
    return DETECTORS


def service_scores(scores: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """``service, ds, score``: the highest series score of each service at each time."""
    require_columns(scores, [ID_COL, TIME_COL, SCORE_COL], "anomaly scores")
    require_columns(catalogue, [ID_COL, "service"], "catalogue")
    services = catalogue.drop_duplicates(ID_COL).set_index(ID_COL)["service"]
    service = scores[ID_COL].map(services)
    unknown = service.isna()
    if unknown.any():
        missing = sorted(scores.loc[unknown, ID_COL].unique())
        raise ValueError(f"{len(missing)} scored series are not in the catalogue, e.g. {missing[:5]}")
    frame = pd.DataFrame({"service": service.astype("string"), TIME_COL: scores[TIME_COL], SCORE_COL: scores[SCORE_COL]})
    return frame.groupby(["service", TIME_COL], as_index=False, sort=True)[SCORE_COL].max()


# --------------------------------------------------------------------------------------------
# Grid: every series on one regular time axis, as a (time x series) matrix.


@dataclass(frozen=True)
class _Grid:
    """A wide (steps x series) view of a sorted long frame and the way back to its rows."""

    values: np.ndarray  # float64 (T, N), NaN where a series has no sample
    ids: pd.Index  # the N unique_ids, column order
    rows: np.ndarray  # time index of each long row
    cols: np.ndarray  # series index of each long row

    def to_long(self, wide: np.ndarray) -> np.ndarray:
        """The long-frame values of a (T, N) matrix computed on this grid."""
        return wide[self.rows, self.cols]


def _to_grid(df: pd.DataFrame, step: pd.Timedelta) -> _Grid:
    """Snap ``df`` (sorted long telemetry) onto a common regular grid of ``step`` from midnight UTC."""
    codes, ids = pd.factorize(df[ID_COL], sort=True)
    # Anchor the grid at midnight UTC so block boundaries are the same whatever the frame's start.
    offsets = (df[TIME_COL] - df[TIME_COL].min().floor("1D")) / step
    rows = np.rint(offsets.to_numpy(dtype="float64")).astype(np.int64)
    values = np.full((int(rows.max()) + 1, len(ids)), np.nan)
    values[rows, codes] = df[TARGET_COL].to_numpy(dtype="float64")  # a collision keeps the later sample
    return _Grid(values=values, ids=pd.Index(ids), rows=rows, cols=np.asarray(codes))


def _infer_step(df: pd.DataFrame) -> pd.Timedelta:
    """The most common sampling step across series (the grid step)."""
    steps = df.groupby(ID_COL, sort=False)[TIME_COL].diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("cannot infer the sampling step: every series has a single sample")
    return pd.Timedelta(steps.mode().iloc[0])


def _steps(duration: str | pd.Timedelta, step: pd.Timedelta, what: str) -> int:
    """A duration as a whole number of grid steps (at least one)."""
    return max(1, int(round(as_timedelta(duration, what) / step)))


def _series_tails(df: pd.DataFrame, length: pd.Timedelta) -> pd.DataFrame:
    """The samples of each series within ``length`` of its last sample (the causal context)."""
    if length <= pd.Timedelta(0):
        return df.iloc[0:0]
    last = df.groupby(ID_COL, sort=False)[TIME_COL].transform("max")
    return df[df[TIME_COL] > last - length].reset_index(drop=True)


def _prepend_context(df: pd.DataFrame, context: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``df`` with each series' stored context before its first sample, and a mask of ``df``'s rows."""
    if context.empty:
        return df, np.ones(len(df), dtype=bool)
    first = df.groupby(ID_COL, sort=False)[TIME_COL].min()
    start = context[ID_COL].map(first)
    before = context[start.notna() & (context[TIME_COL] < start)]
    if before.empty:
        return df, np.ones(len(df), dtype=bool)
    frame = pd.concat([before, df], ignore_index=True)
    is_input = np.r_[np.zeros(len(before), dtype=bool), np.ones(len(df), dtype=bool)]
    order = np.lexsort((frame[TIME_COL].to_numpy(), frame[ID_COL].to_numpy(dtype=object)))
    return frame.iloc[order].reset_index(drop=True), is_input[order]


def _past_rolling(values: np.ndarray, window: int, how: str, min_periods: int, lag: int = 1) -> np.ndarray:
    """A rolling statistic per column over the ``window`` steps ending ``lag`` steps before t."""
    rolled = getattr(pd.DataFrame(values).rolling(window, min_periods=min_periods), how)()
    return rolled.shift(lag).to_numpy() if lag else rolled.to_numpy()


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


@DETECTORS.register("robust_seasonal")
class RobustSeasonalDetector(AnomalyDetector):
    """Production detector: seasonal/trailing residual + level shift, robust scale, calibrated."""

    name: ClassVar[str] = "robust_seasonal"

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
            _steps(p["season"], step, "season"),
            _steps(p["point_window"], step, "point_window"),
            _steps(p["level_window"], step, "level_window"),
            max(2, _steps(p["scale_window"], step, "scale_window")),
        )

    def _context_length(self) -> pd.Timedelta:
        season, point, level, scale = self._windows()
        return self.step_ * (season * self.params["n_seasons"] + scale + level + point + 1)

    def _fit(self, df: pd.DataFrame) -> None:
        grid = _to_grid(df, self.step_)
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
        grid = _to_grid(df, self.step_)
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
            y_median = _past_rolling(y, point_w, "median", min_periods=min_points)
        if seasonal:
            v = y - self._seasonal_baseline(y, season, fallback=y_median)
            past_median = _past_rolling(v, point_w, "median", min_periods=min_points)
        else:
            v, past_median = y, y_median
        residual = v - past_median
        n_blocks, min_blocks = max(1, scale_w // point_w), 2
        mad = _block_past_median(np.abs(residual), point_w, n_blocks, min_blocks, lag=1)
        scale = np.fmax(_MAD_TO_SIGMA * mad, floors[None, :])
        scale = np.fmax(scale, 1e-4 * np.abs(past_median) + 1e-12)  # a flat series still has a unit
        recent = _past_rolling(v, level_w, "mean", min_periods=max(1, level_w // 2), lag=0)
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
        return _past_rolling(y, point_w, "median", min_periods=max(1, point_w // 2))

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


@DETECTORS.register("rolling_zscore")
class RollingZScoreDetector(AnomalyDetector):
    """Baseline: ``|y - trailing mean| / trailing std`` mapped to ``2 * Phi(|z|) - 1``."""

    name: ClassVar[str] = "rolling_zscore"

    def __init__(self, window: str = "2h", min_periods: int = 6, **params: Any) -> None:
        super().__init__(window=window, min_periods=min_periods, **params)

    def _context_length(self) -> pd.Timedelta:
        return self.step_ * (_steps(self.params["window"], self.step_, "window") + 1)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: the statistics are all trailing."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        from scipy.special import erf

        grid = _to_grid(df, self.step_)
        window = _steps(self.params["window"], self.step_, "window")
        min_periods = min(window, self.params["min_periods"])
        mean = _past_rolling(grid.values, window, "mean", min_periods)
        std = _past_rolling(grid.values, window, "std", min_periods)
        std = np.fmax(std, 1e-4 * np.abs(mean) + 1e-12)
        z = np.abs(grid.values - mean) / std
        return grid.to_long(erf(z / np.sqrt(2.0)))
