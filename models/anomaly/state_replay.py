"""Base of the ensemble detectors (``streaming_knn``, ``streaming_ensemble``): an online state
with a forecasting member and nearest-neighbour members on block means, replayed over the grid.

What the two share lives here once: the check of their parameters against their ``Settings``,
building a state at construction (so a bad value fails then, not at the first predict), the
history a score depends on, and the replay of the state over the grid (scores of every series,
one time step at a time, the grid starting at midnight UTC: :func:`models.anomaly.stepped.feed_rows`,
which the detect flow also resumes a kept state with).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.anomaly.base import AnomalyDetector
from models.anomaly.grid import to_grid
from models.anomaly.knn import KnnParams
from models.anomaly.settings import CONTEXT_DAYS, DetectorSettings, reject_unknown
from models.anomaly.stepped import OnlineState, feed_rows, fresh_state
from models.anomaly.streaming import StreamingParams, daily_season

__all__ = ["OnlineState", "StateReplayDetector"]

class StateReplayDetector(AnomalyDetector):
    """An :class:`OnlineState` behind the registry's fit / predict surface (long frames):
    subclasses declare ``Settings`` and build the state (:meth:`make_state`) from ``params``."""

    Settings: ClassVar[type[DetectorSettings]]
    incident_params: ClassVar[dict[str, Any]] = {"suppress": False}  # as the streaming detector's
    stepped: ClassVar[bool] = True  # models.anomaly.stepped: the detect flow resumes its state

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
        state = fresh_state(self, list(grid.ids))  # the grid starts at midnight UTC: row 0 is phase 0
        return grid.to_long(feed_rows(state, grid.values, 0, daily_season(self.step_)))
