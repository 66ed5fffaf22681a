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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, create_model

from foresight.plugins import dataclass_fields
from models.anomaly.base import DETECTORS
from models.anomaly.knn import KnnParams
from models.anomaly.repeats import reported_scores
from models.anomaly.robust_z_stream import DayRobustZState, RobustZParams
from models.anomaly.settings import CONTEXT_DAYS, ContextDays, DetectorSettings, prefixed, without
from models.anomaly.staggered_block_knn import StaggeredBlockKnnState, stable_origins
from models.anomaly.state_replay import StateReplayDetector
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


Parts = tuple[StreamingParams, KnnParams, int, RobustZParams | None]


def streaming_ensemble_parts(params: Mapping[str, Any]) -> Parts:
    """The streaming state's parameters, the nearest-neighbour member's (``knn_<name>``), its
    steps per block (``coarse_block``) and the robust z member's (``z_<name>``, None unless
    ``robust_z``) from a ``streaming_ensemble`` detector's parameters."""
    stream = without(params, "context_days", "coarse_block", "robust_z", prefixes=("knn_", "z_"))
    knn = {"history": COARSE_HISTORY} | prefixed(params, "knn_")
    robust_z = RobustZParams(**prefixed(params, "z_")) if params.get("robust_z", False) else None
    return StreamingParams(**stream), KnnParams(**knn), int(params.get("coarse_block", COARSE_BLOCK)), robust_z


class _StreamingEnsembleRules(DetectorSettings):
    context_days: ContextDays = CONTEXT_DAYS
    coarse_block: int = Field(default=COARSE_BLOCK, ge=1)
    robust_z: bool = False  # add the trailing-day robust z member

    def check_rules(self) -> None:
        streaming_ensemble_parts(self.given())


# ``context_days``, the streaming state's parameters, ``knn_<name>``, ``coarse_block``, ``robust_z``
# and ``z_<name>``.
StreamingEnsembleSettings = create_model(
    "StreamingEnsembleSettings", __base__=_StreamingEnsembleRules, **dataclass_fields(StreamingParams),
    **dataclass_fields(KnnParams, prefix="knn_", defaults={"history": COARSE_HISTORY}),
    **dataclass_fields(RobustZParams, prefix="z_"),
)


@DETECTORS.register("streaming_ensemble")
class StreamingEnsembleDetector(StateReplayDetector):
    """:class:`StreamingEnsembleState` behind the registry's fit / predict surface (long frames).

    Parameters: ``knn_<name>`` sets the nearest-neighbour member's ``<name>``, ``coarse_block``
    its steps per block, ``robust_z`` (bool, default False) adds the robust z member and
    ``z_<name>`` sets its ``<name>``; any other name is a streaming-state parameter (which also
    governs the shared repeat suppression).
    """

    name: ClassVar[str] = "streaming_ensemble"
    Settings: ClassVar[type[DetectorSettings]] = StreamingEnsembleSettings

    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> StreamingEnsembleState:
        """A fresh ensemble state for ``len(season)`` series with those daily seasons; with
        their ``names``, each series' coarse block origin follows its name
        (:func:`~models.anomaly.staggered_block_knn.stable_origins`), else its position."""
        stream, knn, block, robust_z = streaming_ensemble_parts(self.params)
        origins = None if names is None else stable_origins(names, block)
        return StreamingEnsembleState(np.asarray(season), stream, knn, block, robust_z, origins)

    def _warmup_parts(self) -> tuple[StreamingParams, KnnParams, int]:
        stream, knn, block, _ = streaming_ensemble_parts(self.params)
        return stream, knn, block
