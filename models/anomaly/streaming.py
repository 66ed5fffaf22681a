"""Streaming anomaly detector: one O(1) numpy update per time step for every series at once.

Two complementary signals, both causal (the state at step t has seen rows <= t only):

- **Forecast residual.** Three one-step forecasters run side by side per series: the last value
  (random walk), an exponentially weighted level, and a daily-seasonal profile (exponentially
  weighted mean of the same step of the day over past days, plus a level correction). Each keeps
  an exponentially weighted mean absolute error; the residual comes from whichever has the
  smallest error so far, so a daily-seasonal series is judged against its own hour and a random
  walk against its last value, with nothing configured per series. In error units its surprise
  is ``|r| / b`` nats (Laplace tail), then calibrated against the series' own running tail
  (peaks over threshold: a tracked high quantile and the mean excess over it, after Siffer et
  al., "Anomaly detection in streams with extreme value theory", KDD 2017) and capped by how far
  it beats the largest surprise of the recent past: a noisy series is not alarming because it is
  noisy, only when it is more surprising than it has been.
- **Value novelty.** A value beyond the range the series has shown (over the last one to two
  ``envelope_memory`` spans, snapshotted every ``envelope_refresh`` steps so a slow leak keeps
  outrunning it, while a daily peak that recurs is always inside it) by
  ``b`` long-run standard deviations scores ``ln W + b sqrt(2 ln W) + b^2 / 2`` nats with
  ``W = memory``: for Gaussian-like data a new record among ``W`` values has probability
  ``1 / W`` and the tail beyond the record (which sits near ``sqrt(2 ln W)`` sigma) falls off
  like that. Catches level shifts, slow leaks and failures that adapting forecasters absorb.

The larger surprise (less ``ln 2``, a Bonferroni correction) is the step's surprise ``s``; the
score is ``1 - exp(-s)``, one minus the probability that normal operation would be this
surprising at a given step. Other signals (drift, CUSUM, Numenta's anomaly likelihood, a
weekly-seasonal forecaster, ...) and other combinations were tried on NAB's dev files and left out
because none raised the score: docs/anomaly_detectors.md, *History: how streaming, knn and
streaming_knn were tuned*.

**Repeats.** Causal non-maximum suppression over episodes (:mod:`models.anomaly.repeats`): one
anomaly gives one high score, at its onset, whatever threshold is applied.
:meth:`StreamingState.surprise` gives the step's surprise before suppression, so an ensemble
(:mod:`models.anomaly.ensemble`) can combine surprises first and suppress once.

The state (:class:`StreamingState`) holds a few arrays per series (and one day of seasonal
profile); ``update`` costs O(number of series) vectorised numpy (timings: docs/anomaly_detectors.md,
*Cost*).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import create_model

from foresight.plugins import dataclass_fields
from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.daily_cycle import daily_season, infer_step, phases
from models.anomaly.grid import to_grid
from models.anomaly.repeats import reported_scores
from models.anomaly.settings import CONTEXT_DAYS, ContextDays, DetectorSettings, reject_unknown, without
from models.anomaly.stepped import feed_rows, fresh_state

_N_FORECASTERS = 3  # last value, EW level, seasonal profile


@dataclass(frozen=True)
class StreamingParams:
    """Tuning of the streaming state; time constants are in steps of the series."""

    level_alpha: float = 0.05  # EW level forecaster (~20 steps)
    season_alpha: float = 0.25  # seasonal profile: weight of the newest day
    season_level_alpha: float = 0.05  # level correction of the seasonal forecaster
    error_alpha: float = 0.01  # EW mean absolute error of each forecaster (~100 steps)
    error_clip: float = 6.0  # an error beyond this many mean errors updates it as this many
    slow_floor: float = 0.1  # the error scale never drops below this share of the long-run error
    long_alpha: float = 0.002  # long-run error and value spread (~500 steps)
    tail_quantile: float = 0.97  # quantile of the residual surprise beyond which its tail is modelled
    tail_rate: float = 0.05  # learning rate of that quantile and of the mean excess
    record_cap: float = 10.0  # records above the quantile by more mean excesses than this are capped
    memory: float = 2000.0  # steps over which past surprise records are forgotten
    # steps per bucket of the value envelope (novelty is judged against the last one to two
    # buckets). Longer than ``memory``: a value merely topping the last few thousand steps is
    # common in long noisy series (chosen on NAB's dev files, docs/anomaly_detectors.md, History)
    envelope_memory: float = 5000.0
    envelope_refresh: int = 100  # steps between snapshots of the value envelope novelty is judged against
    warmup: int = 100  # steps of a series before any non-zero score
    onset: float = 4.6  # surprise (nats) that opens an episode (p = 0.01)
    rearm_steps: int = 100  # steps after an episode's last peak before it closes
    # nats a repeat must beat the episode's peak by to stand (10x rarer); a larger margin helps
    # NAB but costs the simulator's incidents (docs/anomaly_detectors.md, History)
    peak_margin: float = 2.3
    damp: float = 0.5  # a suppressed repeat's surprise: capped at onset, times this
    # One high score per episode (an alert stream per series, what NAB scores). False: the
    # calibrated score at every step, for a consumer with its own `for:` and hysteresis - the
    # incident builder, which must see an anomaly last to tell it from a blip.
    suppress: bool = True

    def __post_init__(self) -> None:
        for name in (
            "level_alpha",
            "season_alpha",
            "season_level_alpha",
            "error_alpha",
            "long_alpha",
            "tail_rate",
        ):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {getattr(self, name)}")
        if not 0.0 < self.tail_quantile < 1.0:
            raise ValueError(f"tail_quantile must be within (0, 1), got {self.tail_quantile}")
        for name in ("memory", "envelope_memory"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2 steps, got {getattr(self, name)}")
        for name in ("envelope_refresh", "rearm_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 step, got {getattr(self, name)}")


@dataclass
class StreamingState:
    """Per-series state of ``n`` series, updated in place by :meth:`update` (vectorised).

    ``season`` holds each series' steps per day (0: no daily cycle); the seasonal profile is
    allocated for the longest.
    """

    n: int
    season: np.ndarray
    params: StreamingParams = field(default_factory=StreamingParams)

    def __post_init__(self) -> None:
        n = self.n
        self.season = np.asarray(self.season, dtype=np.int64)
        if self.season.shape != (n,) or (self.season < 0).any():
            raise ValueError(
                f"season must hold {n} non-negative steps per day, got shape {self.season.shape}"
            )
        self.count = np.zeros(n, dtype=np.int64)
        # forecasters
        self.last = np.full(n, np.nan)
        self.level = np.full(n, np.nan)
        self.profile = np.full((n, int(max(1, self.season.max(initial=1)))), np.nan)
        self.season_level = np.zeros(n)
        self.mae = np.full((_N_FORECASTERS, n), np.nan)  # EW mean absolute error of each
        self.slow_mae = np.full(n, np.nan)  # long-run error of the chosen forecaster
        # tail of the residual surprise: tracked quantile, mean excess, decaying record
        self.tail_q = np.full(n, np.nan)
        self.tail_beta = np.ones(n)
        self.tail_max = np.full(n, np.nan)
        # value envelope and long-run spread of the values
        self.high = np.full(n, np.nan)  # range of the current memory-step bucket
        self.low = np.full(n, np.nan)
        self.prev_high = np.full(n, np.nan)  # range of the previous bucket
        self.prev_low = np.full(n, np.nan)
        # the envelope as of its last snapshot: novelty is judged against it
        self.ref_high = np.full(n, np.nan)
        self.ref_low = np.full(n, np.nan)
        self.value_mean = np.full(n, np.nan)
        self.value_var = np.full(n, np.nan)
        # repeat suppression
        self.peak = np.zeros(n)
        self.since_peak = np.full(n, np.iinfo(np.int64).max // 2)

    @property
    def nbytes(self) -> int:
        """Memory held by the state's arrays."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray:
        """Scores in [0, 1] of the newest value of every series (``y``, NaN: no sample this
        step) at ``phase`` (step of the day); then learns from it. Series without a sample keep
        their state and score 0."""
        surprise, ok = self.surprise(y, phase)
        scores, self.peak, self.since_peak = reported_scores(
            surprise, ok, self.peak, self.since_peak, self.params
        )
        return scores

    def surprise(self, y: np.ndarray, phase: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """The step's surprise in nats before repeat suppression, and which series had a sample;
        then learns from the values (what :meth:`update` and ensembles build on)."""
        p = self.params
        y = np.asarray(y, dtype="float64")
        if y.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {y.shape}")
        ok = np.isfinite(y)
        rows = np.arange(self.n)
        has_season = self.season > 0
        ph = np.where(has_season, np.asarray(phase, dtype=np.int64) % np.maximum(self.season, 1), 0)
        prof = self.profile[rows, ph]

        # residual of the forecaster with the smallest running error, in error units
        forecasts = np.stack([self.last, self.level, prof + self.season_level])
        errors = y[None, :] - forecasts
        mae = np.where(np.isfinite(self.mae), self.mae, np.inf)
        best = np.argmin(mae, axis=0)
        residual = errors[best, rows]
        scale = np.fmax(mae[best, rows], p.slow_floor * np.nan_to_num(self.slow_mae, nan=0.0))
        scale = np.fmax(scale, 1e-9 * np.abs(np.nan_to_num(y)) + 1e-12)  # a flat series still has a unit
        point = np.abs(residual) / scale
        point = np.where(np.isfinite(point), point, 0.0)
        residual_surprise = self._calibrate(point, ok)

        # novelty: how many long-run spreads beyond every value seen so far
        spread = np.fmax(np.sqrt(np.fmax(np.nan_to_num(self.value_var, nan=0.0), 0.0)), scale)
        beyond = np.fmax(y - self.ref_high, self.ref_low - y) / spread
        beyond = np.where(np.isfinite(beyond), np.fmax(beyond, 0.0), 0.0)
        log_w = self._log_record_odds()
        novelty = np.where(beyond > 0, log_w + np.sqrt(2 * log_w) * beyond + 0.5 * beyond**2, 0.0)

        surprise = np.fmax(residual_surprise, novelty) - np.log(2.0)
        surprise = np.where((self.count >= p.warmup) & ok, np.fmax(surprise, 0.0), 0.0)
        self._learn(y, ok, errors, residual, prof, ph, has_season, spread)
        return surprise, ok

    def _log_record_odds(self) -> np.ndarray:
        """ln W: a new record among the last W values (the memory, or every value seen so far
        when fewer) has probability 1 / W."""
        return np.log(np.clip(self.count, 2, self.params.memory).astype("float64"))

    def _calibrate(self, point: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """The residual surprise as -ln of its tail probability under the series' own running
        tail (exponential beyond a tracked quantile), capped by how far it beats the slowly
        forgotten largest surprise seen (a record is ~1/memory rare); then updates the tail."""
        p = self.params
        tau = p.tail_quantile
        q = np.where(np.isfinite(self.tail_q), self.tail_q, point)
        beta = self.tail_beta
        excess = point - q
        base = -np.log1p(-tau)
        tail = np.where(excess > 0, base + excess / beta, base * np.clip(point / np.fmax(q, 1e-12), 0.0, 1.0))
        top = np.where(np.isfinite(self.tail_max), self.tail_max, point)
        out = np.fmin(tail, self._log_record_odds() + (point - top) / beta)
        # learn: stochastic quantile step, mean excess (clipped), record decaying towards the quantile
        step = p.tail_rate * beta
        new_q = np.fmax(q + np.where(excess > 0, step * tau, -step * (1.0 - tau)), 0.0)  # surprise >= 0
        new_beta = np.where(
            excess > 0, beta + 2.0 * p.tail_rate * (np.fmin(excess, 10.0 * beta) - beta), beta
        )
        # ... but a surprise record_cap mean excesses beyond the quantile always stands out
        new_top = np.fmax(q + (top - q) * (1.0 - 1.0 / p.memory), point)
        new_top = np.fmin(new_top, new_q + p.record_cap * np.fmax(new_beta, 1e-6))
        self.tail_q = np.where(ok, new_q, self.tail_q)
        self.tail_beta = np.where(ok, np.fmax(new_beta, 1e-6), self.tail_beta)
        self.tail_max = np.where(ok, new_top, self.tail_max)
        return out

    def _learn(
        self,
        y: np.ndarray,
        ok: np.ndarray,
        errors: np.ndarray,
        residual: np.ndarray,
        prof: np.ndarray,
        ph: np.ndarray,
        has_season: np.ndarray,
        spread: np.ndarray,
    ) -> None:
        """Update forecasters, errors and the value envelope with the new values (observed series only)."""
        p = self.params
        seen = np.isfinite(self.mae)
        # errors beyond error_clip mean errors count as that many (an anomaly does not inflate
        # the scale); a zero error so far puts no limit, or the scale could never leave zero
        limit = np.where(seen & (self.mae > 0), p.error_clip * self.mae, np.inf)
        clipped = np.fmin(np.abs(errors), limit)
        new_mae = np.where(seen, (1 - p.error_alpha) * self.mae + p.error_alpha * clipped, np.abs(errors))
        self.mae = np.where(ok[None, :] & np.isfinite(errors), new_mae, self.mae)
        slow = np.where(
            np.isfinite(self.slow_mae),
            (1 - p.long_alpha) * self.slow_mae
            + p.long_alpha
            * np.fmin(np.abs(residual), np.where(self.slow_mae > 0, p.error_clip * self.slow_mae, np.inf)),
            np.abs(residual),
        )
        self.slow_mae = np.where(ok & np.isfinite(residual), slow, self.slow_mae)
        self.last = np.where(ok, y, self.last)
        self.level = np.where(ok, _ew(self.level, y, p.level_alpha), self.level)
        gap = y - prof
        self.season_level = np.where(
            ok & np.isfinite(gap),
            (1 - p.season_level_alpha) * self.season_level + p.season_level_alpha * gap,
            self.season_level,
        )
        new_prof = np.where(
            np.isfinite(prof), (1 - p.season_alpha) * prof + p.season_alpha * (y - self.season_level), y
        )
        upd = ok & has_season
        self.profile[np.flatnonzero(upd), ph[upd]] = new_prof[upd]
        deviation = y - self.value_mean
        self.value_var = np.where(
            ok,
            np.where(
                np.isfinite(self.value_var),
                (1 - p.long_alpha) * self.value_var + p.long_alpha * deviation**2,
                0.0,
            ),
            self.value_var,
        )
        self.value_mean = np.where(ok, _ew(self.value_mean, y, p.long_alpha), self.value_mean)
        # the envelope is the range of the current and the previous `envelope_memory`-step bucket:
        # values recurring within a bucket or two stay inside it, one long gone is forgotten
        self.high = np.where(ok, np.fmax(self.high, y), self.high)
        self.low = np.where(ok, np.fmin(self.low, y), self.low)
        roll = ok & ((self.count + 1) % int(p.envelope_memory) == 0)
        self.prev_high = np.where(roll, self.high, self.prev_high)
        self.prev_low = np.where(roll, self.low, self.prev_low)
        self.high = np.where(roll, np.nan, self.high)
        self.low = np.where(roll, np.nan, self.low)
        # snapshot every `envelope_refresh` steps: a value joins the reference range only after a
        # while, so a slow leak keeps outrunning it while a one-off excursion is soon remembered
        # (each snapshot covers every value up to it: the first one is taken after refresh values)
        snap = ok & (((self.count + 1) % p.envelope_refresh == 0) | ~np.isfinite(self.ref_high))
        self.ref_high = np.where(snap, np.fmax(self.high, self.prev_high), self.ref_high)
        self.ref_low = np.where(snap, np.fmin(self.low, self.prev_low), self.ref_low)
        self.count = self.count + ok


def _ew(prev: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponentially weighted mean update; starts at the first value."""
    return np.where(np.isfinite(prev), (1 - alpha) * prev + alpha * x, x)


def score_stream(
    timestamps: pd.Series | pd.DatetimeIndex,
    values: np.ndarray,
    params: StreamingParams | None = None,
    step_hint_rows: int = 50,
) -> np.ndarray:
    """Scores of one series fed row by row; the step is inferred from its first rows (causal)."""
    step = infer_step(pd.DatetimeIndex(timestamps)[: max(step_hint_rows, 2)])
    state = StreamingState(1, np.array([daily_season(step)]), params or StreamingParams())
    ph = phases(timestamps, step)
    values = np.asarray(values, dtype="float64")
    out = np.empty(values.size)
    for t in range(values.size):
        out[t] = state.update(values[t : t + 1], ph[t : t + 1])[0]
    return out


class _StreamingRules(DetectorSettings):
    context_days: ContextDays = CONTEXT_DAYS

    def check_rules(self) -> None:
        StreamingParams(**without(self.given(), "context_days"))


# ``context_days`` and the streaming state's parameters (StreamingParams).
StreamingSettings = create_model("StreamingSettings", __base__=_StreamingRules, **dataclass_fields(StreamingParams))


@DETECTORS.register("streaming")
class StreamingAnomalyDetector(AnomalyDetector):
    """The streaming state behind the registry's fit / predict surface (long frames).

    ``fit`` learns the grid step (hence the daily season); nothing else is fitted: the state
    learns online. ``predict`` replays the stream over the frame (after the stored context), so
    a score depends on the ``context_length`` of history before it. For live scoring of the
    newest sample of many series, keep a :class:`StreamingState` and call ``update``.
    """

    name: ClassVar[str] = "streaming"
    Settings: ClassVar[type[DetectorSettings]] = StreamingSettings
    # Feeding incidents, repeats are the incident builder's job (min_active_samples, hysteresis):
    # unsuppressed scores did better on every simulator seed (docs/incidents.md, *The roll-up's
    # settings*).
    incident_params: ClassVar[dict[str, Any]] = {"suppress": False}
    stepped: ClassVar[bool] = True  # models.anomaly.stepped: the detect flow resumes its state

    def __init__(self, context_days: float = CONTEXT_DAYS, **params: Any) -> None:
        reject_unknown(self.name, params, self.Settings)
        StreamingParams(**params)  # validates the values now, not at the first predict
        super().__init__(context_days=context_days, **params)

    @property
    def stream_params(self) -> StreamingParams:
        return StreamingParams(**{k: v for k, v in self.params.items() if k != "context_days"})

    def _context_length(self) -> pd.Timedelta:
        warm = self.step_ * (self.stream_params.warmup + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: every statistic is learned online."""

    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> StreamingState:
        """A fresh streaming state for ``len(season)`` series with those daily seasons (the
        names are not needed: every series' state is its own)."""
        return StreamingState(len(season), season, self.stream_params)

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        state = fresh_state(self, list(grid.ids))  # the grid starts at midnight UTC: row 0 is phase 0
        return grid.to_long(feed_rows(state, grid.values, 0, daily_season(self.step_)))
