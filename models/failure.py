"""Failure predictors: the risk that an incident of a service starts within the horizon.

Inputs are feature frames from :func:`features.windows.service_features` (``service, ds`` +
numeric features) and labels from :func:`features.windows.failure_labels` (1 / 0, and -1 for
rows during an incident or its far lead-up, which ``fit`` drops). ``predict`` returns
``service, ds, risk`` with ``risk`` a probability in [0, 1], never a 0/1 label; ``score``
evaluates risk alarms event-wise (:mod:`models.events`) and by AUC.

A predictor may choose its own operating point at fit time: ``threshold_`` is the risk at which
it alarms (``None``: use the configured ``detect.risk_threshold``).

Predictors (registry :data:`PREDICTORS`):

- ``lgbm`` (production, :class:`LGBMFailurePredictor`): a small, regularised LightGBM
  classifier for few positives (pooled utilisation features, shallow trees, large leaves, L2,
  monotone in utilisation and time-to-exhaustion), trained on the natural class balance so
  ``risk`` is a probability. Its ``threshold_`` maximises event-wise F1 on out-of-fold risk from
  contiguous time blocks of the training data, with incidents read back from the labels.
  ``contributions`` gives exact per-row TreeSHAP values (LightGBM ``pred_contrib``), ``explain``
  the largest ones, and :func:`top_features` one prediction's as JSON-ready records.
- ``utilisation_rule`` (baseline, :class:`UtilisationRulePredictor`): a fixed monotone map of the
  current worst utilisation (cpu / mem / disk) and error rate; no learning, no own threshold.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import UTC_DTYPE, SchemaError, require_columns
from models.base import Model
from models.boosted_trees import booster_importance
from models.events import episodes_frame, evaluate_alarms, event_f1_sweep

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
        from features.windows import confirmed_incidents, failure_labels

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
        from features.windows import absent_means_zero

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


@PREDICTORS.register("lgbm")
class LGBMFailurePredictor(FailurePredictor):
    """Production predictor: regularised LightGBM on transferable window features, with its own
    event-F1 operating threshold and SHAP explanations.

    Few incidents (a handful per training span, one or two per kind) call for:

    - features that transfer: with ``pool_resources`` the model sees cpu / mem / disk only
      through their pooled ``util_*`` summaries, so a leak it learned from warns of a disk
      filling up too (no absolute, service-specific levels: see :mod:`features.windows`);
    - small trees with large leaves, L2, column and row subsampling, monotone constraints where
      physics fixes the direction (``features.windows.risk_direction``) and no class
      re-weighting, which would only teach the trees to isolate the few positive rows;
    - targets that match how alarms are judged: the first ``event_grace`` of an incident counts
      as detected, so those onset rows are positives too (a bad release shows nothing earlier);
    - per-template log counts (``log_tpl_*``) left out unless ``log_templates``: a dozen more
      features per a handful of incidents overfit; on the simulator (3 seeds x 28 days, rolling
      origin) they lowered pooled event F1 from about 0.67 to 0.59;
    - an operating point from data: ``threshold_folds`` contiguous time blocks give out-of-fold
      risk for the whole training span (each block scored by a model fitted on the others,
      ``purge`` kept out around it), and ``threshold_`` is the risk maximising event-wise F1
      there (the middle of the best thresholds when several tie; ``threshold_f1_`` that F1).
    """

    threshold_f1_: float | None = None

    name: ClassVar[str] = "lgbm"
    pip_extras: ClassVar[tuple[str, ...]] = ("lightgbm",)

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        max_depth: int = 3,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample_bytree: float = 0.7,
        reg_lambda: float = 5.0,
        monotone: bool = True,
        pool_resources: bool = True,
        log_templates: bool = False,
        threshold_folds: int = 4,
        purge: str = "6h",
        event_grace: str = "5min",
        seed: int = 0,
        n_jobs: int = 1,
        **params: Any,
    ) -> None:
        if threshold_folds == 1 or threshold_folds < 0:
            raise ValueError(f"threshold_folds must be 0 (no own threshold) or at least 2, got {threshold_folds}")
        super().__init__(
            n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves, max_depth=max_depth,
            min_child_samples=min_child_samples, subsample=subsample, colsample_bytree=colsample_bytree,
            reg_lambda=reg_lambda, monotone=monotone, pool_resources=pool_resources, log_templates=log_templates,
            threshold_folds=threshold_folds, purge=purge, event_grace=event_grace, seed=seed, n_jobs=n_jobs,
            **params,
        )

    def _select_features(self, X: pd.DataFrame) -> list[str]:
        """Every numeric feature, or with ``pool_resources`` none that names cpu / mem / disk: only
        their pooled ``util_*`` summaries, so a disk filling up looks like a heap filling up.
        Per-template log counts only with ``log_templates`` (see the class)."""
        from features.windows import RESOURCE_METRICS, TEMPLATE_PREFIX

        names = feature_columns(X)
        if self.params["pool_resources"]:
            names = [c for c in names if not c.startswith(RESOURCE_METRICS)]
        if not self.params.get("log_templates", False):  # absent in versions pickled before it existed
            names = [c for c in names if not c.startswith(TEMPLATE_PREFIX)]
        if not names:
            raise SchemaError(f"features: nothing left to learn from after pooling; got {list(X.columns)}")
        return names

    def _training_targets(self, keys: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        """The labels, plus the first ``event_grace`` of each incident as positive.

        An alarm up to ``event_grace`` after an incident starts still counts as its detection;
        for failures with no lead-up beyond a deploy (a bad release) those onset rows are the
        only ones that show the failure, so the model learns them as well as the lead-up.
        """
        grace = pd.Timedelta(self.params["event_grace"])
        if grace <= pd.Timedelta(0):
            return labels
        step = sampling_step(keys)
        events = label_events(keys, labels, step)
        targets = labels.copy()
        ds = keys["ds"].astype(UTC_DTYPE)
        services = keys["service"].to_numpy(dtype=object)
        for event in events.itertuples():  # a handful of incidents: a short loop over events, not rows
            onset = (services == event.service) & ds.between(event.start, event.start + grace).to_numpy()
            targets[onset & (labels == -1)] = 1
        return targets

    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None:
        self.booster_ = self._train(X, y)

    def _train(self, X: pd.DataFrame, y: np.ndarray) -> Any:
        """One booster on labelled rows (0/1)."""
        try:
            import lightgbm as lgb
        except ImportError as exc:  # pragma: no cover - lightgbm is a core dependency
            raise ImportError("the 'lgbm' failure predictor needs lightgbm: pip install lightgbm") from exc
        from features.windows import risk_direction

        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            raise LabelError("training needs both positive (incident soon) and negative rows", _counts(y))
        p = self.params
        booster_params = {
            "objective": "binary",
            "learning_rate": p["learning_rate"],
            "num_leaves": p["num_leaves"],
            "max_depth": p["max_depth"],
            "min_data_in_leaf": p["min_child_samples"],
            "lambda_l2": p["reg_lambda"],
            "bagging_fraction": p["subsample"],
            "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
            "feature_fraction": p["colsample_bytree"],
            "seed": p["seed"],
            "deterministic": True,
            "force_col_wise": True,  # skip the row- vs column-wise timing probe: small, wide data
            "num_threads": p["n_jobs"],
            "verbosity": -1,
        }
        if p["monotone"]:
            booster_params["monotone_constraints"] = [risk_direction(c) for c in X.columns]
            booster_params["monotone_constraints_method"] = "advanced"
        data = lgb.Dataset(X, label=y, feature_name=list(X.columns), free_raw_data=True)
        return lgb.train(booster_params, data, num_boost_round=p["n_estimators"])

    def _operating_threshold(
        self, keys: pd.DataFrame, X: pd.DataFrame, labels: np.ndarray, targets: np.ndarray
    ) -> float | None:
        """The risk maximising event-wise F1 on out-of-fold risk over the training span (see the class)."""
        n_blocks = self.params["threshold_folds"]
        if n_blocks == 0:
            return None
        step = sampling_step(keys)
        ds = keys["ds"].astype(UTC_DTYPE)
        block = time_blocks(ds, n_blocks)
        purge = pd.Timedelta(self.params["purge"])
        oof = np.full(len(X), np.nan)
        for k in range(n_blocks):
            inside = block == k
            lo, hi = ds[inside].min() - purge, ds[inside].max() + purge
            train = ~((ds >= lo) & (ds <= hi)).to_numpy() & (targets != -1)
            if len(np.unique(targets[train])) < 2:
                continue  # no incident outside this block: it cannot be scored honestly
            oof[inside] = self._train(X[train], targets[train]).predict(X[inside])
        scored = ~np.isnan(oof)
        events = label_events(keys, labels, step)
        if not scored.any() or events.empty:
            return None
        risk = keys[scored].assign(**{RISK_COL: oof[scored]})
        horizon = label_horizon(keys, labels, step)
        lo_ds, hi_ds = risk["ds"].min(), risk["ds"].max()
        events = events[(events["start"] >= lo_ds) & (events["start"] <= hi_ds + step)]
        candidates = np.unique(np.quantile(oof[scored], 1.0 - np.geomspace(0.2, 2e-4, 60)))
        f1 = event_f1_by_threshold(risk, events, candidates, horizon=horizon,
                                   grace=pd.Timedelta(self.params["event_grace"]), gap=2 * step)
        self.threshold_f1_ = float(f1.max())
        best = candidates[np.flatnonzero(f1 >= f1.max() - 1e-12)]
        return float(best[len(best) // 2])

    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(X)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Total ``gain`` (or ``split`` count) per feature, largest first."""
        self._require_fitted()
        return booster_importance(self.booster_, self.feature_names_, kind)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP values per row and feature (log-odds), plus the ``bias`` column.

        From LightGBM's ``pred_contrib``: each row's values and bias sum to its raw margin, the
        log-odds of its ``risk``. Indexed like ``X``.
        """
        self._require_fitted()
        features = self._inputs(X)
        contrib = self.booster_.predict(features, pred_contrib=True)
        return pd.DataFrame(contrib, index=X.index, columns=[*self.feature_names_, BIAS_COL])

    def explain(self, X: pd.DataFrame, top: int = 5) -> pd.DataFrame:
        """Per row, the ``top`` features that moved its risk most (SHAP values, log-odds units).

        Long format: ``service, ds, risk, rank, feature, value, contribution``, ``top`` rows per
        input row, ranked by absolute contribution (positive = pushes the risk up).
        """
        self._require_fitted()
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        features = self._inputs(X)
        contrib = self.contributions(X).drop(columns=BIAS_COL).to_numpy()
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
