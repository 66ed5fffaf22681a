"""``rolling_zscore`` (the champion gate's baseline, :class:`RollingZScoreDetector`): ``|z|`` against a trailing
mean and standard deviation, mapped through the normal CDF.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from models.anomaly.base import DETECTORS, AnomalyDetector
from models.anomaly.grid import duration_steps, past_rolling, to_grid
from models.anomaly.settings import DetectorSettings, Duration


class RollingZScoreSettings(DetectorSettings):
    window: Duration = "2h"  # trailing window of the mean and standard deviation
    min_periods: int = Field(default=6, ge=1)  # samples in it before a series is scored


@DETECTORS.register("rolling_zscore")
class RollingZScoreDetector(AnomalyDetector):
    """Baseline: ``|y - trailing mean| / trailing std`` mapped to ``2 * Phi(|z|) - 1``."""

    name: ClassVar[str] = "rolling_zscore"
    Settings: ClassVar[type[DetectorSettings]] = RollingZScoreSettings

    def __init__(self, window: str = "2h", min_periods: int = 6, **params: Any) -> None:
        super().__init__(window=window, min_periods=min_periods, **params)

    def _context_length(self) -> pd.Timedelta:
        return self.step_ * (duration_steps(self.params["window"], self.step_, "window") + 1)

    def _fit(self, df: pd.DataFrame) -> None:
        """Nothing to learn beyond the grid step: the statistics are all trailing."""

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        from scipy.special import erf  # lazy: scipy takes ~0.5 s; the registry loads this

        grid = to_grid(df, self.step_)
        window = duration_steps(self.params["window"], self.step_, "window")
        min_periods = min(window, self.params["min_periods"])
        mean = past_rolling(grid.values, window, "mean", min_periods)
        std = past_rolling(grid.values, window, "std", min_periods)
        std = np.fmax(std, 1e-4 * np.abs(mean) + 1e-12)
        z = np.abs(grid.values - mean) / std
        return grid.to_long(erf(z / np.sqrt(2.0)))
