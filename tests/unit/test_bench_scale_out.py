"""``foresight bench scale-out``: its synthetic fleet, its blocks and a tiny run on a local cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer

from bench.scale_fleet import FleetShape, fleet_block, series_id
from bench.scale_out import block_bounds, run
from foresight.cli.bench_scale import parse_workers
from foresight.schemas import validate_telemetry
from foresight.settings import Settings
from foresight.settings_sections import ForecastConfig


def test_a_block_of_the_fleet_is_seeded_ragged_and_plausible() -> None:
    shape = FleetShape(min_days=14, max_days=28, step_minutes=15, seed=7)
    block = fleet_block(100, 160, shape)
    pd.testing.assert_frame_equal(block, fleet_block(100, 160, shape))  # the same whichever worker makes it
    validate_telemetry(block)
    assert not block.equals(fleet_block(100, 160, FleetShape(seed=8)))
    assert list(block["unique_id"].unique()) == [series_id(i) for i in range(100, 160)]
    days = block.groupby("unique_id")["ds"].size() / shape.steps_per_day
    assert days.min() >= 14 and days.max() <= 28 and days.nunique() > 10  # ragged, as a fleet is
    assert (block.groupby("unique_id")["ds"].max() == block["ds"].max()).all()  # every series ends now
    assert block["y"].min() >= 0 and np.isfinite(block["y"]).all()
    steps = block.groupby("unique_id")["ds"].diff().dropna().unique()
    assert list(steps) == [pd.Timedelta(minutes=15)]


def test_a_bad_shape_is_refused_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="min_days <= max_days"):
        FleetShape(min_days=10, max_days=5)
    with pytest.raises(ValueError, match="step_minutes must divide a day"):
        FleetShape(step_minutes=7)


def test_block_bounds_cover_the_fleet_once() -> None:
    bounds = block_bounds(2_500, 1_000)
    assert bounds == [(0, 1250), (1250, 2500)]
    assert sum(stop - start for start, stop in block_bounds(20_000, 700)) == 20_000


def test_worker_counts_parse_or_fail_clearly() -> None:
    assert parse_workers("1,2,4") == [1, 2, 4]
    for bad in ("", "0", "one,two"):
        with pytest.raises(typer.BadParameter):
            parse_workers(bad)


@pytest.mark.slow
def test_a_tiny_fleet_forecasts_once_per_series_on_one_and_two_workers() -> None:
    settings = Settings()
    settings.forecast = ForecastConfig(models=["seasonal_naive", "ses"], horizon=24, backtest_horizon=24, n_origins=2)
    figures = list(run(200, [1, 2], block_size=100, shape=FleetShape(min_days=7, max_days=9), settings=settings))
    assert [f.workers for f in figures] == [1, 2]
    for fig in figures:
        assert fig.series == 200 and fig.blocks == 2 and sum(fig.choices.values()) == 200
        assert set(fig.choices) <= {"seasonal_naive", "ses"}
        assert len(fig.peak_rss_mib) == fig.workers and min(fig.peak_rss_mib.values()) > 50
        assert fig.cpu_seconds > 0 and fig.series_per_second > 0 and 0 < fig.cores_busy <= fig.workers + 0.5
    assert figures[0].choices == figures[1].choices  # the same blocks, whichever worker ran them
