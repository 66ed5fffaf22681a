"""One task of ``foresight bench scale-out``, run in a Dask worker: a block of the synthetic fleet
generated, resampled and forecast as the forecast flow does, and what that cost the worker.

Kept apart from the driver (:mod:`bench.scale_out`) so a worker imports only what a block needs:
the model comes built from the driver, as the flow's tasks get the champion.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

from bench.scale_fleet import FleetShape, fleet_block
from features.resample import resample
from foresight.settings_sections import ForecastConfig
from models.forecasting.blocks import forecast_block
from models.forecasting.bounds import clip_forecast, series_bounds


@dataclass(frozen=True)
class BlockFigures:
    """What one block's task measured in its worker."""

    series: int
    forecast_rows: int
    generate_seconds: float
    work_seconds: float  # resample + backtest/select/forecast + clip, wall
    work_cpu_seconds: float  # the same, CPU of the worker and of the children it waited for
    choices: dict[str, int]  # model -> series it forecast
    worker_pid: int


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (Prophet's Stan optimiser runs in one)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> float:
    """This process's peak resident set in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_block(start: int, stop: int, shape: FleetShape, model: Any, cfg: ForecastConfig) -> BlockFigures:
    """Generate fleet series ``start..stop-1`` and do the forecast flow's work on them with ``model``."""
    logging.getLogger("models.forecasting").setLevel(logging.ERROR)  # per-series fallbacks: thousands of lines
    began = time.perf_counter()
    raw = fleet_block(start, stop, shape)
    generated, cpu = time.perf_counter(), cpu_seconds()
    history = resample(raw, freq=cfg.freq)
    del raw
    forecasts = forecast_block(model, history, freq=cfg.freq, horizon=cfg.horizon, level=cfg.level)
    forecasts = clip_forecast(forecasts, series_bounds(history))
    made_by = forecasts.drop_duplicates("unique_id")["model_name"].value_counts()
    return BlockFigures(series=stop - start, forecast_rows=len(forecasts), generate_seconds=generated - began,
                        work_seconds=time.perf_counter() - generated, work_cpu_seconds=cpu_seconds() - cpu,
                        choices={str(k): int(v) for k, v in made_by.items()}, worker_pid=os.getpid())
