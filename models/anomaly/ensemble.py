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

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.daily_cycle import daily_season
from models.anomaly.grid import to_grid
from models.anomaly.knn import BlockKnnState, KnnParams, KnnState
from models.anomaly.repeats import reported_scores
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


@DETECTORS.register("streaming_knn")
class EnsembleAnomalyDetector(AnomalyDetector):
    """:class:`EnsembleState` behind the registry's fit / predict surface (long frames).

    Parameters: ``knn_<name>`` sets the nearest-neighbour states' ``<name>`` (both scales),
    ``coarse_block`` the steps per block of the coarse one (0: no coarse member); any other name
    is a streaming-state parameter (which also governs the shared repeat suppression).
    """

    name: ClassVar[str] = "streaming_knn"
    incident_params: ClassVar[dict[str, Any]] = {"suppress": False}  # as the streaming detector's

    @classmethod
    def parameter_names(cls) -> list[str]:
        """``context_days``, the streaming state's parameters, ``knn_<name>`` and ``coarse_block``."""
        return ["context_days", *(f.name for f in fields(StreamingParams)),
                *(f"knn_{f.name}" for f in fields(KnnParams)), "coarse_block"]

    def __init__(self, context_days: float = 7.0, **params: Any) -> None:
        known = set(self.parameter_names()) - {"context_days"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(
                f"unknown streaming_knn detector parameter(s) {sorted(unknown)}; choose from {sorted(known)}"
            )
        super().__init__(context_days=context_days, **params)
        self.make_state(np.zeros(1, dtype=np.int64))  # validates the values now, not at the first predict

    @property
    def coarse_block(self) -> int:
        return int(self.params.get("coarse_block", COARSE_BLOCK))

    def _split(self) -> tuple[StreamingParams, KnnParams]:
        knn = {k[4:]: v for k, v in self.params.items() if k.startswith("knn_")}
        stream = {
            k: v
            for k, v in self.params.items()
            if k not in ("context_days", "coarse_block") and not k.startswith("knn_")
        }
        return StreamingParams(**stream), KnnParams(**knn)

    def make_state(self, season: np.ndarray) -> EnsembleState:
        """A fresh ensemble state for ``len(season)`` series with those daily seasons."""
        stream, knn = self._split()
        return EnsembleState(np.asarray(season), stream, knn, self.coarse_block)

    def _context_length(self) -> pd.Timedelta:
        """Enough history for the slowest member to fill its reference windows (the coarse one
        needs ``coarse_block`` times as many steps as the fine one)."""
        stream, knn = self._split()
        knn_warm = max(knn.warmup, knn.history + 2 * knn.window) * max(self.coarse_block, 1)
        warm = self.step_ * (max(stream.warmup, knn_warm) + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: both states learn online."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        season = daily_season(self.step_)
        state = self.make_state(np.full(grid.values.shape[1], season))
        steps = np.arange(grid.values.shape[0])  # the grid starts at midnight UTC
        phase = steps % season if season else np.zeros_like(steps)
        scores = np.empty_like(grid.values, dtype="float64")
        for t in range(grid.values.shape[0]):
            scores[t] = state.update(grid.values[t], np.full(grid.values.shape[1], phase[t]))
        return grid.to_long(scores)
