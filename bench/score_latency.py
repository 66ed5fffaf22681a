"""``foresight bench score-latency``: time scoring the newest sample of many series at once.

A :class:`~models.streaming_anomaly.StreamingState` for ``series`` series (5-minute steps, a
daily season of 288 steps) is warmed on ``warm_steps`` synthetic samples, then the update for
one new sample of every series is timed ``repeats`` times on one core; the median is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyFigures:
    series: int
    median_seconds: float
    max_seconds: float
    repeats: int
    state_mib: float

    @property
    def per_series_us(self) -> float:
        return 1e6 * self.median_seconds / self.series


def run(
    series: int = 10_000, warm_steps: int = 300, repeats: int = 20, season: int = 288, seed: int = 0
) -> LatencyFigures:
    """Median and worst wall time of one ``update`` across ``series`` series."""
    from models.streaming_anomaly import StreamingState

    if series < 1 or repeats < 1:
        raise ValueError(f"series and repeats must be positive, got {series} and {repeats}")
    rng = np.random.default_rng(seed)
    state = StreamingState(series, np.full(series, season))
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
    return LatencyFigures(
        series, float(np.median(timings)), float(np.max(timings)), repeats, state.nbytes / 2**20
    )
