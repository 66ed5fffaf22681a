"""The robust z-score over the past day as a streaming state, calibrated to a surprise in nats.

:class:`DayRobustZState` scores the newest value of many series at once by
``|y - median| / (1.4826 MAD)`` of the ``window`` samples before it (one day of the series'
steps, within ``[min_window, max_window]``; :func:`models.anomaly.robust_z.trailing_robust_z` is the
same statistic over a whole array). A day holds a full daily cycle, so a value that recurs every
day is inside its range, while a level shift or a new extreme stands out until half a day of the
new regime has filled the window. The z-score is then calibrated by its own running tail
(:class:`TailCalibration`: a tracked high quantile and the mean excess beyond it, peaks over
threshold), so ``z = 5`` on a heavy-tailed series is not as alarming as on a quiet one.

State per series: a ring of ``max_window`` values and a few scalars; an update costs
O(series x window log window) numpy (two row sorts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.anomaly.robust_z import MAD_TO_SIGMA


@dataclass(frozen=True)
class RobustZParams:
    """Tuning of the trailing-day robust z member; lengths in steps of the series."""

    min_window: int = 24  # shortest reference window (a day of hourly samples)
    max_window: int = 288  # longest reference window (a day of 5-minute samples): bounds the cost
    fallback_window: int = 288  # window of a series whose step does not divide a day
    min_periods: int = 12  # samples in the window before a series is scored
    floor_share: float = 0.1  # spread never below this share of the long-run mean absolute deviation
    long_alpha: float = 0.002  # long-run mean absolute deviation (~500 steps)
    tail_quantile: float = 0.97  # quantile of z beyond which its tail is modelled
    tail_rate: float = 0.05  # learning rate of that quantile and of the mean excess
    memory: float = 2000.0  # steps over which the record z is forgotten
    record_cap: float = 10.0  # a record is capped this many mean excesses above the quantile
    warmup: int = 100  # steps of a series before any non-zero surprise

    def __post_init__(self) -> None:
        if not 2 <= self.min_window <= self.max_window:
            raise ValueError(f"need 2 <= min_window <= max_window, got {self.min_window}, {self.max_window}")
        if not 1 <= self.min_periods <= self.min_window:
            raise ValueError(f"min_periods must be within [1, min_window], got {self.min_periods}")
        for name in ("long_alpha", "tail_rate"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {getattr(self, name)}")
        if not 0.0 < self.tail_quantile < 1.0:
            raise ValueError(f"tail_quantile must be within (0, 1), got {self.tail_quantile}")


class TailCalibration:
    """Running peaks-over-threshold calibration of a non-negative statistic, per series.

    ``-ln p`` of a value under an exponential tail beyond a tracked ``tau`` quantile (mean excess
    ``beta``), capped by how far it beats the slowly forgotten largest value seen (a record among
    ``memory`` steps is ``1 / memory`` rare); after Siffer et al., KDD 2017 (SPOT).
    """

    def __init__(self, n: int, tau: float, rate: float, memory: float, record_cap: float) -> None:
        self.tau, self.rate, self.memory, self.record_cap = tau, rate, memory, record_cap
        self.q = np.full(n, np.nan)
        self.beta = np.ones(n)
        self.top = np.full(n, np.nan)
        self.count = np.zeros(n, dtype=np.int64)

    def surprise(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Nats of each value (0 where not ``ok``); then learns from the ``ok`` ones."""
        q = np.where(np.isfinite(self.q), self.q, x)
        beta = self.beta
        excess = x - q
        base = -np.log1p(-self.tau)
        tail = np.where(excess > 0, base + excess / beta, base * np.clip(x / np.fmax(q, 1e-12), 0.0, 1.0))
        top = np.where(np.isfinite(self.top), self.top, x)
        log_w = np.log(np.clip(self.count, 2, self.memory).astype("float64"))
        out = np.fmin(tail, log_w + (x - top) / beta)
        step = self.rate * beta
        new_q = np.fmax(q + np.where(excess > 0, step * self.tau, -step * (1.0 - self.tau)), 0.0)
        new_beta = np.where(excess > 0, beta + 2.0 * self.rate * (np.fmin(excess, 10.0 * beta) - beta), beta)
        new_beta = np.fmax(new_beta, 1e-6)
        new_top = np.fmax(q + (top - q) * (1.0 - 1.0 / self.memory), x)
        new_top = np.fmin(new_top, new_q + self.record_cap * new_beta)
        self.q = np.where(ok, new_q, self.q)
        self.beta = np.where(ok, new_beta, self.beta)
        self.top = np.where(ok, new_top, self.top)
        self.count = self.count + ok
        return np.where(ok & np.isfinite(out), np.fmax(out, 0.0), 0.0)


@dataclass
class DayRobustZState:
    """Trailing robust z-score of the newest value of ``n`` series, calibrated to nats.

    ``season`` holds each series' steps per day (0: unknown, ``fallback_window``).
    """

    season: np.ndarray
    params: RobustZParams = field(default_factory=RobustZParams)

    def __post_init__(self) -> None:
        p = self.params
        season = np.asarray(self.season, dtype=np.int64)
        n = season.size
        day = np.where(season > 0, season, p.fallback_window)
        self.window = np.clip(day, p.min_window, p.max_window).astype(np.int64)
        self._ring = np.full((n, int(self.window.max(initial=p.min_window))), np.nan)
        self._pos = np.zeros(n, dtype=np.int64)
        self.count = np.zeros(n, dtype=np.int64)
        self.mean_dev = np.full(n, np.nan)
        self.tail = TailCalibration(n, p.tail_quantile, p.tail_rate, p.memory, p.record_cap)

    @property
    def nbytes(self) -> int:
        arrays = [*vars(self).values(), *vars(self.tail).values()]
        return sum(v.nbytes for v in arrays if isinstance(v, np.ndarray))

    def z(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Robust z of ``y`` against the ring (NaN: too few samples) and the reference median."""
        p = self.params
        ordered = np.sort(self._ring, axis=1)  # NaN (empty slots) sort last
        filled = np.sum(np.isfinite(self._ring), axis=1)
        median = _sorted_median(ordered, filled)
        deviation = np.sort(np.abs(self._ring - median[:, None]), axis=1)
        mad = _sorted_median(deviation, filled)
        floor = p.floor_share * np.nan_to_num(self.mean_dev, nan=0.0)
        spread = np.fmax(np.fmax(MAD_TO_SIGMA * mad, floor), 1e-9 * np.abs(np.nan_to_num(median)) + 1e-12)
        z = np.abs(y - median) / spread
        return np.where(filled >= p.min_periods, z, np.nan), median

    def surprise(self, y: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Nats of the newest values; then adds them to the ring."""
        p = self.params
        z, median = self.z(y)
        usable = ok & np.isfinite(z)
        s = self.tail.surprise(np.where(usable, z, 0.0), usable)
        s = np.where(usable & (self.count >= p.warmup), s, 0.0)
        dev = np.abs(y - median)
        seen = ok & np.isfinite(dev)
        self.mean_dev = np.where(
            seen,
            np.where(np.isfinite(self.mean_dev), (1 - p.long_alpha) * self.mean_dev + p.long_alpha * dev, dev),
            self.mean_dev,
        )
        rows = np.flatnonzero(ok)
        self._ring[rows, self._pos[rows]] = y[rows]
        self._pos = np.where(ok, (self._pos + 1) % self.window, self._pos)
        self.count = self.count + ok
        return s


def _sorted_median(ordered: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Median of each row of ``ordered`` (finite values first, ``filled`` of them; NaN if none)."""
    rows = np.arange(ordered.shape[0])
    lo = np.clip((filled - 1) // 2, 0, ordered.shape[1] - 1)
    hi = np.clip(filled // 2, 0, ordered.shape[1] - 1)
    out = 0.5 * (ordered[rows, lo] + ordered[rows, hi])
    return np.where(filled > 0, out, np.nan)
