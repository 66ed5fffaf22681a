"""Contextual nearest-neighbour anomaly detector, conformally calibrated, streaming and causal.

A different family from :mod:`models.anomaly.streaming` (which forecasts one step ahead): the
last ``window`` values of a series form a point in ``window`` dimensions (a delay embedding, as
in singular spectrum analysis); the step's *nonconformity* is the mean distance from it to its
``k`` nearest neighbours among the windows of a bounded history (the ``history`` windows ending
just before the current one's first value, so no overlapping window vouches for it). A shape the
series has drawn before is near some old window; a shape it never drew is far from all of them.
After Burnaev & Ishimtsev, "Conformalized density- and distance-based anomaly detection in
time-series data" (KNN-CAD, 2016), which NAB includes.

The distance has no units to tune: it is judged by *inductive conformal* calibration, its rank
among the nonconformities of the series' own last ``calibration`` steps,
``p = (#{past >= now} + 1) / (n + 1)``. Beyond the ``tail``-th largest past value the rank runs
out of resolution, so there the tail is modelled as exponential with the mean excess of those
``tail`` values (peaks over threshold) and ``p`` keeps falling. The surprise is ``-ln p`` nats
and the score ``1 - p``; repeats within an episode are suppressed exactly as in the streaming
detector (:func:`models.anomaly.repeats.suppress_repeats`), so one anomaly gives one high
score. Because ranking is scale-free, no normalisation of the values is needed.

The calibration is long (4000 steps) on purpose: a conformal p-value of ``1 / C`` happens once
every ``C`` steps by construction, so a short ring turns every few days of a long noisy series
into a false alarm. The price: a huge event sits in the ring for those 4000 steps and hides
smaller ones after it. Chosen on NAB's dev files, where this detector alone and in the
``streaming_knn`` ensemble (:mod:`models.anomaly.ensemble`) was measured: docs/anomaly_detectors.md,
*History: how streaming, knn and streaming_knn were tuned*.

:class:`BlockKnnState` runs the same state on means of ``block`` consecutive steps, a coarser
time scale where point noise is averaged away (the ensemble's third member: it catches whole
days unlike past ones, such as nyc_taxi's holidays: :mod:`models.anomaly.ensemble`).

Cost per step: O(series x (history x window + calibration)) numpy (distances one window position
at a time over contiguous columns, the ring ranked by one comparison and its tail partitioned only
for the rare series beyond it; for the default windows the same values to the bit as the direct
forms); memory O(series x (history + calibration)). Timings: docs/anomaly_detectors.md, *Cost*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import create_model

from foresight.plugins import dataclass_fields
from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.daily_cycle import daily_season
from models.anomaly.grid import to_grid
from models.anomaly.repeats import suppress_repeats
from models.anomaly.settings import CONTEXT_DAYS, ContextDays, DetectorSettings, reject_unknown, without

_BLOCK_ELEMENTS = 1 << 16  # elements per temporary of a block of series (float64: 512 KiB, stays in cache)


@dataclass(frozen=True)
class KnnParams:
    """Tuning of the nearest-neighbour state; lengths are in steps of the series."""

    window: int = 6  # values per embedded window (its dimension)
    history: int = 1000  # reference windows searched for neighbours (the bounded history)
    k: int = 5  # neighbours whose mean distance is the nonconformity
    calibration: int = 4000  # past nonconformities the new one is ranked against
    tail: int = 20  # largest past nonconformities modelled as an exponential tail
    warmup: int = 100  # reference windows a series needs before it is scored or calibrated
    onset: float = 4.6  # surprise (nats) that opens an episode (p = 0.01)
    rearm_steps: int = 100  # steps after an episode's last peak before it closes
    peak_margin: float = 2.3  # nats a repeat must beat the episode's peak by to stand
    damp: float = 0.5  # a suppressed repeat's surprise: capped at onset, times this

    def __post_init__(self) -> None:
        for name in ("window", "history", "k", "calibration", "tail", "rearm_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.k > self.history:
            raise ValueError(f"k ({self.k}) must not exceed history ({self.history})")
        if self.tail >= self.calibration:
            raise ValueError(f"tail ({self.tail}) must be below calibration ({self.calibration})")
        if self.warmup < 0:
            raise ValueError(f"warmup must not be negative, got {self.warmup}")


@dataclass
class KnnState:
    """Per-series state of ``n`` series sharing one step axis, updated in place (vectorised)."""

    n: int
    params: KnnParams = field(default_factory=KnnParams)

    def __post_init__(self) -> None:
        p = self.params
        # values needed: the current window plus `history` windows ending before its first value
        self._span = p.history + 2 * p.window - 1
        # each value is written twice, so the last `span` values are always one contiguous slice
        self._values = np.full((self.n, 2 * self._span), np.nan)
        # past nonconformities (ring); single precision halves the largest array, ranks barely move
        self._calib = np.full((self.n, p.calibration), np.nan, dtype=np.float32)
        self._calibrated = np.zeros(self.n, dtype=np.int64)  # finite values in each ring
        self._steps = 0
        self.count = np.zeros(self.n, dtype=np.int64)
        self.peak = np.zeros(self.n)
        self.since_peak = np.full(self.n, np.iinfo(np.int64).max // 2)

    @property
    def nbytes(self) -> int:
        """Memory held by the state's arrays."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def update(self, y: np.ndarray, phase: np.ndarray | int = 0) -> np.ndarray:
        """Scores in [0, 1] of the newest value of every series (NaN: no sample, score 0); then
        learns from it. ``phase`` is accepted for interface parity with the streaming state."""
        surprise, ok = self.surprise(y, phase)
        p = self.params
        out, self.peak, self.since_peak = suppress_repeats(
            surprise, ok, self.peak, self.since_peak, p.onset, p.rearm_steps, p.peak_margin, p.damp
        )
        return 1.0 - np.exp(-out)

    def surprise(self, y: np.ndarray, phase: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``-ln p`` of the step's nonconformity before repeat suppression, and which series had
        a sample; then learns from the values."""
        del phase  # the embedding carries the context; no clock is needed
        p = self.params
        y = np.asarray(y, dtype="float64")
        if y.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {y.shape}")
        ok = np.isfinite(y)
        slot = self._steps % self._span
        self._values[:, slot] = y
        self._values[:, slot + self._span] = y
        self._steps += 1
        recent = self._values[:, slot + 1 : slot + 1 + self._span]  # oldest .. newest (y)
        alpha = self._nonconformity(recent)
        # a distance to few reference windows is inflated (few shapes seen yet): neither scored
        # nor kept for calibration until `warmup` complete reference windows exist
        usable = ok & np.isfinite(alpha) & (self.count >= p.warmup + 2 * p.window - 1)
        surprise = np.where(usable, self._surprise(alpha), 0.0)
        ring = (self._steps - 1) % p.calibration
        self._calibrated -= np.isfinite(self._calib[:, ring])
        self._calib[:, ring] = np.where(usable, alpha, np.nan)
        self._calibrated += np.isfinite(self._calib[:, ring])
        self.count = self.count + ok
        return surprise, ok

    def _nonconformity(self, recent: np.ndarray) -> np.ndarray:
        """Mean distance of the newest window to its k nearest reference windows (NaN when the
        newest window has a gap or fewer than k reference windows are complete)."""
        p = self.params
        current = recent[:, -p.window :]
        alpha = np.empty(self.n)
        for rows in _row_blocks(self.n, p.history):
            d2 = _squared_distances(recent[rows], current[rows], p.history)
            np.copyto(d2, np.inf, where=np.isnan(d2))  # windows with a gap are never neighbours
            nearest = np.partition(d2, p.k - 1, axis=1)[:, : p.k]
            with np.errstate(invalid="ignore"):
                alpha[rows] = np.sqrt(nearest).mean(axis=1)
        return np.where(np.isfinite(alpha) & np.isfinite(current).all(axis=1), alpha, np.nan)

    def _surprise(self, alpha: np.ndarray) -> np.ndarray:
        """-ln p of each nonconformity against the series' calibration ring (see the module doc)."""
        p = self.params
        stored = alpha.astype(np.float32)  # ranked as it would be stored: ties stay ties
        n = self._calibrated
        at_least = self._count_at_least(stored)
        s = -np.log((at_least + 1.0) / (n + 1.0))
        # Beyond the tail-th largest past value u the tail is exponential. alpha > u exactly when
        # fewer than `tail` past values reach alpha, which a calibrated series sees on about
        # tail / calibration of its steps, so u is looked up for those rows only.
        beyond = np.flatnonzero((n > p.tail) & (at_least < p.tail) & ~np.isnan(stored))
        if beyond.size:
            s[beyond] = self._tail_surprise(stored[beyond].astype(np.float64), beyond)
        return np.where(n >= p.tail, np.fmax(s, 0.0), 0.0)

    def _count_at_least(self, stored: np.ndarray) -> np.ndarray:
        """How many of each series' calibration values are >= its ``stored`` (NaN: none)."""
        at_least = np.empty(self.n, dtype=np.int64)
        for rows in _row_blocks(self.n, self.params.calibration):
            at_least[rows] = np.count_nonzero(self._calib[rows] >= stored[rows, None], axis=1)
        return at_least

    def _tail_surprise(self, alpha: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """-ln p of ``alpha`` above the exponential tail of the calibration rings of ``rows``:
        ``ln((n + 1) / tail) + (alpha - u) / beta``, u the tail-th largest past value and beta
        the mean excess of the ``tail`` largest over it (peaks over threshold)."""
        p = self.params
        past = self._calib[rows]
        cut = p.calibration - p.tail
        top = np.partition(np.where(np.isfinite(past), past, -np.inf), cut, axis=1)[:, cut:]
        u = top.min(axis=1)
        with np.errstate(invalid="ignore", over="ignore"):  # infinite records: as the rank would be
            beta = np.fmax(top.mean(axis=1) - u, 1e-12 + 1e-9 * np.abs(u))
            return np.log((self._calibrated[rows] + 1.0) / p.tail) + (alpha - u) / beta


def _row_blocks(n: int, columns: int) -> list[slice]:
    """Consecutive blocks of the ``n`` series whose ``(series, columns)`` temporaries stay within
    :data:`_BLOCK_ELEMENTS` elements (in cache)."""
    size = max(1, _BLOCK_ELEMENTS // columns)
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _squared_distances(values: np.ndarray, current: np.ndarray, history: int) -> np.ndarray:
    """Squared distances ``d[s, j] = sum_i (values[s, j + i] - current[s, i]) ** 2`` from each
    series' ``current`` window to the ``history`` windows starting at its first columns.

    One pass per window position over contiguous columns instead of a (series, history, window)
    temporary. The terms are added in turn, which is numpy's own order for fewer than 8 terms:
    for the default windows (6 values) the result equals ``np.square(windows - current).sum(-1)``
    on the sliding-window view to the last bit; longer windows may differ in the last bits.
    """
    total = np.square(values[:, :history] - current[:, :1])
    for i in range(1, current.shape[1]):
        diff = values[:, i : i + history] - current[:, i, None]
        total += np.multiply(diff, diff, out=diff)
    return total


@dataclass
class BlockKnnState:
    """The nearest-neighbour state on the means of ``block`` consecutive steps: a coarser scale.

    Every ``block`` steps (counted on the shared step axis) each series' mean over the block
    is fed to a :class:`KnnState`, so its windows are shapes over ``block * window`` steps and
    the history reaches ``block`` times further back; at the steps in between the surprise is
    0. Averaging a block smooths away point noise, so a change in a series' slower shape (a
    quiet holiday in a daily cycle, a sustained small shift) stands out where single values
    are too noisy to tell. With ``block = 1`` it is exactly :class:`KnnState`.
    """

    n: int
    block: int = 8
    params: KnnParams = field(default_factory=KnnParams)

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ValueError(f"block must be at least 1 step, got {self.block}")
        self.inner = KnnState(self.n, self.params)
        self._sum = np.zeros(self.n)
        self._count = np.zeros(self.n, dtype=np.int64)
        self._steps = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the state's arrays."""
        return self.inner.nbytes + self._sum.nbytes + self._count.nbytes

    def surprise(self, y: np.ndarray, phase: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``-ln p`` of the block mean's nonconformity at a block's last step (0 elsewhere and
        for series without a sample now), and which series had a sample; then learns."""
        del phase
        y = np.asarray(y, dtype="float64")
        if y.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {y.shape}")
        ok = np.isfinite(y)
        self._sum += np.where(ok, y, 0.0)
        self._count += ok
        self._steps += 1
        if self._steps % self.block:
            return np.zeros(self.n), ok
        # a block without any sample is a gap for the inner state
        mean = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        self._sum[:] = 0.0
        self._count[:] = 0
        surprise, _ = self.inner.surprise(mean)
        return np.where(ok, surprise, 0.0), ok


class _KnnRules(DetectorSettings):
    context_days: ContextDays = CONTEXT_DAYS

    def check_rules(self) -> None:
        KnnParams(**without(self.given(), "context_days"))


# ``context_days`` and the nearest-neighbour state's parameters (KnnParams).
KnnSettings = create_model("KnnSettings", __base__=_KnnRules, **dataclass_fields(KnnParams))


@DETECTORS.register("knn")
class KnnAnomalyDetector(AnomalyDetector):
    """The nearest-neighbour state behind the registry's fit / predict surface (long frames).

    ``fit`` learns the grid step only; ``predict`` replays the stream over the frame after the
    stored context, so a score depends on ``context_days`` of history before it.
    """

    name: ClassVar[str] = "knn"
    Settings: ClassVar[type[DetectorSettings]] = KnnSettings

    def __init__(self, context_days: float = CONTEXT_DAYS, **params: Any) -> None:
        reject_unknown(self.name, params, self.Settings)
        KnnParams(**params)
        super().__init__(context_days=context_days, **params)

    @property
    def knn_params(self) -> KnnParams:
        return KnnParams(**{k: v for k, v in self.params.items() if k != "context_days"})

    def make_state(self, season: np.ndarray) -> KnnState:
        """A fresh streaming state for ``len(season)`` series (the season is not needed)."""
        return KnnState(len(season), self.knn_params)

    def _context_length(self) -> pd.Timedelta:
        p = self.knn_params
        warm = self.step_ * (max(p.warmup, p.history + 2 * p.window) + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: the state learns online."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        state = self.make_state(np.full(grid.values.shape[1], daily_season(self.step_)))
        scores = np.stack([state.update(row) for row in grid.values]) if len(grid.values) else grid.values
        return grid.to_long(scores)
