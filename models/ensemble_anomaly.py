"""Ensemble of the forecasting (``streaming``) and nearest-neighbour (``knn``) streaming detectors.

Both states turn a step into a surprise in nats, ``-ln p`` of a calibrated tail probability on
the series' own past, so they are on one scale and combine without weights: the step's surprise
is the larger of the two less ``ln 2`` (a Bonferroni correction for looking twice), then one
high score per episode (:func:`models.streaming_anomaly.suppress_repeats`), score ``1 - p``.

Why: the two fail differently. A one-step forecaster tracks a stuck sensor or a quiet holiday
(every value is close to the last one) and so never finds it surprising; a never-seen context
of the last few values does. On NAB's 19 dev files (``foresight bench nab --detector
streaming_knn``) the pair scores 68.5 standard / 60.3 low-FP / 76.2 low-FN against 67.0 / 59.6 /
71.2 for ``streaming`` alone. The gain holds across the nearest-neighbour window (3..12 values:
68.1..69.0 standard), its history (500..2000 windows: 68.7..68.9) and the calibration length
(4000 / 8000: 68.5 / 68.5), but it is small and comes mostly from one file (the spike-density
one) plus more low-FN hits. With 1000 calibration steps the pair also catches both nyc_taxi
holiday windows (67.7..69.6 standard) but adds false alarms in the long noisy machine
temperature and CPU files, and low-FP falls below ``streaming`` alone (a one-in-1000 event
happens every 1000 steps by construction). Taking the smaller of the two surprises (agreement)
scored 58.6 and their mean 66.2 (window 4, calibration 1000).

Cost: the nearest-neighbour state dominates, ~0.5 s per update of 10,000 series (``streaming``:
~1 ms) and ~330 MiB of state, so ``streaming`` stays the choice for live scoring of many series.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.anomaly import DETECTORS, AnomalyDetector, _to_grid
from models.knn_anomaly import KnnParams, KnnState
from models.streaming_anomaly import StreamingParams, StreamingState, daily_season, suppress_repeats


@dataclass
class EnsembleState:
    """A streaming and a nearest-neighbour state over the same ``n`` series, scored together."""

    season: np.ndarray
    streaming: StreamingParams = field(default_factory=StreamingParams)
    knn: KnnParams = field(default_factory=KnnParams)

    def __post_init__(self) -> None:
        n = len(self.season)
        self.forecasting = StreamingState(n, self.season, self.streaming)
        self.neighbours = KnnState(n, self.knn)
        self.peak = np.zeros(n)
        self.since_peak = np.full(n, np.iinfo(np.int64).max // 2)

    @property
    def nbytes(self) -> int:
        return self.forecasting.nbytes + self.neighbours.nbytes + self.peak.nbytes + self.since_peak.nbytes

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray:
        """Scores in [0, 1] of the newest value of every series (NaN: no sample, score 0)."""
        a, ok = self.forecasting.surprise(y, phase)
        b, _ = self.neighbours.surprise(y, phase)
        surprise = np.where(ok, np.fmax(np.fmax(a, b) - np.log(2.0), 0.0), 0.0)
        p = self.streaming
        out, self.peak, self.since_peak = suppress_repeats(
            surprise, ok, self.peak, self.since_peak, p.onset, p.rearm_steps, p.peak_margin, p.damp
        )
        return 1.0 - np.exp(-out)


@DETECTORS.register("streaming_knn")
class EnsembleAnomalyDetector(AnomalyDetector):
    """:class:`EnsembleState` behind the registry's fit / predict surface (long frames).

    Parameters: ``knn_<name>`` sets the nearest-neighbour state's ``<name>``; any other name is
    a streaming-state parameter (which also governs the shared repeat suppression).
    """

    name: ClassVar[str] = "streaming_knn"

    def __init__(self, context_days: float = 7.0, **params: Any) -> None:
        known = {f.name for f in fields(StreamingParams)} | {f"knn_{f.name}" for f in fields(KnnParams)}
        unknown = set(params) - known
        if unknown:
            raise ValueError(
                f"unknown streaming_knn detector parameter(s) {sorted(unknown)}; choose from {sorted(known)}"
            )
        super().__init__(context_days=context_days, **params)
        self._split()  # validates the values now, not at the first predict

    def _split(self) -> tuple[StreamingParams, KnnParams]:
        knn = {k[4:]: v for k, v in self.params.items() if k.startswith("knn_")}
        stream = {k: v for k, v in self.params.items() if k != "context_days" and not k.startswith("knn_")}
        return StreamingParams(**stream), KnnParams(**knn)

    def make_state(self, season: np.ndarray) -> EnsembleState:
        """A fresh ensemble state for ``len(season)`` series with those daily seasons."""
        stream, knn = self._split()
        return EnsembleState(np.asarray(season), stream, knn)

    def _context_length(self) -> pd.Timedelta:
        stream, knn = self._split()
        warm = self.step_ * (max(stream.warmup, knn.warmup, knn.history + 2 * knn.window) + 1)
        return max(pd.Timedelta(days=self.params["context_days"]), warm)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: both states learn online."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = _to_grid(df, self.step_)
        season = daily_season(self.step_)
        state = self.make_state(np.full(grid.values.shape[1], season))
        steps = np.arange(grid.values.shape[0])  # the grid starts at midnight UTC
        phase = steps % season if season else np.zeros_like(steps)
        scores = np.empty_like(grid.values, dtype="float64")
        for t in range(grid.values.shape[0]):
            scores[t] = state.update(grid.values[t], np.full(grid.values.shape[1], phase[t]))
        return grid.to_long(scores)
