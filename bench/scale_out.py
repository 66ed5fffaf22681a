"""``foresight bench scale-out``: the forecast flow's per-block work on a synthetic fleet, on a
local Dask cluster of 1, 2, 4, ... worker processes; wall time, series/s, CPU-seconds per series
and peak memory per worker.

Each task is one block of series (:func:`models.forecasting.blocks.series_blocks`, as the forecast
flow shards): the worker generates the block's raw telemetry (:mod:`bench.scale_fleet`, not
timed as forecasting work), resamples it to ``forecast.freq`` as the flow's history load does,
and runs :func:`models.forecasting.blocks.forecast_block` with the train flow's selector
(``auto`` over ``forecast.models``, built once in the driver and shipped as the flow ships
its champion: backtest every candidate, choose per series, calibrate,
forecast ``forecast.horizon`` steps), then clips to the history's bounds as the served
forecasts are. Only figures travel back, never the forecasts. Wall time runs from the first
submit to the last result (generation included, a few per cent of it: it stands in for reading
the block from the lake); CPU-seconds count the forecasting work only.

CPU-seconds include the children a worker waited for (Prophet's Stan optimiser runs in one);
peak memory is each worker process's own maximum resident set (``ru_maxrss``), read from the
workers with ``Client.run`` after the run. Each worker count gets a fresh cluster.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.distributed import Client, LocalCluster

from bench.scale_block import BlockFigures, peak_rss_mib, run_block
from bench.scale_fleet import FleetShape
from flows.families import selector
from foresight.settings import Settings
from models.forecasting.blocks import series_blocks

# One thread per worker process, and no BLAS / OpenMP pools inside it: a worker is one core's job.
SINGLE_THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass
class RunFigures:
    """One worker count's run over the whole fleet."""

    workers: int
    series: int
    blocks: int
    startup_seconds: float
    wall_seconds: float  # first submit to last result, generating the blocks' input included
    cpu_seconds: float  # the forecasting work's, generation left out
    generate_seconds: float  # the blocks' generation, summed over workers
    peak_rss_mib: dict[str, float]  # worker address -> its peak resident set
    choices: dict[str, int] = field(default_factory=dict)

    @property
    def series_per_second(self) -> float:
        return self.series / self.wall_seconds

    @property
    def cpu_seconds_per_series(self) -> float:
        return self.cpu_seconds / self.series

    @property
    def cores_busy(self) -> float:
        """Cores the workers kept busy on average: ``workers`` when nothing else competes for them;
        less on a shared or smaller machine, where wall time then says little about scaling."""
        return self.cpu_seconds / self.wall_seconds


def block_bounds(n_series: int, block_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each block of the fleet's series indices, as the flow shards ids."""
    return [(int(b[0]), int(b[-1]) + 1) for b in series_blocks(np.arange(n_series), block_size)]


def run_on_cluster(workers: int, n_series: int, block_size: int, shape: FleetShape, model: Any,
                   settings: Settings) -> RunFigures:
    """The whole fleet forecast by ``model`` on a fresh local cluster of ``workers`` single-threaded
    worker processes."""
    bounds = block_bounds(n_series, block_size)
    began = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=None, silence_logs=logging.ERROR, env=SINGLE_THREAD_ENV) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(workers)
        started = time.perf_counter()
        futures = client.map(run_block, [b[0] for b in bounds], [b[1] for b in bounds],
                             shape=shape, model=model, cfg=settings.forecast, pure=False)
        figures: list[BlockFigures] = client.gather(futures)
        finished = time.perf_counter()
        peaks = client.run(peak_rss_mib)
    done = sum(f.series for f in figures)
    if done != n_series:
        raise RuntimeError(f"the blocks forecast {done} series, expected {n_series}")
    choices: Counter[str] = Counter()
    for f in figures:
        choices.update(f.choices)
    return RunFigures(workers=workers, series=n_series, blocks=len(bounds), startup_seconds=started - began,
                      wall_seconds=finished - started, cpu_seconds=sum(f.work_cpu_seconds for f in figures),
                      generate_seconds=sum(f.generate_seconds for f in figures), peak_rss_mib=dict(peaks),
                      choices=dict(choices))


def run(n_series: int, workers: Sequence[int], block_size: int, shape: FleetShape,
        settings: Settings | None = None) -> Iterator[RunFigures]:
    """One :class:`RunFigures` per worker count, in the order given (each as it finishes)."""
    if n_series < 1:
        raise ValueError(f"series must be >= 1, got {n_series}")
    if not workers or min(workers) < 1:
        raise ValueError(f"workers must be a non-empty list of counts >= 1, got {list(workers)}")
    settings = settings or Settings()
    model = selector(settings)  # the train flow's candidate: ``auto`` over forecast.models
    for count in workers:
        yield run_on_cluster(count, n_series, block_size, shape, model, settings)
