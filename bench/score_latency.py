"""``foresight bench score-latency``: time scoring the newest sample of many series at once.

The state of a streaming detector (``streaming``: :class:`~models.streaming_anomaly.StreamingState`;
``streaming_knn``: :class:`~models.ensemble_anomaly.EnsembleState`, all three members) for
``series`` series (5-minute steps, a daily season of 288 steps) is warmed on ``warm_steps``
synthetic samples, then the update for one new sample of every series is timed ``repeats`` times
(pin the process to one core, e.g. ``taskset -c 0``). Median and worst are reported: the
ensemble's coarse member searches its neighbours only at the last step of each 8-step block, so
its worst step is the one that matters and the timed steps include such steps (counted as
``block_ends``) whenever ``repeats`` spans a block.

The nearest-neighbour members search and rank their whole (partly empty) history and calibration
ring from the first step, so a short warm-up does not make their updates cheaper: on 1,000 series
an update after 30 warm steps took longer than after 5,000 (full histories), so the figure errs
on the slow side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

TIMED_DETECTORS = ("streaming", "streaming_knn")  # detectors whose streaming state can be timed


class _State(Protocol):
    """What is timed: one update of every series, and the memory held between updates."""

    @property
    def nbytes(self) -> int: ...

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray: ...


@dataclass(frozen=True)
class LatencyFigures:
    series: int
    median_seconds: float
    max_seconds: float
    repeats: int
    state_mib: float
    detector: str = "streaming"
    block_ends: int = 0  # timed updates at which the coarse nearest-neighbour member searched

    @property
    def per_series_us(self) -> float:
        return 1e6 * self.median_seconds / self.series


def make_state(detector: str, series: int, season: int) -> tuple[_State, int]:
    """A fresh state of ``detector`` for ``series`` series, and the steps per coarse block (0: none)."""
    season_of = np.full(series, season)
    if detector == "streaming":
        from models.streaming_anomaly import StreamingState

        return StreamingState(series, season_of), 0
    if detector == "streaming_knn":
        from models.ensemble_anomaly import EnsembleState

        state = EnsembleState(season_of)
        return state, state.coarse_block
    raise ValueError(f"unknown detector {detector!r}; choose one of: {', '.join(TIMED_DETECTORS)}")


def run(
    series: int = 10_000,
    warm_steps: int = 300,
    repeats: int = 20,
    season: int = 288,
    seed: int = 0,
    detector: str = "streaming",
) -> LatencyFigures:
    """Median and worst wall time of one ``update`` across ``series`` series."""
    if series < 1 or repeats < 1 or warm_steps < 0:
        raise ValueError(
            f"series and repeats must be positive and warm_steps not negative, got {series}, {repeats}, {warm_steps}"
        )
    state, block = make_state(detector, series, season)
    rng = np.random.default_rng(seed)
    base = rng.uniform(10, 90, series)
    amplitude = rng.uniform(0, 20, series)

    def sample(t: int) -> np.ndarray:
        return base + amplitude * np.sin(2 * np.pi * t / season) + rng.normal(0, 1, series)

    for t in range(warm_steps):
        state.update(sample(t), np.full(series, t % season))
    timings = []
    for t in range(warm_steps, warm_steps + repeats):
        y, phase = sample(t), np.full(series, t % season)
        started = time.perf_counter()
        state.update(y, phase)
        timings.append(time.perf_counter() - started)
    # the coarse member's blocks end at every block-th update, counted from the first
    block_ends = sum((t + 1) % block == 0 for t in range(warm_steps, warm_steps + repeats)) if block else 0
    return LatencyFigures(
        series,
        float(np.median(timings)),
        float(np.max(timings)),
        repeats,
        state.nbytes / 2**20,
        detector,
        block_ends,
    )
