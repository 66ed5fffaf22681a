"""Base of the ensemble detectors (``streaming_knn``, ``streaming_ensemble``): an online state
with a forecasting member and nearest-neighbour members on block means, replayed over the grid.

What the two share lives here once: the check of their parameters against their ``Settings``,
building a state at construction (so a bad value fails then, not at the first predict), the
history a score depends on, and the replay of the state over the grid (scores of every series,
one time step at a time, the grid starting at midnight UTC).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from models.anomaly.base import AnomalyDetector
from models.anomaly.grid import to_grid
from models.anomaly.knn import KnnParams
from models.anomaly.settings import CONTEXT_DAYS, DetectorSettings, reject_unknown
from models.anomaly.streaming import StreamingParams, daily_season


class OnlineState(Protocol):
    """A state over ``n`` series that scores each new step of all of them (and learns from it)."""

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray: ...


class StateReplayDetector(AnomalyDetector):
    """An :class:`OnlineState` behind the registry's fit / predict surface (long frames):
    subclasses declare ``Settings`` and build the state (:meth:`make_state`) from ``params``."""

    Settings: ClassVar[type[DetectorSettings]]
    incident_params: ClassVar[dict[str, Any]] = {"suppress": False}  # as the streaming detector's

    def __init__(self, context_days: float = CONTEXT_DAYS, **params: Any) -> None:
        reject_unknown(self.name, params, self.Settings)
        super().__init__(context_days=context_days, **params)
        self.make_state(np.zeros(1, dtype=np.int64))  # validates the values now, not at the first predict

    @abstractmethod
    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> OnlineState:
        """A fresh state for ``len(season)`` series with those daily seasons (``names``: the
        series' ids, for states whose per-series settings follow the name)."""

    @abstractmethod
    def _warmup_parts(self) -> tuple[StreamingParams, KnnParams, int]:
        """The forecasting member's and the nearest-neighbour members' parameters and the
        steps per block of the coarsest one (0 or 1: the point scale only)."""

    def _context_length(self) -> pd.Timedelta:
        """Enough history for the slowest member to fill its reference windows (a block member
        needs ``coarse_block`` times as many steps as a point-scale one)."""
        stream, knn, block = self._warmup_parts()
        knn_warm = max(knn.warmup, knn.history + 2 * knn.window) * max(block, 1)
        warm = self.step_ * (max(stream.warmup, knn_warm) + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: every member learns online."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        season = daily_season(self.step_)
        # by name: a series scores the same whichever series share its batch
        state = self.make_state(np.full(grid.values.shape[1], season), list(grid.ids))
        steps = np.arange(grid.values.shape[0])  # the grid starts at midnight UTC
        phase = steps % season if season else np.zeros_like(steps)
        scores = np.empty_like(grid.values, dtype="float64")
        for t in range(grid.values.shape[0]):
            scores[t] = state.update(grid.values[t], np.full(grid.values.shape[1], phase[t]))
        return grid.to_long(scores)
