"""The pipeline benchmark times every stage on one consistent batch."""

from __future__ import annotations

import pytest

from bench.pipeline import run

pytestmark = pytest.mark.slow  # its one test runs the whole benchmark: ~7 s


def test_every_stage_is_timed_on_the_same_rows() -> None:
    figures = {f.stage: f for f in run(days=15)}  # LightGBM needs two weeks of hourly lags
    simulated = figures["simulate"].items
    assert simulated > 0
    for stage in ("contract (warm)", "lake upsert (new rows)", "lake upsert (same rows again)", "lake read"):
        assert figures[stage].items == simulated, stage
    assert all(f.seconds > 0 for f in figures.values())
    # 6 services x 2 instances x 4 capacity metrics, every one forecast by every model
    assert {f.items for s, f in figures.items() if s.startswith("forecaster")} == {48}
