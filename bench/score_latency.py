"""``foresight bench score-latency``: time scoring the newest sample of many series at once.

The state of a streaming detector (``streaming``: :class:`~models.anomaly.streaming.StreamingState`;
``streaming_knn``: :class:`~models.anomaly.ensemble.EnsembleState`, all three members;
``streaming_ensemble``: :class:`~models.anomaly.streaming_ensemble.StreamingEnsembleState`) for
``series`` series (5-minute steps, a daily season of 288 steps) is warmed on ``warm_steps``
synthetic samples, then the update for one new sample of every series is timed ``repeats`` times
(pin the process to one core, e.g. ``taskset -c 0``). Median and worst are reported: the
ensemble's coarse member searches its neighbours only at the last step of each 8-step block, so
its worst step is the one that matters and the timed steps include such steps (counted as
``block_ends``) whenever ``repeats`` spans a block. ``streaming_ensemble`` staggers its block
ends over the series, so every step searches one group and no step is special.

``incident_stream`` times the detect flow's default incident builder instead
(:class:`~models.incidents.stream.IncidentStream`): one :meth:`~models.incidents.stream.IncidentStream.step`
scores every series, rolls the evidence up per service and opens or closes incidents. Its series
are laid out like the simulator's fleet (six metrics per instance, two instances per service,
services in systems of six along a call graph); ``state_mib`` counts the arrays it keeps.

The nearest-neighbour members search and rank their whole (partly empty) history and calibration
ring from the first step, so a short warm-up does not make their updates cheaper and the figure
errs on the slow side (docs/anomaly_detectors.md, *Cost*).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.anomaly.ensemble import EnsembleState
from models.anomaly.streaming import StreamingState
from models.anomaly.streaming_ensemble import StreamingEnsembleState
from models.incidents.stream import IncidentStream

# Detectors whose streaming state can be timed, and the detect flow's streaming incident builder.
TIMED_DETECTORS = ("streaming", "streaming_knn", "streaming_ensemble", "incident_stream")
_METRICS = (("cpu_pct", "percent"), ("mem_pct", "percent"), ("disk_pct", "percent"),
            ("latency_p95", "seconds"), ("error_rate", "ratio"), ("request_rate", "requests_per_second"))


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


class IncidentStreamClock:
    """An :class:`~models.incidents.stream.IncidentStream` over ``series`` series shaped like the
    simulator's fleet, stepped every ``step`` behind the timed interface (``phase`` unused)."""

    def __init__(self, series: int, step: pd.Timedelta = pd.Timedelta(minutes=5)) -> None:
        per_service = 2 * len(_METRICS)
        services = [f"svc{j}" for j in range(-(-series // per_service))]
        rows = [(f"{services[i // per_service]}/i{i // len(_METRICS)}/{metric}", services[i // per_service],
                 f"i{i // len(_METRICS)}", metric, unit)
                for i, (metric, unit) in zip(range(series), _METRICS * (series // len(_METRICS) + 1), strict=False)]
        catalogue = pd.DataFrame(rows, columns=["unique_id", "service", "resource_id", "metric", "unit"])
        # Systems of six: the first calls the next three, the fourth calls the last two.
        graph: dict[str, list[str]] = {}
        for j in range(0, len(services), 6):
            system = services[j:j + 6]
            graph[system[0]] = system[1:4]
            if len(system) > 4:
                graph[system[3]] = system[4:]
        self.stream = IncidentStream(catalogue, graph)
        self.step, self.now = step, pd.Timestamp("2026-05-01", tz="UTC")

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray:
        self.stream.step(self.now, y)
        self.now += self.step
        return y

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the stream keeps between steps (its scorer's included)."""
        return _array_bytes(self.stream) + _array_bytes(self.stream._scorer)


def _array_bytes(obj: Any) -> int:
    """Bytes of the numpy arrays among ``obj``'s attributes, in deques and tuples of them too."""
    def size(value: Any) -> int:
        if isinstance(value, np.ndarray):
            return value.nbytes
        if isinstance(value, deque | tuple | list):
            return sum(size(v) for v in value)
        return 0

    return sum(size(v) for v in vars(obj).values())


def make_state(detector: str, series: int, season: int) -> tuple[_State, int]:
    """A fresh state of ``detector`` for ``series`` series, and the steps per coarse block (0: none)."""
    season_of = np.full(series, season)
    if detector == "streaming":
        return StreamingState(series, season_of), 0
    if detector == "streaming_knn":
        state = EnsembleState(season_of)
        return state, state.coarse_block
    if detector == "streaming_ensemble":
        return StreamingEnsembleState(season_of), 0  # block ends staggered: one group searches each step
    if detector == "incident_stream":
        return IncidentStreamClock(series), 0
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
