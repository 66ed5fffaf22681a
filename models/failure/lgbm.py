"""``lgbm`` (the candidate, :class:`LGBMFailurePredictor`): a small, regularised LightGBM
classifier for few positives (pooled utilisation features, shallow trees, large leaves, L2,
monotone in utilisation and time-to-exhaustion), trained on the natural class balance so
``risk`` is a probability. Its ``threshold_`` maximises event-wise F1 on out-of-fold risk from
contiguous time blocks of the training data, with incidents read back from the labels.
``contributions`` gives exact per-row TreeSHAP values (LightGBM ``pred_contrib``), ``explain``
the largest ones, and :func:`top_features` one prediction's as JSON-ready records.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.windows import RESOURCE_METRICS, TEMPLATE_PREFIX, risk_direction
from foresight.schemas import UTC_DTYPE, SchemaError
from models.boosted_trees import LIGHTGBM_LOCK, booster_importance
from models.failure.base import (
    BIAS_COL,
    PREDICTORS,
    RISK_COL,
    FailurePredictor,
    LabelError,
    _counts,
    event_f1_by_threshold,
    feature_columns,
    label_events,
    label_horizon,
    sampling_step,
    time_blocks,
)


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
      features per a handful of incidents overfit, and on the simulator they lowered pooled event
      F1 (docs/failure_prediction.md, *Per-template log counts*);
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
            import lightgbm as lgb  # lazy: LightGBM takes ~2 s
        except ImportError as exc:  # pragma: no cover - lightgbm is a core dependency
            raise ImportError("the 'lgbm' failure predictor needs lightgbm: pip install lightgbm") from exc

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
        with LIGHTGBM_LOCK:
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
            booster = self._train(X[train], targets[train])
            with LIGHTGBM_LOCK:
                oof[inside] = booster.predict(X[inside])
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
        with LIGHTGBM_LOCK:
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
        with LIGHTGBM_LOCK:
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
