"""Evaluate each model family one way, so candidate, baseline and champion meet on equal terms.

Every evaluation clones the model (its configuration) and fits the clone on the evaluation's own
training part, so a champion loaded from the registry is re-run on exactly the backtest the
candidate faced. Pure: frames in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from foresight.settings import DetectConfig, ForecastConfig
from models.base import Forecaster


@dataclass
class Evaluation:
    """One model's result on a family's evaluation; ``value`` is the gating metric."""

    metric: str
    value: float
    higher_is_better: bool
    metrics: dict[str, float] = field(default_factory=dict)
    detail: Any = None


def season_length(freq: str) -> int:
    """Steps per day at ``freq`` (the daily season capacity series share)."""
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    return max(1, int(pd.Timedelta("1D") / step))


def capacity_series(telemetry: pd.DataFrame, catalogue: pd.DataFrame, cfg: ForecastConfig) -> pd.DataFrame:
    """The capacity-relevant series, resampled onto the forecasting grid."""
    from features.resample import resample

    ids = catalogue.loc[catalogue["metric"].isin(cfg.metrics), "unique_id"]
    frame = telemetry[telemetry["unique_id"].isin(ids)]
    if frame.empty:
        raise ValueError(f"no telemetry for the capacity metrics {cfg.metrics}")
    return resample(frame, freq=cfg.freq)


def evaluate_forecaster(model: Forecaster, df: pd.DataFrame, cfg: ForecastConfig) -> Evaluation:
    """Rolling-origin backtest; gated on mean MASE (lower is better)."""
    from models.forecasting.backtest import backtest

    result = backtest(
        model.clone(), df, h=cfg.backtest_horizon, n_origins=cfg.n_origins, level=cfg.level,
        season=season_length(cfg.freq),
    )
    metrics = {k: float(v) for k, v in result.overall.items() if isinstance(v, (int, float, np.floating))}
    return Evaluation("mase", float(result.overall["mase"]), False, metrics, result)


def split_time(ds: pd.Series, train_fraction: float) -> pd.Timestamp:
    """The timestamp that puts ``train_fraction`` of the span before it."""
    start, end = ds.min(), ds.max()
    return (start + (end - start) * train_fraction).floor("h")


def evaluate_detector(
    detector: Any,
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    incidents: pd.DataFrame,
    cfg: DetectConfig,
    split: pd.Timestamp,
) -> Evaluation:
    """Fit on data before ``split``, raise incidents after it, match them to the ground truth."""
    model = detector.clone().fit(telemetry[telemetry["ds"] < split])
    scores = model.predict(telemetry)
    scores = scores[scores["ds"] >= split]
    raised = incidents_from_scores(scores, None, catalogue, cfg)
    truth = incidents[incidents["start"] >= split]
    metrics = match_incidents(raised, truth, cfg)
    return Evaluation("event_f1", metrics["f1"], True, metrics, raised)


def evaluate_failure_predictor(
    predictor: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    incidents: pd.DataFrame,
    cfg: DetectConfig,
    split: pd.Timestamp,
) -> Evaluation:
    """Fit on windows before ``split``; alarms after it are matched to incidents event-wise."""
    train = features["ds"] < split
    model = predictor.clone().fit(features[train], labels[train])
    risk = model.predict(features[~train])
    alarms = risk[risk["risk"] >= operating_threshold(model, cfg)]
    episodes = alarm_episodes_by_service(alarms, step=_step(features))
    from models.events import evaluate_alarms

    truth = incidents[incidents["start"] >= split]
    result = evaluate_alarms(
        episodes, truth, horizon=pd.Timedelta(minutes=cfg.horizon_minutes), grace=pd.Timedelta(minutes=5)
    )
    metrics = _event_metrics(result)
    return Evaluation("event_f1", metrics["f1"], True, metrics, risk)


def operating_threshold(predictor: Any, cfg: DetectConfig) -> float:
    """The risk a failure predictor alarms at: its own fitted ``threshold_`` if it has one, else the setting."""
    own = getattr(predictor, "threshold_", None)
    return cfg.risk_threshold if own is None else float(own)


def incidents_from_scores(
    scores: pd.DataFrame, risk: pd.DataFrame | None, catalogue: pd.DataFrame, cfg: DetectConfig
) -> pd.DataFrame:
    from models.incidents import build_incidents

    return build_incidents(
        scores, risk, catalogue, anomaly_threshold=cfg.anomaly_threshold, risk_threshold=cfg.risk_threshold,
        resolve_after=pd.Timedelta(minutes=cfg.resolve_after_minutes), min_active=cfg.min_active_samples,
    )


def match_incidents(raised: pd.DataFrame, truth: pd.DataFrame, cfg: DetectConfig) -> dict[str, float]:
    """Event-wise recall, precision and lead time of raised incidents against ground truth."""
    from models.events import evaluate_alarms

    episodes = {
        service: list(zip(group["start"], group["end"].fillna(group["start"]), strict=True))
        for service, group in raised.groupby("service")
    }
    result = evaluate_alarms(
        episodes, truth, horizon=pd.Timedelta(minutes=cfg.horizon_minutes), grace=pd.Timedelta(minutes=15)
    )
    return _event_metrics(result)


def alarm_episodes_by_service(alarms: pd.DataFrame, step: pd.Timedelta) -> dict[str, list]:
    from models.events import alarm_episodes

    return {
        service: alarm_episodes(group["ds"], np.ones(len(group), dtype=bool), gap=step * 2)
        for service, group in alarms.groupby("service")
    }


def _event_metrics(result: Any) -> dict[str, float]:
    values = {
        "recall": result.recall,
        "precision": result.precision,
        "f1": result.f1,
        "median_lead_minutes": result.median_lead_minutes,
        "detected": result.detected,
        "missed": result.missed,
        "false_alarms": result.false_alarms,
    }
    return {k: float("nan") if v is None else float(v) for k, v in values.items()}


def _step(features: pd.DataFrame) -> pd.Timedelta:
    steps = features.sort_values("ds").groupby("service")["ds"].diff().dropna()
    return steps.mode().iloc[0] if len(steps) else pd.Timedelta(minutes=5)
