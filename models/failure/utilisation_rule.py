"""``utilisation_rule`` (the gate's baseline, :class:`UtilisationRulePredictor`): a fixed monotone map of the
current worst utilisation (cpu / mem / disk) and error rate; no learning, no own threshold.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from foresight.schemas import SchemaError
from models.failure.base import PREDICTORS, FailurePredictor


@PREDICTORS.register("utilisation_rule")
class UtilisationRulePredictor(FailurePredictor):
    """Baseline: risk = the highest of fixed ramps of current cpu / mem / disk use and error rate.

    Each ramp is 0 below its ``low`` and 1 above its ``high`` (linear between): a utilisation
    alarm an SRE would write by hand. Nothing is learned; ``fit`` only records feature names.
    """

    name: ClassVar[str] = "utilisation_rule"
    DEFAULT_RAMPS: ClassVar[dict[str, tuple[float, float]]] = {
        "cpu_pct": (70.0, 95.0),
        "mem_pct": (75.0, 95.0),
        "disk_pct": (75.0, 95.0),
        "error_rate": (0.01, 0.10),
    }

    def __init__(self, ramps: dict[str, tuple[float, float]] | None = None, **params: Any) -> None:
        ramps = {k: (float(v[0]), float(v[1])) for k, v in (ramps or self.DEFAULT_RAMPS).items()}
        for metric, (low, high) in ramps.items():
            if not high > low:
                raise ValueError(f"ramp for {metric!r}: high ({high}) must exceed low ({low})")
        super().__init__(ramps=ramps, **params)

    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None:
        present = [m for m in self.params["ramps"] if m in X.columns]
        if not present:
            raise SchemaError(
                f"utilisation_rule needs at least one of {sorted(self.params['ramps'])} as a feature column"
            )

    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        risk = np.zeros(len(X))
        for metric, (low, high) in self.params["ramps"].items():
            if metric in X.columns:
                ramp = np.clip((X[metric].to_numpy(dtype="float64") - low) / (high - low), 0.0, 1.0)
                risk = np.fmax(risk, ramp)  # fmax: a missing value does not mask the others
        return risk
