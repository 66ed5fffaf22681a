"""Forecasts and their bands stay within what a series can be: the unit's range, else what the
history rules out; clipping never lowers coverage; backtests and the plan/store see the bounds."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

import flows.forecast_plan as flow_module
from foresight.settings import Settings
from models.forecasting.backtest import backtest
from models.forecasting.bounds import (
    bounds_for,
    clip_forecast,
    points_outside,
    series_bounds,
    units_from_catalogue,
)
from models.forecasting.metrics import coverage
from models.forecasting.seasonal_naive import SeasonalNaive

DS = pd.date_range("2026-03-01", periods=4, freq="h", tz="UTC")


def _band(uid: str, yhat: list[float], half: float) -> pd.DataFrame:
    y = np.asarray(yhat, dtype="float64")
    return pd.DataFrame({"unique_id": uid, "ds": DS[: y.size], "yhat": y, "yhat_lower": y - half,
                         "yhat_upper": y + half, "model_name": "m"})


def _history(uid: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2026-02-01", periods=len(values), freq="h",
                                                                 tz="UTC"), "y": values})


def test_percent_series_are_bounded_to_0_100_whatever_the_history() -> None:
    assert bounds_for("percent", np.array([-5.0, 130.0])) == (0.0, 100.0)
    frame = pd.concat([_band("mem", [95.0, 99.0], 22.0), _band("cpu", [5.0, 10.0], 45.0)], ignore_index=True)
    bounds = series_bounds(pd.concat([_history("mem", [60, 70]), _history("cpu", [3, 9])]),
                           {"mem": "percent", "cpu": "percent"})
    clipped = clip_forecast(frame, bounds)
    assert frame["yhat_upper"].max() == pytest.approx(121.0) and frame["yhat_lower"].min() == pytest.approx(-40.0)
    assert clipped["yhat_upper"].max() == 100.0 and clipped["yhat_lower"].min() == 0.0
    assert clipped.loc[clipped["unique_id"] == "mem", "yhat_lower"].tolist() == [73.0, 77.0]  # inside: untouched
    assert clipped["model_name"].tolist() == frame["model_name"].tolist()
    assert points_outside(frame, bounds) == 4 and points_outside(clipped, bounds) == 0


@pytest.mark.parametrize("unit", ["count", "bytes", "requests_per_second", "seconds"])
def test_counts_bytes_and_rates_are_non_negative_even_if_history_dipped(unit: str) -> None:
    lo, hi = bounds_for(unit, np.array([-1.0, 3.0]))
    assert (lo, hi) == (0.0, np.inf)
    clipped = clip_forecast(_band("s", [1.0, 2.0], 5.0), series_bounds(_history("s", [-1.0, 3.0]), {"s": unit}))
    assert clipped["yhat_lower"].min() == 0.0 and clipped["yhat_upper"].max() == 7.0


def test_unitless_series_is_never_negative_only_if_its_history_never_was() -> None:
    assert bounds_for(None, np.array([0.0, 2.0, np.nan])) == (0.0, np.inf)
    assert bounds_for("widgets", np.array([3.0, -0.5])) == (-np.inf, np.inf)  # unknown unit: history rule
    history = pd.concat([_history("pos", [0.0, 4.0]), _history("neg", [-2.0, 4.0])], ignore_index=True)
    frame = pd.concat([_band("pos", [1.0], 3.0), _band("neg", [1.0], 3.0)], ignore_index=True)
    clipped = clip_forecast(frame, series_bounds(history)).set_index("unique_id")
    assert clipped.loc["pos", "yhat_lower"] == 0.0
    assert clipped.loc["neg", "yhat_lower"] == -2.0  # a series that was negative may be forecast negative


def test_quantile_columns_are_clipped_and_unknown_series_left_alone() -> None:
    frame = _band("a", [50.0], 80.0).assign(yhat_q95=[140.0])
    frame = pd.concat([frame, _band("b", [50.0], 80.0).assign(yhat_q95=[140.0])], ignore_index=True)
    clipped = clip_forecast(frame, series_bounds(_history("a", [1.0]), {"a": "percent"})).set_index("unique_id")
    assert clipped.loc["a", "yhat_q95"] == 100.0 and clipped.loc["a", "yhat_upper"] == 100.0
    assert clipped.loc["b", "yhat_q95"] == 140.0 and clipped.loc["b", "yhat_lower"] == -30.0


def test_a_malformed_bounds_frame_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="missing column"):
        clip_forecast(_band("a", [1.0], 1.0), pd.DataFrame({"unique_id": ["a"], "lo": [0.0]}))


def test_units_come_from_the_catalogue() -> None:
    catalogue = pd.DataFrame({"unique_id": ["a", "b"], "unit": ["percent", None]})
    assert units_from_catalogue(catalogue) == {"a": "percent"}


def test_clipping_never_lowers_coverage_of_feasible_actuals_nor_raises_point_error() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    lo, hi = 0.0, 100.0
    y = rng.uniform(lo, hi, n)  # feasible actuals
    yhat = y + rng.normal(0, 30, n)
    half = np.abs(rng.normal(25, 15, n))
    frame = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
                          "yhat": yhat, "yhat_lower": yhat - half, "yhat_upper": yhat + half})
    clipped = clip_forecast(frame, pd.DataFrame({"unique_id": ["s"], "lower": [lo], "upper": [hi]}))
    raw_inside = (y >= frame["yhat_lower"]) & (y <= frame["yhat_upper"])
    clipped_inside = (y >= clipped["yhat_lower"]) & (y <= clipped["yhat_upper"])
    assert points_outside(frame, pd.DataFrame({"unique_id": ["s"], "lower": [lo], "upper": [hi]})) > 0
    assert (clipped_inside | ~raw_inside).all(), "a point inside the raw band fell out of the clipped one"
    assert coverage(y, clipped["yhat_lower"], clipped["yhat_upper"]) >= coverage(y, frame["yhat_lower"],
                                                                                 frame["yhat_upper"])
    assert (np.abs(y - clipped["yhat"]) <= np.abs(y - frame["yhat"]) + 1e-12).all()
    assert (clipped["yhat_lower"] <= clipped["yhat_upper"]).all()


def _near_zero_series(n: int = 24 * 6) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    y = np.abs(rng.normal(1.0, 1.5, n)) * 60  # non-negative, noisy, near its floor: wide naive bands
    return pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
                         "y": np.clip(y, 0, 99)})


def test_backtests_score_the_bounded_forecast() -> None:
    df = _near_zero_series()
    unbounded = SeasonalNaive(24).fit(df, freq="h").predict(24, 80)
    assert unbounded["yhat_lower"].min() < 0 and unbounded["yhat_upper"].max() > 100  # the model alone leaves
    fc = backtest(SeasonalNaive(24), df, h=24, n_origins=2, level=80, season=24).forecasts
    assert fc["yhat_lower"].min() >= 0.0  # history never negative
    fc = backtest(SeasonalNaive(24), df, h=24, n_origins=2, level=80, season=24, units={"s": "percent"}).forecasts
    assert fc["yhat_lower"].min() >= 0.0 and fc["yhat_upper"].max() <= 100.0


class _Stop(Exception):
    pass


class _Chunks:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def map(self, *args: Any, **kwargs: Any) -> _Chunks:
        return self

    def result(self) -> list[pd.DataFrame]:
        return [self.frame]


def test_the_plan_and_the_store_receive_bounded_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    history = pd.concat([_history("web/i-1/mem_pct", [60.0, 64.0, 66.0]),
                         _history("web/i-1/cpu_pct", [5.0, 9.0, 7.0])], ignore_index=True)
    catalogue = pd.DataFrame({"unique_id": ["web/i-1/mem_pct", "web/i-1/cpu_pct"], "service": "web",
                              "resource_id": "i-1", "metric": ["mem_pct", "cpu_pct"], "instance_type": "m6i.large",
                              "unit": "percent", "source": "sim", "labels": "{}"})
    raw = pd.concat([_band("web/i-1/mem_pct", [95.0, 99.0, 99.0, 99.0], 22.1),
                     _band("web/i-1/cpu_pct", [5.0, 8.0, 8.0, 8.0], 45.0)], ignore_index=True)
    raw["ds"] = raw["ds"] + pd.Timedelta(days=30)
    model = SeasonalNaive(24)
    received: dict[str, pd.DataFrame] = {}

    def store(settings: Any, forecasts: pd.DataFrame, plan: pd.DataFrame, *args: Any) -> None:
        received.update(forecasts=forecasts, plan=plan)
        raise _Stop

    monkeypatch.setattr(flow_module, "settings_for_run", lambda config_file: Settings())
    monkeypatch.setattr(flow_module, "load_capacity_history", lambda settings: (history, catalogue))
    monkeypatch.setattr(flow_module, "load_champion_forecaster", lambda settings: (model, "7"))
    monkeypatch.setattr(flow_module, "forecast_chunk", _Chunks(raw))
    monkeypatch.setattr(flow_module, "store_results", store)
    monkeypatch.setattr(flow_module, "get_run_logger", lambda: logging.getLogger("test"))
    with pytest.raises(_Stop):
        flow_module.forecast_and_plan.fn()
    forecasts, plan = received["forecasts"], received["plan"]
    assert forecasts["yhat_upper"].max() == 100.0 and forecasts["yhat_lower"].min() == 0.0
    assert plan["peak_p90"].max() <= 100.0
    assert flow_module.served_forecasts([raw], history, catalogue)[1] == 8  # 4 uppers > 100, 4 lowers < 0
