"""Anomaly detectors: score every telemetry sample in [0, 1] by how unusual it is, causally.

Template method (after Merlion): the public :meth:`AnomalyDetector.fit` / :meth:`predict` /
:meth:`score` validate the frame, keep causal context and evaluate event-wise; detectors
implement only ``_fit`` and ``_raw_scores`` over a regular time grid.

Causality: a score at ``t`` depends on samples at or before ``t`` only, so a live detect run and
a backtest see the same numbers. ``fit`` keeps the tail of each training series (the detector's
context length) and ``predict`` prepends it to a series whose frame starts later, so scoring the
last few hours gives the same scores as scoring the whole history.

Detectors register by name in :data:`DETECTORS` (which imports every built-in one on first
use): ``robust_seasonal`` (:mod:`models.anomaly.robust_seasonal`), ``rolling_zscore`` (the
gate's baseline, :mod:`models.anomaly.rolling_zscore`), ``streaming``, ``knn``,
``streaming_knn``, ``streaming_ensemble`` (the default) and the ``robust_z`` baselines.

Every detector computes on a regular grid (:mod:`models.anomaly.grid`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import ID_COL, TIME_COL, require_columns, validate_telemetry
from models.anomaly.grid import infer_step, prepend_context, series_tails
from models.base import Model
from models.evaluation.events import episodes_frame, evaluate_alarms

SCORE_COL = "score"


class AnomalyDetector(Model):
    """Scores ``unique_id, ds, y`` samples in [0, 1]; subclasses implement ``_fit`` / ``_raw_scores``."""

    family: ClassVar[str] = "anomaly"
    # Constructor parameters for when the scores feed the incident builder (the train and detect
    # flows' candidate): e.g. leave repeats to its `for:` and hysteresis. Benchmarks use the defaults.
    incident_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def for_incidents(cls, **overrides: Any) -> Self:
        """A fresh instance as it feeds the incident builder: ``incident_params``, then ``overrides``."""
        return cls(**{**cls.incident_params, **overrides})

    def fit(self, df: pd.DataFrame) -> Self:
        """Learn per-series normal behaviour from ``df`` (clean telemetry) and keep causal context."""
        df = validate_telemetry(df)
        self.step_: pd.Timedelta = infer_step(df)
        self._fit(df)
        self.context_: pd.DataFrame = series_tails(df, self._context_length())
        self._fitted = True
        return self

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """``unique_id, ds, y, score``: one row per input row, sorted by ``(unique_id, ds)``."""
        self._require_fitted()
        df = validate_telemetry(df)
        frame, is_input = prepend_context(df, self.context_)
        raw = self._raw_scores(frame)
        scores = np.clip(np.nan_to_num(raw[is_input], nan=0.0), 0.0, 1.0)
        return df.assign(**{SCORE_COL: scores})

    def score(
        self,
        df: pd.DataFrame,
        incidents: pd.DataFrame,
        catalogue: pd.DataFrame,
        threshold: float = 0.99,
        *,
        horizon: str | pd.Timedelta = "60min",
        grace: str | pd.Timedelta = "15min",
        gap: str | pd.Timedelta = "30min",
    ) -> dict[str, Any]:
        """Event-wise recall / precision / lead time of service alarms (any series >= threshold).

        Only incidents starting within ``df``'s time span count: the detector cannot see others.
        """
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be within (0, 1), got {threshold}")
        per_service = service_scores(self.predict(df), catalogue)
        alarms = per_service.assign(alarm=per_service[SCORE_COL] >= threshold)
        episodes = episodes_frame(alarms, "alarm", gap)
        require_columns(incidents, ["service", "start"], "incidents")
        lo, hi = df[TIME_COL].min(), df[TIME_COL].max()
        truth = incidents[(incidents["start"] >= lo) & (incidents["start"] <= hi)]
        metrics = evaluate_alarms(episodes, truth, horizon, grace).to_dict()
        return {**metrics, "threshold": threshold, "incidents": len(truth), "episodes": len(episodes)}

    @property
    def context_length(self) -> pd.Timedelta:
        """How much history a score depends on: pass at least this much before the window of
        interest to ``predict`` when the fitted context does not reach it (fit long ago)."""
        self._require_fitted()
        return self._context_length()

    def _context_length(self) -> pd.Timedelta:
        """How much history before a sample its score depends on (kept from ``fit``)."""
        return pd.Timedelta(0)

    @abstractmethod
    def _fit(self, df: pd.DataFrame) -> None: ...

    @abstractmethod
    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        """Scores in [0, 1] (NaN = not enough history) aligned with the sorted frame ``df``."""


# Built-in detectors live in modules that import this one (so it cannot import them): the registry
# imports them by name on its first read.
DETECTORS: Registry[type[AnomalyDetector]] = Registry("anomaly detector", builtins=(
    "models.anomaly.robust_seasonal",
    "models.anomaly.rolling_zscore",
    "models.anomaly.streaming",
    "models.anomaly.knn",
    "models.anomaly.ensemble",
    "models.anomaly.streaming_ensemble",
    "models.anomaly.robust_z_detectors",
))


def service_scores(scores: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """``service, ds, score``: the highest series score of each service at each time."""
    require_columns(scores, [ID_COL, TIME_COL, SCORE_COL], "anomaly scores")
    require_columns(catalogue, [ID_COL, "service"], "catalogue")
    services = catalogue.drop_duplicates(ID_COL).set_index(ID_COL)["service"]
    service = scores[ID_COL].map(services)
    unknown = service.isna()
    if unknown.any():
        missing = sorted(scores.loc[unknown, ID_COL].unique())
        raise ValueError(f"{len(missing)} scored series are not in the catalogue, e.g. {missing[:5]}")
    frame = pd.DataFrame({"service": service.astype("string"), TIME_COL: scores[TIME_COL], SCORE_COL: scores[SCORE_COL]})
    return frame.groupby(["service", TIME_COL], as_index=False, sort=True)[SCORE_COL].max()
