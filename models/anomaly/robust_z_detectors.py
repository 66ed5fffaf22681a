"""The robust z-score baselines as registry detectors: ``robust_z`` and ``robust_z_nms``.

- ``robust_z``: per series, :func:`models.anomaly.robust_z.trailing_robust_z` over the past ``window``
  (default a day; all the samples so far while fewer exist, from ``min_history`` samples on, or
  from a full window when a day holds fewer samples).
  A reference whose MAD is 0 but which varies uses its mean absolute deviation instead
  (``mean_ad_fallback``, on by default: see :func:`models.anomaly.robust_z.trailing_robust_z`).
- ``robust_z_nms``: the same, then :func:`models.anomaly.robust_z.causal_suppression` over ``width``
  steps (default 12): one long excursion scores once, where it starts and wherever it grows.

Both are causal and learn nothing but the grid step, so a whole series can be scored in one pass
(:meth:`RobustZDetector.series_z`, used by ``bench nab`` and ``bench detection``). Scores in
[0, 1] are ``z / (z + 1)``: monotone and never saturating, so every z threshold has its own
score (``score_threshold``) and a sweep over scores is a sweep over z.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.grid import duration_steps, to_grid
from models.anomaly.robust_z import causal_suppression, steps_in, trailing_robust_z
from models.anomaly.settings import DetectorSettings, Duration

WINDOW = "1D"
MIN_HISTORY = 30  # samples before a series is scored at all
NMS_WIDTH = 12  # steps


def z_to_score(z: np.ndarray | float) -> np.ndarray:
    """Robust z (>= 0) to a score in [0, 1): ``z / (z + 1)``, strictly increasing."""
    positive: np.ndarray = np.maximum(np.asarray(z, dtype=float), 0.0)
    return positive / (positive + 1.0)


def score_threshold(z: float) -> float:
    """The score a z threshold corresponds to (``z_to_score``)."""
    return float(z_to_score(z))


class RobustZSettings(DetectorSettings):
    window: Duration = WINDOW
    min_history: int = Field(default=MIN_HISTORY, ge=1)
    width: int = Field(default=NMS_WIDTH, ge=1)  # steps of the non-max suppression (robust_z_nms)
    mean_ad_fallback: bool = True


@DETECTORS.register("robust_z")
class RobustZDetector(AnomalyDetector):
    """Baseline: ``|y - median| / (1.4826 MAD)`` over each series' past ``window`` of samples."""

    name: ClassVar[str] = "robust_z"
    Settings: ClassVar[type[DetectorSettings]] = RobustZSettings
    nms: ClassVar[bool] = False

    def __init__(
        self,
        window: str = WINDOW,
        min_history: int = MIN_HISTORY,
        width: int = NMS_WIDTH,
        mean_ad_fallback: bool = True,
        **params: Any,
    ) -> None:
        if min_history < 1 or width < 1:
            raise ValueError(f"min_history and width must be >= 1, got {min_history} and {width}")
        super().__init__(
            window=window, min_history=min_history, width=width, mean_ad_fallback=mean_ad_fallback, **params
        )

    def series_z(self, ds: pd.Series | pd.DatetimeIndex, values: np.ndarray) -> np.ndarray:
        """Raw z of one whole series in time order (suppressed for ``robust_z_nms``); causal."""
        window = steps_in(pd.Timedelta(self.params["window"]), ds)
        z = trailing_robust_z(np.asarray(values, dtype=float), min(window, max(len(values), 1)),
                              min(self.params["min_history"], window), mean_ad_fallback=self.params["mean_ad_fallback"])
        return causal_suppression(z, self.params["width"]) if self.nms else z

    def series_scores(self, ds: pd.Series | pd.DatetimeIndex, values: np.ndarray) -> np.ndarray:
        """:meth:`series_z` as scores in [0, 1]."""
        return z_to_score(self.series_z(ds, values))

    def _context_length(self) -> pd.Timedelta:
        extra = self.params["width"] if self.nms else 0
        return self.step_ * (duration_steps(self.params["window"], self.step_, "window") + extra + 1)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: the statistics are all trailing."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        grid = to_grid(df, self.step_)
        window = duration_steps(self.params["window"], self.step_, "window")
        z = np.zeros_like(grid.values)
        for j in range(grid.values.shape[1]):
            # Steps where a series has no sample (NaN on the grid) score 0 and do not count as history.
            z[:, j] = trailing_robust_z(grid.values[:, j], min(window, len(grid.values)),
                                        min(self.params["min_history"], window), mean_ad_fallback=self.params["mean_ad_fallback"])
            if self.nms:
                z[:, j] = causal_suppression(z[:, j], self.params["width"])
        return grid.to_long(z_to_score(z))


@DETECTORS.register("robust_z_nms")
class RobustZNmsDetector(RobustZDetector):
    """Baseline: ``robust_z`` with causal non-max suppression over ``width`` steps."""

    name: ClassVar[str] = "robust_z_nms"
    nms: ClassVar[bool] = True
