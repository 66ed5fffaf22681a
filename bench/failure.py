"""Benchmark failure prediction on simulated fleets: the LightGBM predictor against the utilisation rule.

For each seed the simulator generates a fleet (telemetry, logs and ground-truth incidents with
their precursors); both predictors meet the same rolling-origin, event-wise evaluation the train
flow gates on (:func:`models.evaluation.gate.evaluate_failure_predictor`): per block a model trained on
the past only, its own operating threshold chosen on that past, alarms matched to the incidents
that start in the block. Figures are the pooled ones over the blocks, per seed and their mean.

The simulated span ends on a fixed date so figures do not move from day to day.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.windows import service_features
from foresight.settings import DetectConfig
from models.evaluation.gate import evaluate_failure_predictor
from models.failure.base import PREDICTORS
from simulator import simulate

MODELS: tuple[str, ...] = ("lgbm", "utilisation_rule")
END = pd.Timestamp("2026-05-01", tz="UTC")


@dataclass(frozen=True)
class FailureFigures:
    """One predictor's pooled rolling-origin figures on one seed's fleet (``seed`` None: the mean)."""

    seed: int | None
    model: str
    recall: float
    precision: float
    f1: float
    median_lead_minutes: float  # NaN when nothing was detected
    detected: int
    incidents: int
    false_alarms: int
    seconds: float  # wall time of the whole evaluation (every block's fit and scoring)


def run(seeds: Sequence[int] = (1, 2, 3), days: int = 28, n_origins: int = 3) -> list[FailureFigures]:
    """Figures per seed and model, then one mean row per model (``seed=None``)."""
    if not seeds:
        raise ValueError("at least one seed is needed")
    cfg = DetectConfig(failure_origins=n_origins)
    figures: list[FailureFigures] = []
    for seed in seeds:
        batch = simulate(seed=seed, days=days, end=END)
        if batch.incidents is None:
            raise ValueError("the simulator returned no incident history")
        features = service_features(batch.telemetry, batch.catalogue, batch.logs)
        for name in MODELS:
            started = time.perf_counter()
            evaluation = evaluate_failure_predictor(PREDICTORS.get(name)(), features, batch.incidents, cfg)
            seconds = time.perf_counter() - started
            m = evaluation.metrics
            figures.append(
                FailureFigures(
                    seed,
                    name,
                    m["recall"],
                    m["precision"],
                    m["f1"],
                    m["median_lead_minutes"],
                    int(m["detected"]),
                    int(m["detected"] + m["missed"]),
                    int(m["false_alarms"]),
                    seconds,
                )
            )
    return figures + [mean_figures(figures, name) for name in MODELS]


def mean_figures(figures: Sequence[FailureFigures], model: str) -> FailureFigures:
    """The mean over seeds of one model's figures (lead time: mean of the seeds' medians, NaNs skipped)."""
    mine = [f for f in figures if f.model == model and f.seed is not None]
    if not mine:
        raise ValueError(f"no figures for {model!r}")

    def mean(field: str) -> float:
        values = np.array([getattr(f, field) for f in mine], dtype="float64")
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    return FailureFigures(
        None,
        model,
        mean("recall"),
        mean("precision"),
        mean("f1"),
        mean("median_lead_minutes"),
        sum(f.detected for f in mine),
        sum(f.incidents for f in mine),
        sum(f.false_alarms for f in mine),
        mean("seconds"),
    )
