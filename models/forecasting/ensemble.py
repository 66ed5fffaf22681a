"""The mean of several fast forecasters' point forecasts: a combination forecast.

Why: on short, noisy series a backtest of a few origins cannot tell a smoothed level from a
damped trend reliably, and picking the wrong one costs more than averaging both. Averaging
forecasts of different models is a long-standing robust choice (the M competitions'
combination benchmarks); the champion selector offers it as one more candidate, so series where
a single model clearly wins still get that model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL
from models.forecasting.base import FORECASTERS, Forecaster

DEFAULT_MEMBERS: tuple[str, ...] = ("ses", "damped_trend", "mstl")


@FORECASTERS.register("ensemble")
class MeanEnsemble(Forecaster):
    """Equal-weight mean of member forecasters (registered names) that forecast panels as arrays."""

    name = "ensemble"

    def __init__(self, members: Sequence[str] = DEFAULT_MEMBERS, season_length: int | None = None) -> None:
        members = tuple(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {members}")
        super().__init__(members=members, season_length=season_length)

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        return cls(season_length=season_length)

    def serving_distributions(self) -> tuple[str, ...]:
        return tuple(sorted({d for member in self._members() for d in member.serving_distributions()}))

    def _members(self) -> list[Forecaster]:
        season = self.params["season_length"]
        built = []
        for name in self.params["members"]:
            cls: Any = FORECASTERS.get(name)
            built.append(cls(season_length=season) if season is not None else cls())
        return built

    def forecast_values(self, values: np.ndarray, h: int, season: int) -> np.ndarray:
        """Mean of the members' point forecasts (rows x h) for right-aligned, NaN-padded histories."""
        forecasts = [m.forecast_values(values, h, season) for m in self._members()]  # type: ignore[attr-defined]
        return np.mean(forecasts, axis=0)

    def _fit(self, df: pd.DataFrame) -> None:
        self.fitted_ = [m.fit(df, freq=self.freq_) for m in self._members()]

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        parts = [m.predict(h, level) for m in self.fitted_]
        out = parts[0][[ID_COL, TIME_COL]].copy()
        for col in ("yhat", "yhat_lower", "yhat_upper"):
            out[col] = np.mean([p[col].to_numpy() for p in parts], axis=0)
        return out

