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

from features.failure_labels import confirmed_incidents, failure_labels
from features.resample import resample
from foresight.settings import DetectConfig, ForecastConfig
from models.evaluation.events import alarm_episodes, episodes_frame, evaluate_alarms, match_pages
from models.failure.base import LabelError, sampling_step
from models.forecasting.backtest import backtest
from models.forecasting.base import Forecaster
from models.forecasting.lead_buckets import TITLES, metrics_by_lead


@dataclass
class Evaluation:
    """One model's result on a family's evaluation; ``value`` is the gating metric."""

    metric: str
    value: float
    higher_is_better: bool
    metrics: dict[str, float] = field(default_factory=dict)
    detail: Any = None
    # Why this model must not be promoted whatever its gating metric (None: nothing against it).
    refusal: str | None = None


def season_length(freq: str) -> int:
    """Steps per day at ``freq`` (the daily season capacity series share)."""
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    return max(1, int(pd.Timedelta("1D") / step))


def capacity_series(telemetry: pd.DataFrame, catalogue: pd.DataFrame, cfg: ForecastConfig) -> pd.DataFrame:
    """The capacity-relevant series, resampled onto the forecasting grid."""
    ids = catalogue.loc[catalogue["metric"].isin(cfg.metrics), "unique_id"]
    frame = telemetry[telemetry["unique_id"].isin(ids)]
    if frame.empty:
        raise ValueError(f"no telemetry for the capacity metrics {cfg.metrics}")
    return resample(frame, freq=cfg.freq)


def evaluate_forecaster(model: Forecaster, df: pd.DataFrame, cfg: ForecastConfig) -> Evaluation:
    """Rolling-origin backtest; gated on mean MASE (lower is better), and refused when its
    interval coverage misses the nominal level by more than ``cfg.coverage_tolerance``, pooled
    (:func:`coverage_refusal`) or in any lead-time bucket (:func:`lead_coverage_refusal`): a
    capacity plan reads the band's upper end as a quantile, a week out as much as an hour out.
    ``metrics`` carries ``coverage_lead_<bucket>`` and ``pinball_lead_<bucket>`` (the MLflow run's)."""
    result = backtest(
        model.clone(), df, h=cfg.backtest_horizon, n_origins=cfg.n_origins, level=cfg.level,
        season=season_length(cfg.freq),
    )
    metrics = {k: float(v) for k, v in result.overall.items() if isinstance(v, (int, float, np.floating))}
    metrics["coverage_error"] = metrics.get("coverage", float("nan")) - cfg.level / 100.0
    refusal = coverage_refusal(metrics.get("coverage", float("nan")), cfg.level, cfg.coverage_tolerance)
    refusal = refusal or lead_coverage_refusal(metrics, cfg.level, cfg.coverage_tolerance)
    return Evaluation("mase", float(result.overall["mase"]), False, metrics, result, refusal)


def coverage_refusal(coverage: float, level: int, tolerance: float) -> str | None:
    """Why a forecaster with this backtest interval ``coverage`` (share of actuals inside the
    ``level`` % interval) is not fit to promote, or None when it is within ``tolerance``."""
    nominal = level / 100.0
    if not np.isfinite(coverage):
        return f"interval coverage could not be measured (nominal {nominal:.2f})"
    if abs(coverage - nominal) > tolerance + 1e-12:
        return (f"interval coverage {coverage:.2f} is outside {nominal:.2f} ± {tolerance:.2f} "
                f"(the {level} % interval is {'too narrow' if coverage < nominal else 'too wide'})")
    return None


def lead_coverage_refusal(metrics: dict[str, float], level: int, tolerance: float) -> str | None:
    """Why a forecaster is not fit to promote on its coverage per lead bucket
    (``coverage_lead_<bucket>`` with ``points_lead_<bucket>`` in ``metrics``), or None.

    A bucket fails when its coverage misses the nominal share by more than ``tolerance`` plus two
    binomial standard errors of a share measured on that many points (0.067 on the simulator's
    144 first-hour points): a perfectly calibrated band would otherwise fail a small bucket by
    chance one time in eight. Every failing bucket is named.
    """
    nominal = level / 100.0
    missed = []
    for bucket, value in metrics_by_lead(metrics).items():
        points = metrics.get(f"points_lead_{bucket}", float("nan"))
        allowance = 2 * np.sqrt(nominal * (1 - nominal) / points) if points > 0 else 0.0
        if np.isfinite(value) and abs(value - nominal) <= tolerance + allowance + 1e-12:
            continue
        side = "too narrow" if value < nominal else "too wide" if np.isfinite(value) else "not measured"
        missed.append(f"{TITLES[bucket]} (lead {bucket}) {value:.2f} ({side}; {points:.0f} points, "
                      f"allowed ± {tolerance + allowance:.2f})")
    if not missed:
        return None
    return f"interval coverage by lead is outside {nominal:.2f}: " + ", ".join(missed)


@dataclass(frozen=True)
class FailureOrigin:
    """One rolling-origin split: train on rows before ``cut`` (labels as known then), score ``[cut, end)``."""

    cut: pd.Timestamp
    end: pd.Timestamp


def failure_origins(ds: pd.Series, first_fraction: float, n_origins: int) -> list[FailureOrigin]:
    """``n_origins`` consecutive, equal test blocks after the first ``first_fraction`` of the span.

    Cuts fall on whole hours; the last block runs to just past the newest row, so every row
    after the first cut is scored exactly once.
    """
    if n_origins < 1:
        raise ValueError(f"n_origins must be at least 1, got {n_origins}")
    if not 0.0 < first_fraction < 1.0:
        raise ValueError(f"first_fraction must be within (0, 1), got {first_fraction}")
    if ds.empty:
        raise ValueError("no feature rows to split")
    start, newest = ds.min(), ds.max()
    span = newest - start
    cuts = [(start + span * (first_fraction + k * (1.0 - first_fraction) / n_origins)).floor("h")
            for k in range(n_origins)]
    if len(set(cuts)) < n_origins or cuts[0] <= start:
        raise ValueError(f"{span} of history is too short for {n_origins} hour-aligned test blocks")
    ends = [*cuts[1:], newest + pd.Timedelta(microseconds=1)]
    return [FailureOrigin(cut, end) for cut, end in zip(cuts, ends, strict=True)]


def evaluate_failure_predictor(
    predictor: Any,
    features: pd.DataFrame,
    incidents: pd.DataFrame,
    cfg: DetectConfig,
    *,
    n_origins: int | None = None,
    grace: str | pd.Timedelta = "5min",
) -> Evaluation:
    """Rolling-origin, event-wise evaluation of a failure predictor; gated on pooled event F1.

    For each origin (:func:`failure_origins`: the first after ``cfg.train_fraction`` of the
    span, ``n_origins`` or ``cfg.failure_origins`` in all) a clone is fitted on the rows before
    the cut with labels as known at the cut (:func:`features.failure_labels.failure_labels` with
    ``as_of``; false positives are no incidents), picks its operating threshold from that
    training data alone (:func:`operating_threshold`), and its alarms over the next block are
    matched to the incidents starting there. ``metrics`` holds every split's ``split<k>_*``
    figures, their ``mean_*`` and the pooled ones (all blocks' alarms against all their
    incidents, as if the model had been retrained at each origin); the gate value is the pooled
    event F1, steadier than a mean of per-block F1s when a block holds one or two incidents.
    ``detail`` holds ``splits`` (one row per split) and ``risk`` (the scored blocks).

    A model that cannot be trained at an origin (no incident before it yet) raises nothing in
    that block: it scores what deploying it then would have scored.
    """
    horizon = pd.Timedelta(minutes=cfg.horizon_minutes)
    truth_all = confirmed_incidents(incidents)
    origins = failure_origins(features["ds"], cfg.train_fraction, n_origins or cfg.failure_origins)
    step = sampling_step(features)
    rows, blocks = [], []
    for k, origin in enumerate(origins, start=1):
        train = (features["ds"] < origin.cut).to_numpy()
        test = ((features["ds"] >= origin.cut) & (features["ds"] < origin.end)).to_numpy()
        labels = failure_labels(features[train], truth_all, horizon, as_of=origin.cut)
        try:
            model = predictor.clone().fit(features[train], labels)
            threshold = operating_threshold(model, cfg)
            risk = model.predict(features[test])
        except LabelError:
            threshold = float("nan")
            risk = features.loc[test, ["service", "ds"]].assign(risk=0.0)
        risk = risk.assign(alarm=risk["risk"].to_numpy() >= threshold, split=k)
        truth = _starting_within(truth_all, origin.cut, origin.end)
        result = evaluate_alarms(episodes_frame(risk, "alarm", gap=2 * step), truth, horizon, grace)
        rows.append({"split": k, "train_end": origin.cut, "test_end": origin.end, "threshold": threshold,
                     "train_incidents": int((truth_all["start"] < origin.cut).sum()), "incidents": len(truth),
                     **result.as_floats()})
        blocks.append(risk)
    risk = pd.concat(blocks, ignore_index=True)
    pooled_truth = _starting_within(truth_all, origins[0].cut, origins[-1].end)
    pooled = evaluate_alarms(episodes_frame(risk, "alarm", gap=2 * step), pooled_truth, horizon, grace).as_floats()
    splits = pd.DataFrame(rows)
    metrics = dict(pooled)
    figures = ("recall", "precision", "f1", "median_lead_minutes")
    for row in rows:
        metrics.update({f"split{row['split']}_{name}": row[name] for name in (*figures, "threshold")})
    metrics.update({f"mean_{name}": float(splits[name].mean()) for name in figures})  # NaN-skipping
    metrics["splits"] = float(len(rows))
    return Evaluation("event_f1", pooled["f1"], True, metrics, {"splits": splits, "risk": risk})


def _starting_within(incidents: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    return incidents[(incidents["start"] >= lo) & (incidents["start"] < hi)]


def operating_threshold(predictor: Any, cfg: DetectConfig) -> float:
    """The risk a failure predictor alarms at: its own fitted ``threshold_`` if it has one, else the setting."""
    own = getattr(predictor, "threshold_", None)
    return cfg.risk_threshold if own is None else float(own)


def match_incidents(raised: pd.DataFrame, truth: pd.DataFrame, cfg: DetectConfig) -> dict[str, float]:
    """Event-wise recall, precision and lead time of raised incidents against ground truth."""
    return match_pages(raised, truth, pd.Timedelta(minutes=cfg.horizon_minutes), pd.Timedelta(minutes=15)).as_floats()


def alarm_episodes_by_service(alarms: pd.DataFrame, step: pd.Timedelta) -> dict[str, list]:
    return {
        service: alarm_episodes(group["ds"], np.ones(len(group), dtype=bool), gap=step * 2)
        for service, group in alarms.groupby("service")
    }


def _step(features: pd.DataFrame) -> pd.Timedelta:
    steps = features.sort_values("ds").groupby("service")["ds"].diff().dropna()
    return steps.mode().iloc[0] if len(steps) else pd.Timedelta(minutes=5)
