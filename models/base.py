"""Template-method bases for every Foresight model.

Public ``fit`` / ``predict`` / ``score`` validate their inputs and record state; subclasses
implement only the private ``_fit`` / ``_predict`` steps (and ``score`` where the family's
evaluation differs). ``get_params`` / ``clone`` let a backtest or a champion re-evaluation
rebuild the same configuration on other data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import validate_telemetry


class NotFittedError(RuntimeError):
    """``predict`` or ``score`` was called before ``fit``."""


class Model(ABC):  # noqa: B024 - abstract families below declare the abstract steps
    """Shared surface: constructor keyword arguments are the model's (loggable) parameters."""

    family: ClassVar[str] = "model"
    name: ClassVar[str] = "model"
    # Distributions a fitted model needs when it is served, beyond the ones every Foresight model
    # needs (foresight.model_registry.SERVING_DISTRIBUTIONS): pinned in its logged requirements.
    pip_extras: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params
        self._fitted = False

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def serving_distributions(self) -> tuple[str, ...]:
        """:attr:`pip_extras`; a model made of other models adds theirs."""
        return type(self).pip_extras

    def clone(self) -> Self:
        """An unfitted model with the same configuration."""
        return type(self)(**self.get_params())

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class Forecaster(Model):
    """Forecasts every series of a long frame ``unique_id, ds, y`` h steps ahead with intervals.

    ``predict`` returns ``unique_id, ds, yhat, yhat_lower, yhat_upper`` (the central
    ``level`` % interval), h rows per series, in order.
    """

    family = "forecaster"
    # A global model learns across all series at once, so it cannot be fanned out per series.
    is_global: ClassVar[bool] = False

    def fit(self, df: pd.DataFrame, freq: str | None = None) -> Self:
        df = validate_telemetry(df)
        self.freq_ = freq or infer_freq(df)
        self._fit(df)
        self.scales_ = self._mase_scales(df)
        self._fitted = True
        return self

    def score(self, actuals: pd.DataFrame, level: int = 80) -> dict[str, float]:
        """MASE, sMAPE and interval coverage of the forecast against actuals that followed the
        training data (``unique_id, ds, y``); MASE is scaled by each series' in-sample
        seasonal-naive error (daily season), as in the rolling-origin backtest."""
        from models.forecasting.metrics import coverage, smape

        self._require_fitted()
        actuals = validate_telemetry(actuals)
        h = int(actuals.groupby("unique_id").size().max())
        scored = self.predict(h, level).merge(actuals, on=["unique_id", "ds"], how="inner")
        if scored.empty:
            raise ValueError("the actuals do not overlap the forecast horizon after the training data")
        errors = (scored["y"] - scored["yhat"]).abs().groupby(scored["unique_id"]).mean()
        mase = (errors / self.scales_.reindex(errors.index)).replace([np.inf, -np.inf], np.nan)
        return {
            "mase": float(mase.mean()),
            "smape": smape(scored["y"], scored["yhat"]),
            "coverage": coverage(scored["y"], scored["yhat_lower"], scored["yhat_upper"]),
            "n_series": float(errors.size),
        }

    def _mase_scales(self, df: pd.DataFrame) -> pd.Series:
        from models.forecasting.metrics import seasonal_scale

        season = max(1, int(pd.Timedelta("1D") / pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq_))))
        return df.groupby("unique_id")["y"].apply(lambda y: seasonal_scale(y.to_numpy(), season))

    def predict(self, h: int, level: int = 80) -> pd.DataFrame:
        self._require_fitted()
        if h < 1:
            raise ValueError(f"horizon must be at least 1 step, got {h}")
        if not 0 < level < 100:
            raise ValueError(f"interval level must be within (0, 100), got {level}")
        return self._predict(h, level)

    @abstractmethod
    def _fit(self, df: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, h: int, level: int) -> pd.DataFrame: ...


def infer_freq(df: pd.DataFrame) -> str:
    """The most common step between consecutive samples, as a pandas frequency string."""
    steps = df.groupby("unique_id", sort=False)["ds"].diff().dropna()
    if steps.empty:
        raise ValueError("cannot infer a frequency: every series has a single sample; pass freq=")
    step = steps.mode().iloc[0]
    return pd.tseries.frequencies.to_offset(step).freqstr


FORECASTERS: Registry[type[Forecaster]] = Registry("forecaster")
