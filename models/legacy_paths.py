"""Where the classes of models registered by earlier Foresight versions live now.

MLflow keeps a registered model as a cloudpickle, which names each class by its module path
(``models.pyfunc.ForesightPyfunc``, ``models.streaming_ensemble.StreamingEnsembleDetector``, ...).
The layout change of issue 14 moved those modules, so a champion registered before it would no
longer load and the detect flow would fail until a train run registered a new one. :func:`install`
makes the old paths resolve to the new modules (and, for the two modules that became packages,
``models.anomaly`` and ``models.failure``, the old class names to their new modules) before a
registered model is loaded (:func:`flows.resources.open_registry`). New registrations use the new
paths; this table only ever shrinks when support for models registered before 2026-12 is dropped.
"""

from __future__ import annotations

import importlib
import sys

# Old module -> the module that holds its classes now.
MOVED_MODULES: dict[str, str] = {
    "models.pyfunc": "foresight.pyfunc",
    "models.streaming_anomaly": "models.anomaly.streaming",
    "models.knn_anomaly": "models.anomaly.knn",
    "models.ensemble_anomaly": "models.anomaly.ensemble",
    "models.streaming_ensemble": "models.anomaly.streaming_ensemble",
    "models.staggered_block_knn": "models.anomaly.staggered_block_knn",
    "models.robust_z_stream": "models.anomaly.robust_z_stream",
    "models.robust_z": "models.anomaly.robust_z",
    "models.robust_z_detectors": "models.anomaly.robust_z_detectors",
    "models.events": "models.evaluation.events",
    "models.training": "models.evaluation.gate",
}
# Modules that became packages: (package, class) -> the module that defines the class now.
MOVED_NAMES: dict[tuple[str, str], str] = {
    ("models.anomaly", "AnomalyDetector"): "models.anomaly.base",
    ("models.anomaly", "RobustSeasonalDetector"): "models.anomaly.robust_seasonal",
    ("models.anomaly", "RollingZScoreDetector"): "models.anomaly.rolling_zscore",
    ("models.failure", "FailurePredictor"): "models.failure.base",
    ("models.failure", "LGBMFailurePredictor"): "models.failure.lgbm",
    ("models.failure", "UtilisationRulePredictor"): "models.failure.utilisation_rule",
}


def install() -> None:
    """Make every old path above resolve (idempotent; a path still in use is left alone)."""
    for old, new in MOVED_MODULES.items():
        if old not in sys.modules:
            try:
                importlib.import_module(old)
            except ModuleNotFoundError:
                sys.modules[old] = importlib.import_module(new)
    for (package, name), new in MOVED_NAMES.items():
        module = importlib.import_module(package)
        if not hasattr(module, name):
            setattr(module, name, getattr(importlib.import_module(new), name))
