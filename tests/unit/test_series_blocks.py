"""Series blocks: every series in exactly one block, blocks bounded, and the forecast flow's
forecasts the same as before it sharded through them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.forecast_plan import chunk_series, forecast_chunk
from foresight.settings import Settings
from foresight.settings_sections import ForecastConfig
from models.forecasting.blocks import forecast_block, frame_blocks, series_blocks
from models.forecasting.selection import ChampionSelector


@pytest.mark.parametrize("n", [1, 15, 16, 17, 31, 32, 33, 100, 1001, 20_000])
@pytest.mark.parametrize("block_size", [1, 16, 500, 1000])
def test_every_series_lands_in_exactly_one_bounded_block(n: int, block_size: int) -> None:
    ids = np.array([f"s{i}" for i in range(n)])
    blocks = series_blocks(ids, block_size)
    assert np.array_equal(np.concatenate(blocks), ids)  # each once, in order
    sizes = np.array([b.size for b in blocks])
    if n >= block_size:
        assert sizes.min() >= block_size and sizes.max() < 2 * block_size
        assert len(blocks) == n // block_size
    else:
        assert len(blocks) == 1
    assert sizes.max() - sizes.min() <= 1  # near-equal: no straggler block


def test_no_ids_no_blocks_and_a_block_size_below_one_is_refused() -> None:
    assert series_blocks([], 10) == []
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        series_blocks(["a"], 0)


def _hourly(n: int, days: int = 10, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2025-03-03", periods=days * 24, freq="1h", tz="UTC").as_unit("us")
    hour = np.asarray(ds.hour)
    frames = [pd.DataFrame({"unique_id": f"svc/i-{i:03d}/cpu_pct", "ds": ds,
                            "y": 40 + 10 * i % 7 + 15 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 2, ds.size)})
              for i in range(n)]
    return pd.concat(frames, ignore_index=True)


def test_frame_blocks_split_rows_by_series_and_keep_a_global_models_fleet_whole() -> None:
    series = _hourly(40)
    blocks = frame_blocks(series, 16)
    assert [b["unique_id"].nunique() for b in blocks] == [20, 20]
    assert pd.concat(blocks).sort_index().equals(series)
    assert set(blocks[0]["unique_id"]).isdisjoint(blocks[1]["unique_id"])
    assert frame_blocks(series, 16, is_global=True)[0] is series


def test_the_forecast_flow_shards_and_forecasts_as_it_did_before_the_shared_blocks() -> None:
    """The flow's default blocks are the chunks it used to cut (np.array_split into n // 16), and
    its task's forecasts for them are the same numbers (``auto`` chooses per block, so a change of
    partition would show)."""
    series = _hourly(37)
    model = ChampionSelector(candidates=("seasonal_naive", "ses", "damped_trend"), horizon=24, n_origins=2)
    settings = Settings()
    settings.forecast = ForecastConfig(horizon=24, level=80)
    ids = series["unique_id"].unique()
    before = [series[series["unique_id"].isin(part)] for part in np.array_split(ids, max(1, len(ids) // 16))]
    now = chunk_series(series, model, settings.forecast.series_per_task)
    assert [sorted(b["unique_id"].unique()) for b in now] == [sorted(b["unique_id"].unique()) for b in before]
    old = pd.concat([model.clone().fit(part, freq="1h").predict(24, 80) for part in before], ignore_index=True)
    new = pd.concat([forecast_chunk.fn(model, part, settings) for part in now], ignore_index=True)
    pd.testing.assert_frame_equal(new, old)
    # One block of all 37 lets `auto` choose across the fleet: some series' numbers move.
    whole = forecast_block(model, series, freq="1h", horizon=24, level=80)
    assert not np.allclose(whole["yhat_upper"].to_numpy(), old["yhat_upper"].to_numpy())
