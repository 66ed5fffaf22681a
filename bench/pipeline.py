"""Benchmark the embedded pipeline's stages on the simulator's default fleet; prints figures.

Each stage is timed in-process on the same data a demo uses, so the numbers explain the demo's
wall time: simulate -> contract -> lake upsert (and an idempotent re-upsert) -> resample ->
forecaster fit/predict -> anomaly fit/score -> failure features.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.windows import service_features
from foresight.contracts.check import check_telemetry
from foresight.lake import Lake
from foresight.settings import ForecastConfig
from models.anomaly.base import DETECTORS
from models.evaluation.gate import capacity_series
from models.forecasting.base import FORECASTERS
from simulator import SimulatorSource


@dataclass
class Figure:
    stage: str
    seconds: float
    items: int
    unit: str

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def _timed(stage: str, unit: str, fn: Callable[[], Any], count: Callable[[Any], int]) -> tuple[Figure, Any]:
    started = time.perf_counter()
    out = fn()
    return Figure(stage, time.perf_counter() - started, count(out), unit), out


def run(days: int = 21, seed: int = 7) -> list[Figure]:
    """Time each stage once on a fresh temporary lake; returns the figures in stage order."""
    figures: list[Figure] = []
    fig, batch = _timed("simulate", "rows", lambda: SimulatorSource(seed=seed, days=days).fetch(),
                        lambda b: len(b.telemetry))
    figures.append(fig)
    now = batch.telemetry["ds"].max() + pd.Timedelta(minutes=5)
    check = lambda: check_telemetry(batch.telemetry, batch.catalogue, source="simulator", now=now,  # noqa: E731
                                    max_staleness=pd.Timedelta(hours=36))
    fig, result = _timed("contract (first call, GE start-up)", "rows", check, lambda r: len(r.clean))
    figures.append(fig)
    fig, result = _timed("contract (warm)", "rows", check, lambda r: len(r.clean))
    figures.append(fig)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        fig, _ = _timed("lake upsert (new rows)", "rows", lambda: lake.upsert("telemetry", result.clean),
                        lambda r: r.written)
        figures.append(fig)
        fig, _ = _timed("lake upsert (same rows again)", "rows", lambda: lake.upsert("telemetry", result.clean),
                        lambda r: r.written)
        figures.append(fig)
        fig, telemetry = _timed("lake read", "rows", lambda: lake.read("telemetry"), len)
        figures.append(fig)
    cfg = ForecastConfig()
    fig, series = _timed("resample to 1h", "rows", lambda: capacity_series(telemetry, batch.catalogue, cfg), len)
    figures.append(fig)
    for name in ("seasonal_naive", "lgbm_global", "prophet"):
        model = FORECASTERS.get(name)()

        def fit_and_forecast(model: Any = model) -> pd.DataFrame:
            return model.fit(series, freq=cfg.freq).predict(cfg.horizon, cfg.level)

        fig, _ = _timed(f"forecaster {name}: fit + {cfg.horizon}-step forecast", "series", fit_and_forecast,
                        lambda f: f["unique_id"].nunique())
        figures.append(fig)
    detector = DETECTORS.get("robust_seasonal")()
    fig, _ = _timed("anomaly detector fit", "points", lambda: detector.fit(telemetry), lambda _: len(telemetry))
    figures.append(fig)
    fig, _ = _timed("anomaly detector score", "points", lambda: detector.predict(telemetry), len)
    figures.append(fig)
    fig, _ = _timed("failure features (service windows)", "rows",
                    lambda: service_features(telemetry, batch.catalogue, batch.logs), len)
    figures.append(fig)
    return figures


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
