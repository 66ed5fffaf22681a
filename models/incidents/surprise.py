"""Streaming per-series surprise: how unlikely each new sample is, from that series' own past only.

Built for incident detection on systems that start with almost no history (a replay that begins
minutes before the first fault) and must stay quiet for a whole day afterwards:

- **deviation**: a robust z-score of the sample against the median of the series' last
  ``window`` samples, in units of their MAD (floored at ``rel_floor`` of the median's size, so
  quantised or near-constant series do not divide by ~0; ``floor_of`` lets a derived series,
  e.g. a difference of two latencies that sits at 0, take that size from another series);
  ``abs_floor`` sets a smallest meaningful change in the series' own units; only the direction
  that matters per series counts (``+1`` rises, ``-1`` falls, ``0`` both);
- **tail probability**: the share of the series' own earlier deviations at least as large,
  shrunk towards a distribution-free prior, Cantelli's bound ``P(Z >= z) <= 1 / (1 + z^2)``, with
  the weight of ``prior_weight`` samples. Early on the bound alone speaks (a 100-sigma jump is
  surprising even with ten minutes of history); later, a series that often jumps that far (a
  sparse p99 latency) learns that it is ordinary;
- **surprise** ``-log10(p)``: 0 for an ordinary sample, 3 for a one-in-a-thousand one;
- **clean baseline**: a sample ``gate`` or more robust sigmas off the median (either way) is kept
  out of the baseline window, so a fault does not widen the spread and shift the median for the
  next ``window`` samples and mask a second fault (or make the return to normal look odd); only
  after ``max_hold`` such samples in a row is the new level accepted (a genuine level shift);
  such a run of outliers enters the tail statistics as one event at its largest deviation (runs
  declustering, as in extreme-value statistics), so a five-minute fault is one surprise, not five;
  and only ``learn_delay`` steps after it ended, so a second fault soon after the first is judged
  against the series' normal behaviour rather than against the first fault.

Causal by construction: :meth:`StreamingSurprise.score` sees one time step and only state built
from earlier steps (:meth:`learn` then folds that step in), so a replay and a live run give the
same numbers. Pure numpy; no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

_MAD_TO_SIGMA = 1.4826
# Deviation levels at which exceedances are counted: geometric, 1 to 1e5 robust sigmas.
_LEVELS = np.geomspace(1.0, 1e5, 52)


@dataclass(frozen=True)
class SurpriseStep:
    """One time step's numbers per series: surprise ``-log10 p``, deviation in the problem
    direction, observed and expected values, the signed deviation and whether it was scored."""

    surprise: np.ndarray
    deviation: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    signed: np.ndarray | None = None
    ready: np.ndarray | None = None


class StreamingSurprise:
    """Per-series surprise of each new sample given the series' own past (see the module doc)."""

    def __init__(
        self,
        directions: np.ndarray,
        *,
        window: int = 30,
        min_history: int = 5,
        prior_weight: float = 30.0,
        rel_floor: float | np.ndarray = 0.05,
        abs_floor: float | np.ndarray = 0.0,
        floor_of: np.ndarray | None = None,
        gate: float | None = None,
        max_hold: int = 15,
        learn_delay: int = 0,
    ) -> None:
        directions = np.asarray(directions, dtype=np.int8)
        if directions.ndim != 1 or directions.size == 0:
            raise ValueError("directions must be a non-empty 1-d array with one entry per series")
        if not np.isin(directions, (-1, 0, 1)).all():
            raise ValueError("directions must hold only -1 (falls), 0 (both) or +1 (rises)")
        if window < 3:
            raise ValueError(f"window must be at least 3 samples, got {window}")
        if not 1 <= min_history <= window:
            raise ValueError(f"min_history must be within [1, window], got {min_history}")
        if prior_weight <= 0:
            raise ValueError(f"prior_weight must be positive, got {prior_weight}")
        rel = np.broadcast_to(np.asarray(rel_floor, dtype="float64"), directions.shape).copy()
        floor = np.broadcast_to(np.asarray(abs_floor, dtype="float64"), directions.shape).copy()
        for name, array in (("rel_floor", rel), ("abs_floor", floor)):
            if not (np.isfinite(array) & (array >= 0)).all():
                raise ValueError(f"{name} must be finite and non-negative (a scalar or one per series)")
        level_of = np.arange(directions.size) if floor_of is None else np.asarray(floor_of, dtype=int)
        if level_of.shape != directions.shape or ((level_of < 0) | (level_of >= directions.size)).any():
            raise ValueError("floor_of must hold one series index per series")
        if gate is not None and gate <= 0:
            raise ValueError(f"gate must be positive (robust sigmas) or None, got {gate}")
        if max_hold < 1:
            raise ValueError(f"max_hold must be at least 1 sample, got {max_hold}")
        if learn_delay < 0:
            raise ValueError(f"learn_delay must not be negative, got {learn_delay}")
        self.directions = directions
        self.window, self.min_history = window, min_history
        self.prior_weight, self.rel_floor = float(prior_weight), rel
        self.abs_floor, self.floor_of = floor, level_of
        self.gate, self.max_hold, self.learn_delay = gate, max_hold, learn_delay
        n = directions.size
        self._recent = np.full((window, n), np.nan)  # ring buffer of the last admitted samples
        self._cursor = 0
        self._held = np.zeros(n, dtype=np.int64)  # consecutive samples kept out of the baseline
        self._run_max = np.zeros(n)  # largest deviation of the current run of outliers
        self._steps = 0
        # Ended runs waiting to enter the tail statistics: (due step, series, largest deviation).
        self._pending: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
        self._exceed = np.zeros((n, _LEVELS.size), dtype=np.int64)  # past deviations >= each level
        self._scored = np.zeros(n, dtype=np.int64)  # past deviations counted

    @property
    def n_series(self) -> int:
        return int(self.directions.size)

    def update(self, values: np.ndarray) -> SurpriseStep:
        """Score one time step and learn from it (NaN = no sample: surprise 0, state unchanged)."""
        step = self.score(values)
        self.learn(step)
        return step

    def score(self, values: np.ndarray) -> SurpriseStep:
        """Score one time step against the state built so far; the state is not changed."""
        values = np.asarray(values, dtype="float64")
        if values.shape != (self.n_series,):
            raise ValueError(f"expected {self.n_series} values, got shape {values.shape}")
        history = np.sum(~np.isnan(self._recent), axis=0)
        ready = (history >= self.min_history) & ~np.isnan(values)
        # A series with no sample in its window yet has no expected value (NaN). Its empty column is
        # left out of the medians: nanmedian would warn about it at every step, through the warnings
        # module (which np.errstate does not reach and catch_warnings only reaches thread-unsafely).
        expected, mad = np.full(self.n_series, np.nan), np.full(self.n_series, np.nan)
        seen = history > 0
        recent = self._recent if seen.all() else self._recent[:, seen]
        if recent.size:
            expected[seen] = np.nanmedian(recent, axis=0)
            mad[seen] = np.nanmedian(np.abs(recent - expected[seen]), axis=0)
        with np.errstate(all="ignore"):
            level = np.abs(expected[self.floor_of])
            scale = np.fmax(np.fmax(_MAD_TO_SIGMA * mad, self.rel_floor * level), self.abs_floor)
            scale = np.where(scale > 0, scale, 1e-9)
            signed = np.where(ready, (values - expected) / scale, 0.0)
        deviation = np.where(self.directions == 0, np.abs(signed), np.fmax(signed * self.directions, 0.0))
        surprise = self._surprise(deviation, ready)
        return SurpriseStep(
            surprise=surprise,
            deviation=deviation,
            observed=values,
            expected=expected,
            signed=signed,
            ready=ready,
        )

    def learn(self, step: SurpriseStep) -> None:
        """Fold a scored step into the state: the tail statistics and, unless the sample is
        gated out (see the module doc), the baseline window."""
        if step.signed is None or step.ready is None:
            raise ValueError("learn needs a step made by score()")
        values, ready = step.observed, step.ready
        deviation = np.where(ready, step.deviation, 0.0)
        self._scored[ready] += 1
        admit = ~np.isnan(values)
        if self.gate is None:
            self._exceed[ready] += deviation[ready, None] >= _LEVELS[None, :]
        else:
            outlying = ready & (np.abs(step.signed) >= self.gate)
            self._held = np.where(outlying, self._held + 1, 0)
            # Runs declustering: a run of outlying samples is one event, counted once at its
            # largest deviation when it ends (or turns into a new normal), so a five-minute fault
            # counts as one surprise, not five, and the series does not learn that it is common.
            in_run = outlying & (self._held <= self.max_hold)
            self._run_max = np.where(in_run, np.fmax(self._run_max, deviation), self._run_max)
            ended = np.where(~in_run & (self._run_max > 0))[0]
            if ended.size:
                self._pending.append((self._steps + self.learn_delay, ended, self._run_max[ended].copy()))
            self._run_max[ended] = 0.0
            while self._pending and self._pending[0][0] <= self._steps:
                _, which, peak = self._pending.popleft()
                self._exceed[which] += peak[:, None] >= _LEVELS[None, :]
            counted = ready & ~in_run
            self._exceed[counted] += deviation[counted, None] >= _LEVELS[None, :]
            # Hold outliers out of the baseline (the slot keeps its older sample) until they have
            # persisted max_hold steps.
            admit &= ~in_run
        self._recent[self._cursor, admit] = values[admit]
        self._recent[self._cursor, np.isnan(values)] = np.nan
        self._cursor = (self._cursor + 1) % self.window
        self._steps += 1

    def _surprise(self, deviation: np.ndarray, ready: np.ndarray) -> np.ndarray:
        """``-log10`` of the shrunk tail probability of each deviation (0 below one sigma)."""
        level = np.searchsorted(_LEVELS, deviation, side="right") - 1  # largest level <= deviation
        above = ready & (level >= 0)
        past = np.where(above, self._exceed[np.arange(self.n_series), np.clip(level, 0, None)], 0)
        prior = 1.0 / (1.0 + deviation**2)  # Cantelli's one-sided bound
        p = (past + self.prior_weight * prior) / (self._scored + self.prior_weight)
        return np.where(above, -np.log10(np.clip(p, 1e-300, 1.0)), 0.0)
