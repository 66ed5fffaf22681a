"""Template-method bases for every Foresight model.

Public ``fit`` / ``predict`` / ``score`` validate their inputs and record state; subclasses
implement only the private ``_fit`` / ``_predict`` steps (and ``score`` where the family's
evaluation differs). ``get_params`` / ``clone`` let a backtest or a champion re-evaluation
rebuild the same configuration on other data.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar, Self


class NotFittedError(RuntimeError):
    """``predict`` or ``score`` was called before ``fit``."""


class Model(ABC):  # noqa: B024 - abstract families below declare the abstract steps
    """Shared surface: constructor keyword arguments are the model's (loggable) parameters."""

    family: ClassVar[str] = "model"
    name: ClassVar[str] = "model"
    # Distributions a fitted model needs when it is served, beyond the ones every Foresight model
    # needs (foresight.mlflow_runs.SERVING_DISTRIBUTIONS): pinned in its logged requirements.
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
