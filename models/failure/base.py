"""Failure predictors: the risk that an incident of a service starts within the horizon.

Inputs are feature frames from :func:`features.windows.service_features` (``service, ds`` +
numeric features) and labels from :func:`features.failure_labels.failure_labels` (1 / 0, and -1 for
rows during an incident or its far lead-up, which ``fit`` drops). ``predict`` returns
``service, ds, risk`` with ``risk`` a probability in [0, 1], never a 0/1 label; ``score``
evaluates risk alarms event-wise (:mod:`models.evaluation.events`) and by AUC.

A predictor may choose its own operating point at fit time: ``threshold_`` is the risk at which
it alarms (``None``: use the configured ``detect.risk_threshold``).

Predictors register by name in :data:`PREDICTORS` (which imports every built-in one on first
use): ``lgbm`` (the candidate, :mod:`models.failure.lgbm`) and ``utilisation_rule`` (the gate's
baseline, :mod:`models.failure.utilisation_rule`). :func:`top_features` turns one prediction's
explanation into JSON-ready records.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from features.failure_labels import confirmed_incidents, failure_labels
from features.windows import absent_means_zero
from foresight.plugins import Registry
from foresight.schemas import UTC_DTYPE, SchemaError, require_columns
from models.base import Model
from models.evaluation.events import episodes_frame, evaluate_alarms, event_f1_sweep

KEY_COLUMNS: tuple[str, ...] = ("service", "ds")
RISK_COL = "risk"
BIAS_COL = "bias"  # the SHAP base value (expected log-odds) next to the per-feature contributions


class LabelError(ValueError):
    """Training labels cannot train a classifier; ``.counts`` holds the label counts seen."""

    def __init__(self, message: str, counts: dict[int, int]) -> None:
        self.counts = counts
        super().__init__(f"{message}; label counts: {counts}")


class FailurePredictor(Model):
    """Risk of an incident soon per ``(service, ds)``; subclasses implement ``_fit`` / ``_predict_risk``."""

    family: ClassVar[str] = "failure"
    # The risk at which this model alarms, chosen at fit time; None: the configured threshold.
    threshold_: float | None = None

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> Self:
        """Fit on feature rows with labels 0/1; rows labelled -1 (ongoing incident) are dropped
        from training (they still show the calibration where incidents were)."""
        require_columns(X, list(KEY_COLUMNS), "features")
        labels = np.asarray(y)
        if len(labels) != len(X):
            raise ValueError(f"features and labels differ in length: {len(X)} vs {len(labels)}")
        bad = ~np.isin(labels, (-1, 0, 1))
        if bad.any():
            raise LabelError("labels must be 0, 1 or -1 (excluded)", _counts(labels))
        labels = labels.astype(np.int64)
        keys = X[list(KEY_COLUMNS)]
        targets = self._training_targets(keys, labels)
        keep = targets != -1
        self.feature_names_: list[str] = self._select_features(X)
        features = X[self.feature_names_].astype("float64")
        self._fit(features[keep], targets[keep])
        self.threshold_ = self._operating_threshold(keys, features, labels, targets)
        self._fitted = True
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """``service, ds, risk`` (float in [0, 1]) in ``X``'s row order."""
        self._require_fitted()
        require_columns(X, list(KEY_COLUMNS), "features")
        features = self._inputs(X)
        risk = np.clip(np.asarray(self._predict_risk(features), dtype="float64"), 0.0, 1.0)
        return pd.DataFrame(
            {"service": X["service"].astype("string").array, "ds": X["ds"].array, RISK_COL: risk}, index=X.index
        )

    def score(
        self,
        X: pd.DataFrame,
        incidents: pd.DataFrame,
        threshold: float | None = None,
        horizon: str | pd.Timedelta = "60min",
        *,
        grace: str | pd.Timedelta = "15min",
        gap: str | pd.Timedelta = "30min",
    ) -> dict[str, Any]:
        """Event-wise recall / precision / lead of ``risk >= threshold`` alarms, plus row-wise AUC.

        ``threshold`` defaults to the model's own ``threshold_`` (0.5 when it has none). Only
        incidents starting within ``X``'s time span count. ``auc`` is NaN when the labelled rows
        hold a single class.
        """
        if threshold is None:
            threshold = 0.5 if self.threshold_ is None else self.threshold_
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be within (0, 1), got {threshold}")
        risk = self.predict(X)
        episodes = episodes_frame(risk.assign(alarm=risk[RISK_COL] >= threshold), "alarm", gap)
        lo, hi = X["ds"].min(), X["ds"].max()
        incidents = confirmed_incidents(incidents)
        truth = incidents[(incidents["start"] >= lo) & (incidents["start"] <= hi)]
        metrics = evaluate_alarms(episodes, truth, horizon, grace).to_dict()
        labels = failure_labels(X, incidents, horizon).to_numpy()
        auc = roc_auc(labels[labels >= 0], risk[RISK_COL].to_numpy()[labels >= 0])
        return {**metrics, "auc": auc, "threshold": threshold, "incidents": len(truth), "episodes": len(episodes)}

    def _inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X``'s columns the model learned from, as float: a missing feature is NaN (unknown),
        except a log-template count, which is 0 (that template logged nothing in the window)."""
        features = X.reindex(columns=self.feature_names_).astype("float64")
        zero = [c for c in self.feature_names_ if c not in X.columns and absent_means_zero(c)]
        if zero:
            features[zero] = 0.0
        return features

    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray: ...

    def _select_features(self, X: pd.DataFrame) -> list[str]:
        """The columns this model learns from (default: every numeric feature)."""
        return feature_columns(X)

    def _training_targets(self, keys: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        """The 0/1/-1 targets ``_fit`` learns (rows at -1 dropped); default: the labels as given."""
        return labels

    def _operating_threshold(
        self, keys: pd.DataFrame, X: pd.DataFrame, labels: np.ndarray, targets: np.ndarray
    ) -> float | None:
        """The risk threshold this model should alarm at, from its training data (default: none of its own)."""
        return None


# The built-in predictors' modules import this one; the registry imports them on its first read.
PREDICTORS: Registry[type[FailurePredictor]] = Registry(
    "failure predictor", builtins=("models.failure.lgbm", "models.failure.utilisation_rule")
)


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


def sampling_step(keys: pd.DataFrame) -> pd.Timedelta:
    """The most common step between a service's consecutive rows (5 minutes if there is none)."""
    steps = keys.sort_values(list(KEY_COLUMNS))[["service", "ds"]].groupby("service")["ds"].diff().dropna()
    return pd.Timedelta(steps.mode().iloc[0]) if len(steps) else pd.Timedelta(minutes=5)


def _label_runs(keys: pd.DataFrame, labels: np.ndarray, step: pd.Timedelta) -> pd.DataFrame:
    """Maximal runs of one label per service without a time gap: ``service, label, first, last``."""
    frame = keys[list(KEY_COLUMNS)].assign(label=np.asarray(labels)).sort_values(list(KEY_COLUMNS))
    service = frame["service"].to_numpy(dtype=object)
    label = frame["label"].to_numpy()
    ds = frame["ds"].astype(UTC_DTYPE).reset_index(drop=True)
    gap = ds.diff().gt(step * 1.5).to_numpy()
    new_run = np.r_[True, (service[1:] != service[:-1]) | (label[1:] != label[:-1]) | gap[1:]]
    runs = pd.DataFrame({"service": service, "label": label, "ds": ds, "run": np.cumsum(new_run)})
    return runs.groupby("run").agg(
        service=("service", "first"), label=("label", "first"), first=("ds", "min"), last=("ds", "max")
    ).reset_index(drop=True)


def label_events(keys: pd.DataFrame, labels: np.ndarray, step: pd.Timedelta) -> pd.DataFrame:
    """Incidents read back from failure labels: ``service, start, end, precursor_start``.

    A run of positive rows ends one step before its incident starts; the excluded (-1) run right
    after it is the incident itself (its end), the excluded run right before it is the known
    precursor (NaT when there is none). Lets a model judge itself event-wise on training data.
    """
    runs = _label_runs(keys, labels, step)
    same_before = runs["service"].shift(1).eq(runs["service"])
    same_after = runs["service"].shift(-1).eq(runs["service"])
    start = runs["last"] + step
    end = runs["last"].shift(-1).where(same_after & runs["label"].shift(-1).eq(-1)) + step
    precursor = runs["first"].shift(1).where(same_before & runs["label"].shift(1).eq(-1))
    events = pd.DataFrame({"service": runs["service"], "start": start, "end": end.fillna(start + step),
                           "precursor_start": precursor})[runs["label"].eq(1)]
    return events.reset_index(drop=True).astype({"service": "string"})


def label_horizon(keys: pd.DataFrame, labels: np.ndarray, step: pd.Timedelta) -> pd.Timedelta:
    """The labels' horizon, read back as the longest run of positive rows."""
    positive = _label_runs(keys, labels, step).query("label == 1")
    return (positive["last"] - positive["first"]).max() + step if len(positive) else step


def event_f1_by_threshold(
    risk: pd.DataFrame, events: pd.DataFrame, thresholds: np.ndarray, *, horizon: pd.Timedelta,
    grace: pd.Timedelta, gap: pd.Timedelta,
) -> np.ndarray:
    """Event-wise F1 of ``risk >= t`` alarms (episodes split by ``gap``) for every ``t``."""
    return event_f1_sweep(risk, events, thresholds, horizon, grace, gap, score_col=RISK_COL)


def time_blocks(ds: pd.Series, n_blocks: int) -> np.ndarray:
    """The contiguous time block (0 .. n_blocks - 1) each row falls into, by equal spans of time."""
    t = (ds - ds.min()) / (ds.max() - ds.min() + pd.Timedelta(microseconds=1))
    return np.minimum((t.to_numpy(dtype="float64") * n_blocks).astype(int), n_blocks - 1)


def top_features(predictor: Any, features_row: pd.DataFrame | pd.Series, k: int = 5) -> list[dict[str, Any]]:
    """What pushed one prediction's risk: ``[{feature, value, contribution}, ...]``, largest |contribution| first.

    ``features_row`` is one feature row (a one-row frame or a Series with ``service`` and ``ds``).
    Contributions are exact SHAP values in log-odds (positive raises the risk); plain floats,
    with ``None`` for a missing value, so the list travels with an incident as JSON. A predictor
    that cannot explain itself (the utilisation rule) gives ``[]``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    row = features_row.to_frame().T if isinstance(features_row, pd.Series) else features_row
    if len(row) != 1:
        raise ValueError(f"top_features explains one feature row, got {len(row)}")
    if predictor is None or not hasattr(predictor, "explain"):
        return []
    explained = predictor.explain(row, top=k)
    return [
        {"feature": str(r.feature), "value": None if pd.isna(r.value) else float(r.value),
         "contribution": float(r.contribution)}
        for r in explained.itertuples(index=False)
    ]
