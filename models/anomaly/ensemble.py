"""Ensemble of the forecasting (``streaming``) and nearest-neighbour (``knn``) streaming detectors,
the latter at two time scales.

Every member turns a step into a surprise in nats, ``-ln p`` of a calibrated tail probability on
the series' own past, so they are on one scale and combine without weights: the step's surprise
is the largest less ``ln k`` for ``k`` members (a Bonferroni correction for looking ``k`` times),
then one high score per episode (:func:`models.anomaly.repeats.suppress_repeats`), score
``1 - p``. The members:

- the one-step forecaster (:class:`models.anomaly.streaming.StreamingState`);
- the nearest-neighbour state on the last few values (:class:`models.anomaly.knn.KnnState`);
- the same on means of ``coarse_block`` (8) steps (:class:`models.anomaly.knn.BlockKnnState`):
  shapes over 48 steps and a history 8 times as long, scored at each block's last step.

Why: they fail differently. A one-step forecaster tracks a stuck sensor or a quiet holiday (every
value is close to the last one) and so never finds it surprising; a never-seen context of the
last few values does, if the context is long enough to differ from normal noise. At the point
scale a quiet day of a noisy daily cycle does not (each 6-value window looks like noise); block
means average the noise away and show a shape no past day drew.

The coarse block of 8 steps, its single scale and the members' windows, histories and
calibrations were chosen on NAB's dev files (``foresight bench nab --detector streaming_knn``);
the figures, what else was tried and left out, and the cost are in docs/anomaly_detectors.md,
*History: how streaming, knn and streaming_knn were tuned*. Blocks are counted from the first step
the state sees (the registry detector's grid starts at midnight UTC, so there they are aligned to
the clock), so which steps end a block depends on that origin. The coarse member needs
``coarse_block`` times the point-scale history before its reference set is full, and at the steps
where a block ends it searches every series at once: that step is the expensive one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, create_model

from foresight.plugins import dataclass_fields
from models.anomaly.base import DETECTORS
from models.anomaly.knn import BlockKnnState, KnnParams, KnnState
from models.anomaly.repeats import reported_scores
from models.anomaly.settings import CONTEXT_DAYS, ContextDays, DetectorSettings, prefixed, without
from models.anomaly.state_replay import StateReplayDetector
from models.anomaly.streaming import StreamingParams, StreamingState

COARSE_BLOCK = 8  # steps per block mean of the coarse member (see the module docstring)


@dataclass
class EnsembleState:
    """The forecasting state and the nearest-neighbour states at the point scale and (unless
    ``coarse_block`` is 0) on ``coarse_block``-step means, over the same ``n`` series."""

    season: np.ndarray
    streaming: StreamingParams = field(default_factory=StreamingParams)
    knn: KnnParams = field(default_factory=KnnParams)
    coarse_block: int = COARSE_BLOCK  # steps averaged by the coarse nearest-neighbour member; 0: none

    def __post_init__(self) -> None:
        n = len(self.season)
        if self.coarse_block < 0:
            raise ValueError(f"coarse_block must be 0 (off) or a number of steps, got {self.coarse_block}")
        self.forecasting = StreamingState(n, self.season, self.streaming)
        self.neighbours = KnnState(n, self.knn)
        self.coarse = BlockKnnState(n, self.coarse_block, self.knn) if self.coarse_block else None
        self._bonferroni = np.log(2.0 if self.coarse is None else 3.0)  # ln(members)
        self.peak = np.zeros(n)
        self.since_peak = np.full(n, np.iinfo(np.int64).max // 2)

    @property
    def nbytes(self) -> int:
        coarse = 0 if self.coarse is None else self.coarse.nbytes
        own = self.peak.nbytes + self.since_peak.nbytes
        return self.forecasting.nbytes + self.neighbours.nbytes + coarse + own

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray:
        """Scores in [0, 1] of the newest value of every series (NaN: no sample, score 0)."""
        a, ok = self.forecasting.surprise(y, phase)
        b, _ = self.neighbours.surprise(y, phase)
        largest = np.fmax(a, b)
        if self.coarse is not None:
            largest = np.fmax(largest, self.coarse.surprise(y, phase)[0])
        surprise = np.where(ok, np.fmax(largest - self._bonferroni, 0.0), 0.0)
        scores, self.peak, self.since_peak = reported_scores(surprise, ok, self.peak, self.since_peak, self.streaming)
        return scores


def ensemble_parts(params: Mapping[str, Any]) -> tuple[StreamingParams, KnnParams, int]:
    """The streaming state's parameters, the nearest-neighbour states' (``knn_<name>``) and the
    coarse block (``coarse_block``) from a ``streaming_knn`` detector's parameters."""
    stream = without(params, "context_days", "coarse_block", prefixes=("knn_",))
    return StreamingParams(**stream), KnnParams(**prefixed(params, "knn_")), int(params.get("coarse_block", COARSE_BLOCK))


class _EnsembleRules(DetectorSettings):
    context_days: ContextDays = CONTEXT_DAYS
    coarse_block: int = Field(default=COARSE_BLOCK, ge=0)  # 0: no coarse member

    def check_rules(self) -> None:
        ensemble_parts(self.given())


# ``context_days``, the streaming state's parameters, ``knn_<name>`` and ``coarse_block``.
EnsembleSettings = create_model("EnsembleSettings", __base__=_EnsembleRules, **dataclass_fields(StreamingParams),
                                **dataclass_fields(KnnParams, prefix="knn_"))


@DETECTORS.register("streaming_knn")
class EnsembleAnomalyDetector(StateReplayDetector):
    """:class:`EnsembleState` behind the registry's fit / predict surface (long frames).

    Parameters: ``knn_<name>`` sets the nearest-neighbour states' ``<name>`` (both scales),
    ``coarse_block`` the steps per block of the coarse one (0: no coarse member); any other name
    is a streaming-state parameter (which also governs the shared repeat suppression).
    """

    name: ClassVar[str] = "streaming_knn"
    Settings: ClassVar[type[DetectorSettings]] = EnsembleSettings

    @property
    def coarse_block(self) -> int:
        return int(self.params.get("coarse_block", COARSE_BLOCK))

    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> EnsembleState:
        """A fresh ensemble state for ``len(season)`` series with those daily seasons (blocks
        start at each series' first step, whatever its name)."""
        stream, knn, block = ensemble_parts(self.params)
        return EnsembleState(np.asarray(season), stream, knn, block)

    def _warmup_parts(self) -> tuple[StreamingParams, KnnParams, int]:
        return ensemble_parts(self.params)
