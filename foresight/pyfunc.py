"""MLflow pyfunc wrapper: one ``PythonModel`` that serves any fitted Foresight model.

``ForesightPyfunc.predict`` dispatches on the wrapped model's ``family``:

- ``forecaster``: ``model_input`` has an int column ``h`` and an optional ``level`` (the first row
  is used); returns ``unique_id, ds, yhat, yhat_lower, yhat_upper``.
- ``anomaly``: ``model_input`` is a telemetry frame ``unique_id, ds, y``; returns
  ``unique_id, ds, y, score``.
- ``failure``: ``model_input`` is a feature frame; returns ``service, ds, risk`` where ``risk`` is
  a probability in [0, 1], never a 0/1 label.

Timestamps at the pyfunc boundary: MLflow 3.17's schema type ``datetime`` is timezone-naive.
``mlflow.models.utils._enforce_schema`` refuses tz-aware input columns ("Please ensure that the
input data of datetime column only contains timezone-naive datetime objects") and hands the
model ``datetime64[ns]``. So inputs cross the boundary as naive UTC (:func:`to_pyfunc_frame`
makes them; it is applied to the logged input example too), and the wrapper turns every naive
datetime column back into ``datetime64[us, UTC]`` (:func:`from_pyfunc_frame`) before calling the
model. Outputs are not enforced by MLflow, so they keep the model's tz-aware UTC ``ds``: callers
get exactly Foresight's table shape back.

This module imports MLflow at import time (it subclasses ``PythonModel``); import it only where
MLflow is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from foresight.schemas import UTC_DTYPE

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from foresight.model_registry import Model

FORECAST_INPUT_COLUMNS: tuple[str, ...] = ("h", "level")
DEFAULT_LEVEL = 80


class PyfuncInputError(ValueError):
    """``model_input`` does not have the shape the wrapped model's family needs."""


class UnsupportedFamilyError(ValueError):
    """The wrapped model's family has no pyfunc dispatch; ``.choices`` lists the supported ones."""

    def __init__(self, family: str, choices: list[str]) -> None:
        self.family, self.choices = family, choices
        super().__init__(f"no pyfunc dispatch for model family {family!r}; supported: {', '.join(choices)}")


def to_pyfunc_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with tz-aware datetime columns as naive UTC, the only datetimes MLflow accepts."""
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return out


def from_pyfunc_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every datetime column as ``datetime64[us, UTC]``; naive values are read as UTC."""
    out = df.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").astype(UTC_DTYPE)
        elif pd.api.types.is_datetime64_dtype(dtype):
            out[col] = out[col].dt.tz_localize("UTC").astype(UTC_DTYPE)
    return out


def _first_int(model_input: pd.DataFrame, column: str, default: int | None) -> int:
    """The first row's value of ``column`` as an int, or ``default`` when absent or missing."""
    if column not in model_input.columns or pd.isna(model_input[column].iloc[0]):
        if default is None:
            raise PyfuncInputError(
                f"forecaster input needs column {column!r}; got columns {list(model_input.columns)}"
            )
        return default
    value = model_input[column].iloc[0]
    try:
        as_int = int(value)
        exact = float(value) == as_int
    except (TypeError, ValueError):
        exact = False
    if not exact:
        raise PyfuncInputError(f"forecaster input column {column!r} must be an integer, got {value!r}")
    return as_int


def _predict_forecaster(model: Any, model_input: pd.DataFrame) -> pd.DataFrame:
    if model_input.empty:
        raise PyfuncInputError("forecaster input is empty; send one row with columns h and optional level")
    h = _first_int(model_input, "h", None)
    level = _first_int(model_input, "level", DEFAULT_LEVEL)
    return model.predict(h, level)


def _predict_anomaly(model: Any, model_input: pd.DataFrame) -> pd.DataFrame:
    return model.predict(from_pyfunc_frame(model_input))


def _predict_failure(model: Any, model_input: pd.DataFrame) -> pd.DataFrame:
    out = model.predict(from_pyfunc_frame(model_input))
    if "risk" not in out.columns:
        raise PyfuncInputError(f"failure predictor returned no 'risk' column; got {list(out.columns)}")
    risk = out["risk"]
    # Labels (bool / int) would silently pass as "risk" downstream; the contract is probabilities.
    if not pd.api.types.is_float_dtype(risk):
        raise TypeError(f"failure predictor must return float risk probabilities, got dtype {risk.dtype}")
    outside = ~risk.between(0.0, 1.0)
    if outside.any():
        raise ValueError(f"failure predictor returned {int(outside.sum())} risk value(s) outside [0, 1]")
    return out


_DISPATCH: dict[str, Callable[[Any, pd.DataFrame], pd.DataFrame]] = {
    "forecaster": _predict_forecaster,
    "anomaly": _predict_anomaly,
    "failure": _predict_failure,
}


class ForesightPyfunc(PythonModel):
    """Serves a fitted Foresight model through MLflow's pyfunc interface, dispatching by family."""

    def __init__(self, model: Model) -> None:
        family = getattr(model, "family", None)
        if family not in _DISPATCH:
            raise UnsupportedFamilyError(str(family), sorted(_DISPATCH))
        if not getattr(model, "is_fitted", False):
            raise ValueError(f"{type(model).__name__} is not fitted; fit it before wrapping it for MLflow")
        self._model = model

    @property
    def family(self) -> str:
        return self._model.family

    def unwrap(self) -> Model:
        """The wrapped Foresight model, with its full Python API."""
        return self._model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Run the wrapped model on ``model_input`` (see the module docstring for each family)."""
        if not isinstance(model_input, pd.DataFrame):
            kind = type(model_input).__name__
            raise PyfuncInputError(f"model_input must be a pandas DataFrame, got {kind}")
        return _DISPATCH[self._model.family](self._model, model_input)


def forecast_input(h: int, level: int | None = None) -> pd.DataFrame:
    """The one-row pyfunc input asking a forecaster for ``h`` steps (at ``level`` % if given)."""
    data: dict[str, list[int]] = {"h": [int(h)]}
    if level is not None:
        data["level"] = [int(level)]
    return pd.DataFrame(data).astype("int64")


def pyfunc_signature(
    wrapper: ForesightPyfunc, input_example: pd.DataFrame
) -> tuple[ModelSignature, pd.DataFrame]:
    """The signature inferred from ``input_example`` and the wrapper's output, plus the example.

    The example is returned in its MLflow-safe form (naive UTC datetimes). For forecasters the
    ``level`` column is marked optional so callers may send ``h`` alone.
    """
    from mlflow.models import infer_signature  # lazy: MLflow takes ~2 s
    from mlflow.types.schema import ColSpec, Schema, TensorSpec  # lazy: MLflow takes ~2 s

    example = to_pyfunc_frame(input_example)
    output = wrapper.predict(None, from_pyfunc_frame(example))
    with warnings.catch_warnings():
        if wrapper.family == "forecaster":
            # MLflow's "integer columns cannot hold missing values" hint does not apply: h is
            # required and level is declared optional below.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example, output)
    if wrapper.family == "forecaster" and signature.inputs is not None:
        specs: list[ColSpec | TensorSpec] = [
            ColSpec(spec.type, spec.name, required=spec.name != "level") for spec in signature.inputs.inputs
        ]
        if "level" not in example.columns:
            specs.append(ColSpec("long", "level", required=False))
        signature.inputs = Schema(specs)
    return signature, example
