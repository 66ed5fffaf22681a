"""The ``streaming_ensemble`` detector: the one-step forecasting state and the nearest-neighbour
state on block means (block ends staggered over the series), optionally with the robust z-score
over the past day; combined on one surprise scale, then one high score per episode.

Every member turns a step into a surprise in nats, ``-ln p`` of a tail probability calibrated on
the series' own past, so they combine without weights: the step's surprise is the largest less
``ln k`` for ``k`` members (a Bonferroni correction), repeats are suppressed causally
(:func:`models.anomaly.repeats.suppress_repeats`) and the score is ``1 - exp(-surprise)`` in
[0, 1]: one threshold means the same tail probability on every series. The members:

- the forecaster with value novelty (:class:`models.anomaly.streaming.StreamingState`): spikes,
  level shifts, new extremes;
- the nearest-neighbour state on means of ``coarse_block`` steps
  (:class:`models.anomaly.staggered_block_knn.StaggeredBlockKnnState`): a slower shape the series never
  drew (a quiet holiday in a daily cycle, a changed rhythm) that a one-step forecaster tracks;
- with ``robust_z`` on, the trailing-day robust z-score (:class:`models.anomaly.robust_z_stream.DayRobustZState`).

This is ``streaming_knn`` without its point-scale nearest-neighbour member and with the coarse
member's searches spread over the steps, so an update of 10,000 series costs a fraction of
``streaming_knn``'s worst step. Measurements (NAB dev files, leave-one-category-out) are in
docs/anomaly_detectors.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.daily_cycle import daily_season
from models.anomaly.grid import to_grid
from models.anomaly.knn import KnnParams
from models.anomaly.repeats import reported_scores
from models.anomaly.robust_z_stream import DayRobustZState, RobustZParams
from models.anomaly.staggered_block_knn import StaggeredBlockKnnState, stable_origins
from models.anomaly.streaming import StreamingParams, StreamingState

COARSE_BLOCK = 8  # steps per block mean of the nearest-neighbour member
COARSE_HISTORY = 500  # reference windows (of block means) searched; chosen leave-one-category-out on NAB


@dataclass
class StreamingEnsembleState:
    """The members over the same ``len(season)`` series (see the module docstring); repeat
    suppression follows ``streaming``'s ``onset`` / ``rearm_steps`` / ``peak_margin`` / ``damp``,
    and ``streaming.suppress=False`` gives every step's combined score."""

    season: np.ndarray
    streaming: StreamingParams = field(default_factory=StreamingParams)
    knn: KnnParams = field(default_factory=lambda: KnnParams(history=COARSE_HISTORY))
    coarse_block: int = COARSE_BLOCK
    robust_z: RobustZParams | None = None  # None: no robust z member
    origins: np.ndarray | None = None  # each series' coarse block origin (None: its index)

    def __post_init__(self) -> None:
        season = np.asarray(self.season, dtype=np.int64)
        n = season.size
        if self.coarse_block < 1:
            raise ValueError(f"coarse_block must be at least 1 step, got {self.coarse_block}")
        self.forecasting = StreamingState(n, season, self.streaming)
        self.coarse = StaggeredBlockKnnState(n, self.coarse_block, self.knn, self.origins)
        self.day = None if self.robust_z is None else DayRobustZState(season, self.robust_z)
        self._bonferroni = np.log(2.0 if self.day is None else 3.0)
        self.peak = np.zeros(n)
        self.since_peak = np.full(n, np.iinfo(np.int64).max // 2)

    @property
    def nbytes(self) -> int:
        day = 0 if self.day is None else self.day.nbytes
        own = self.peak.nbytes + self.since_peak.nbytes
        return self.forecasting.nbytes + self.coarse.nbytes + day + own

    def surprise(self, y: np.ndarray, phase: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """The combined surprise before suppression and which series had a sample; then learns."""
        y = np.asarray(y, dtype="float64")
        largest, ok = self.forecasting.surprise(y, phase)
        largest = np.fmax(largest, self.coarse.surprise(y, phase)[0])
        if self.day is not None:
            largest = np.fmax(largest, self.day.surprise(y, ok))
        return np.where(ok, np.fmax(largest - self._bonferroni, 0.0), 0.0), ok

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray:
        """Scores in [0, 1] of the newest value of every series (NaN: no sample, score 0)."""
        surprise, ok = self.surprise(y, phase)
        scores, self.peak, self.since_peak = reported_scores(surprise, ok, self.peak, self.since_peak, self.streaming)
        return scores


@DETECTORS.register("streaming_ensemble")
class StreamingEnsembleDetector(AnomalyDetector):
    """:class:`StreamingEnsembleState` behind the registry's fit / predict surface (long frames).

    Parameters: ``knn_<name>`` sets the nearest-neighbour member's ``<name>``, ``coarse_block``
    its steps per block, ``robust_z`` (bool, default False) adds the robust z member and
    ``z_<name>`` sets its ``<name>``; any other name is a streaming-state parameter (which also
    governs the shared repeat suppression).
    """

    name: ClassVar[str] = "streaming_ensemble"
    incident_params: ClassVar[dict[str, Any]] = {"suppress": False}  # as the streaming detector's

    @classmethod
    def parameter_names(cls) -> list[str]:
        """``context_days``, the streaming state's parameters, ``knn_<name>``, ``coarse_block``,
        ``robust_z`` and ``z_<name>``."""
        return ["context_days", *(f.name for f in fields(StreamingParams)),
                *(f"knn_{f.name}" for f in fields(KnnParams)), "coarse_block", "robust_z",
                *(f"z_{f.name}" for f in fields(RobustZParams))]

    def __init__(self, context_days: float = 7.0, **params: Any) -> None:
        known = set(self.parameter_names()) - {"context_days"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(
                f"unknown streaming_ensemble detector parameter(s) {sorted(unknown)}; "
                f"choose from {sorted(known)}"
            )
        super().__init__(context_days=context_days, **params)
        self.make_state(np.zeros(1, dtype=np.int64))  # validates the values now, not at the first predict

    def _parts(self) -> tuple[StreamingParams, KnnParams, int, RobustZParams | None]:
        knn = {"history": COARSE_HISTORY} | {k[4:]: v for k, v in self.params.items() if k.startswith("knn_")}
        z = {k[2:]: v for k, v in self.params.items() if k.startswith("z_")}
        stream = {
            k: v
            for k, v in self.params.items()
            if k not in ("context_days", "coarse_block", "robust_z") and not k.startswith(("knn_", "z_"))
        }
        robust_z = RobustZParams(**z) if self.params.get("robust_z", False) else None
        return StreamingParams(**stream), KnnParams(**knn), int(self.params.get("coarse_block", COARSE_BLOCK)), robust_z

    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> StreamingEnsembleState:
        """A fresh ensemble state for ``len(season)`` series with those daily seasons; with
        their ``names``, each series' coarse block origin follows its name
        (:func:`~models.anomaly.staggered_block_knn.stable_origins`), else its position."""
        stream, knn, block, robust_z = self._parts()
        origins = None if names is None else stable_origins(names, block)
        return StreamingEnsembleState(np.asarray(season), stream, knn, block, robust_z, origins)

    def _context_length(self) -> pd.Timedelta:
        """Enough history for the coarse member to fill its reference windows (``coarse_block``
        times as many steps as a point-scale one)."""
        stream, knn, block, _ = self._parts()
        knn_warm = max(knn.warmup, knn.history + 2 * knn.window) * block
        warm = self.step_ * (max(stream.warmup, knn_warm) + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: every member learns online."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        season = daily_season(self.step_)
        # origins by name: a series scores the same whichever series share its batch
        state = self.make_state(np.full(grid.values.shape[1], season), list(grid.ids))
        steps = np.arange(grid.values.shape[0])  # the grid starts at midnight UTC
        phase = steps % season if season else np.zeros_like(steps)
        scores = np.empty_like(grid.values, dtype="float64")
        for t in range(grid.values.shape[0]):
            scores[t] = state.update(grid.values[t], np.full(grid.values.shape[1], phase[t]))
        return grid.to_long(scores)
