"""Failure predictors: the risk that an incident of a service starts within the horizon.

Inputs are feature frames from :func:`features.windows.service_features` (``service, ds`` +
numeric features) and labels from :func:`features.windows.failure_labels` (1 / 0, and -1 for
rows during an incident, which ``fit`` drops). ``predict`` returns ``service, ds, risk`` with
``risk`` a probability in [0, 1], never a 0/1 label; ``score`` evaluates risk alarms event-wise
(:mod:`models.events`) and by AUC.

Predictors (registry :data:`PREDICTORS`):

- ``lgbm`` (production, :class:`LGBMFailurePredictor`): a LightGBM binary classifier with the
  positive class re-weighted to balance the classes, so ``risk`` is the probability under equal
  class priors: 0.5 means "as likely a precursor as not", which is what the default risk
  threshold (0.5) is set for. ``explain`` gives per-row SHAP contributions.
- ``utilisation_rule`` (baseline, :class:`UtilisationRulePredictor`): a fixed monotone map of the
  current worst utilisation (cpu / mem / disk) and error rate; no learning.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import SchemaError, require_columns
from models.base import Model
from models.events import episodes_frame, evaluate_alarms

KEY_COLUMNS: tuple[str, ...] = ("service", "ds")
RISK_COL = "risk"


class LabelError(ValueError):
    """Training labels cannot train a classifier; ``.counts`` holds the label counts seen."""

    def __init__(self, message: str, counts: dict[int, int]) -> None:
        self.counts = counts
        super().__init__(f"{message}; label counts: {counts}")


class FailurePredictor(Model):
    """Risk of an incident soon per ``(service, ds)``; subclasses implement ``_fit`` / ``_predict_risk``."""

    family: ClassVar[str] = "failure"

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> Self:
        """Fit on feature rows with labels 0/1; rows labelled -1 (ongoing incident) are dropped."""
        require_columns(X, list(KEY_COLUMNS), "features")
        labels = np.asarray(y)
        if len(labels) != len(X):
            raise ValueError(f"features and labels differ in length: {len(X)} vs {len(labels)}")
        keep = labels != -1
        labels = labels[keep].astype(np.int64)
        bad = ~np.isin(labels, (0, 1))
        if bad.any():
            raise LabelError("labels must be 0, 1 or -1 (excluded)", _counts(labels))
        self.feature_names_: list[str] = feature_columns(X)
        self._fit(X.loc[keep, self.feature_names_].astype("float64"), labels)
        self._fitted = True
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """``service, ds, risk`` (float in [0, 1]) in ``X``'s row order."""
        self._require_fitted()
        require_columns(X, list(KEY_COLUMNS), "features")
        features = X.reindex(columns=self.feature_names_).astype("float64")  # a missing feature is NaN
        risk = np.clip(np.asarray(self._predict_risk(features), dtype="float64"), 0.0, 1.0)
        return pd.DataFrame(
            {"service": X["service"].astype("string").array, "ds": X["ds"].array, RISK_COL: risk}, index=X.index
        )

    def score(
        self,
        X: pd.DataFrame,
        incidents: pd.DataFrame,
        threshold: float = 0.5,
        horizon: str | pd.Timedelta = "60min",
        *,
        grace: str | pd.Timedelta = "15min",
        gap: str | pd.Timedelta = "30min",
    ) -> dict[str, Any]:
        """Event-wise recall / precision / lead of ``risk >= threshold`` alarms, plus row-wise AUC.

        Only incidents starting within ``X``'s time span count. ``auc`` is NaN when the
        labelled rows hold a single class.
        """
        from features.windows import failure_labels

        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be within (0, 1), got {threshold}")
        risk = self.predict(X)
        episodes = episodes_frame(risk.assign(alarm=risk[RISK_COL] >= threshold), "alarm", gap)
        lo, hi = X["ds"].min(), X["ds"].max()
        truth = incidents[(incidents["start"] >= lo) & (incidents["start"] <= hi)]
        metrics = evaluate_alarms(episodes, truth, horizon, grace).to_dict()
        labels = failure_labels(X, incidents, horizon).to_numpy()
        auc = roc_auc(labels[labels >= 0], risk[RISK_COL].to_numpy()[labels >= 0])
        return {**metrics, "auc": auc, "threshold": threshold, "incidents": len(truth), "episodes": len(episodes)}

    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray: ...


PREDICTORS: Registry[type[FailurePredictor]] = Registry("failure predictor")


def feature_columns(X: pd.DataFrame) -> list[str]:
    """The numeric feature columns of a feature frame (everything but the keys)."""
    names = [c for c in X.columns if c not in KEY_COLUMNS and pd.api.types.is_numeric_dtype(X[c])]
    if not names:
        raise SchemaError(f"features: no numeric feature columns besides {list(KEY_COLUMNS)}; got {list(X.columns)}")
    return names


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties averaged); NaN for one class."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _counts(labels: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


@PREDICTORS.register("lgbm")
class LGBMFailurePredictor(FailurePredictor):
    """Production predictor: class-balanced LightGBM on window features, with SHAP explanations."""

    name: ClassVar[str] = "lgbm"

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        seed: int = 0,
        n_jobs: int = 2,
        **params: Any,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
            min_child_samples=min_child_samples, subsample=subsample, colsample_bytree=colsample_bytree,
            seed=seed, n_jobs=n_jobs, **params,
        )

    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None:
        try:
            import lightgbm as lgb
        except ImportError as exc:  # pragma: no cover - lightgbm is a core dependency
            raise ImportError("the 'lgbm' failure predictor needs lightgbm: pip install lightgbm") from exc
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        if n_pos == 0 or n_neg == 0:
            raise LabelError("training needs both positive (incident soon) and negative rows", _counts(y))
        p = self.params
        booster_params = {
            "objective": "binary",
            "learning_rate": p["learning_rate"],
            "num_leaves": p["num_leaves"],
            "min_data_in_leaf": p["min_child_samples"],
            "bagging_fraction": p["subsample"],
            "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
            "feature_fraction": p["colsample_bytree"],
            "scale_pos_weight": n_neg / n_pos,  # balance the rare "incident soon" class
            "seed": p["seed"],
            "deterministic": True,
            "force_col_wise": True,  # skip the row- vs column-wise timing probe: small, wide data
            "num_threads": p["n_jobs"],
            "verbosity": -1,
        }
        data = lgb.Dataset(X, label=y, feature_name=list(X.columns), free_raw_data=True)
        self.booster_ = lgb.train(booster_params, data, num_boost_round=p["n_estimators"])

    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(X)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Total ``gain`` (or ``split`` count) per feature, largest first."""
        self._require_fitted()
        if kind not in ("gain", "split"):
            raise ValueError(f"importance kind must be 'gain' or 'split', got {kind!r}")
        values = self.booster_.feature_importance(importance_type=kind)
        return pd.Series(values, index=self.feature_names_, name=kind).sort_values(ascending=False)

    def explain(self, X: pd.DataFrame, top: int = 5) -> pd.DataFrame:
        """Per row, the ``top`` features that moved its risk most (SHAP values, log-odds units).

        Long format: ``service, ds, risk, rank, feature, value, contribution``, ``top`` rows per
        input row, ranked by absolute contribution (positive = pushes the risk up).
        """
        self._require_fitted()
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        features = X.reindex(columns=self.feature_names_).astype("float64")
        contrib = self.booster_.predict(features, pred_contrib=True)[:, :-1]  # last column: bias
        k = min(top, contrib.shape[1])
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(len(X)), k)
        cols = order.ravel()
        risk = self._predict_risk(features)
        return pd.DataFrame(
            {
                "service": X["service"].astype("string").array.take(rows),
                "ds": X["ds"].array.take(rows),
                RISK_COL: risk[rows],
                "rank": np.tile(np.arange(1, k + 1), len(X)),
                "feature": np.asarray(self.feature_names_, dtype=object)[cols],
                "value": features.to_numpy()[rows, cols],
                "contribution": contrib[rows, cols],
            }
        )


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
        ramps = {k: tuple(v) for k, v in (ramps or self.DEFAULT_RAMPS).items()}
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
