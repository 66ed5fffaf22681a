"""Capacity plan: the median's runway, the band's earliest crossing and its probability, the
crossing dates' interval, and the capacity factor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from models.capacity.plan import PLAN_COLUMNS, capacity_plan

ORIGIN = pd.Timestamp("2026-03-01 00:00", tz="UTC")
H = 168  # one week, hourly


def _forecast(uid: str, p50: np.ndarray, spread: float) -> pd.DataFrame:
    ds = pd.date_range(ORIGIN + pd.Timedelta(hours=1), periods=len(p50), freq="h").as_unit("us")
    return pd.DataFrame(
        {"unique_id": uid, "ds": ds, "yhat": p50, "yhat_lower": p50 - spread, "yhat_upper": p50 + spread}
    )


@pytest.fixture
def inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    k = np.arange(1, H + 1)
    forecasts = pd.concat(
        [
            # p50 = 60 + 4/day reaches 80 at k = 120 h (day 5); p90 = p50 + 4 at 96 h (day 4);
            # p10 = p50 - 4 at 144 h.
            _forecast("cart/i-1/disk_pct", 60 + 4 * k / 24, 4.0),
            _forecast("cart/i-1/cpu_pct", np.full(H, 30.0), 5.0),
            _forecast("cart/i-1/request_rate", np.full(H, 900.0), 50.0),  # no threshold: not planned
        ],
        ignore_index=True,
    )
    current = pd.DataFrame(
        {
            "unique_id": ["cart/i-1/disk_pct", "cart/i-1/disk_pct", "cart/i-1/cpu_pct"],
            "ds": [ORIGIN - pd.Timedelta(hours=1), ORIGIN, ORIGIN],
            "y": [59.0, 60.0, 31.0],
        }
    )
    catalogue = pd.DataFrame(
        {
            "unique_id": ["cart/i-1/disk_pct", "cart/i-1/cpu_pct", "cart/i-1/request_rate"],
            "service": "cart",
            "resource_id": "i-1",
            "metric": ["disk_pct", "cpu_pct", "request_rate"],
        }
    )
    return forecasts, current, catalogue


Inputs = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def _plan(inputs: Inputs, current: pd.DataFrame | None = None) -> pd.DataFrame:
    forecasts, cur, catalogue = inputs
    return capacity_plan(
        forecasts, cur if current is None else current, {"disk_pct": 80.0, "cpu_pct": 80.0}, catalogue, 70.0
    )


def test_rising_series_crosses_on_the_right_day(inputs: Inputs) -> None:
    plan = _plan(inputs).set_index("unique_id")
    row = plan.loc["cart/i-1/disk_pct"]
    assert row["days_to_threshold"] == pytest.approx(5.0), "the runway is the median's crossing"
    assert row["threshold_date"] == ORIGIN + pd.Timedelta(days=5)
    assert row["days_to_threshold_earliest"] == pytest.approx(4.0), "the p90 band's crossing is the earliest"
    assert row["threshold_date_earliest"] == ORIGIN + pd.Timedelta(days=4)
    assert row["threshold_date_latest"] == ORIGIN + pd.Timedelta(days=6), "the p10 crossing closes the interval"
    assert bool(row["crosses_threshold"])
    # At the last step the median (88) is 8 above the threshold, the band's half-width 4 is 1.28 sigma.
    assert row["crossing_probability"] == pytest.approx(norm.cdf(8 / (4 / norm.ppf(0.9))))
    assert row["current"] == 60.0  # the latest sample, not the first
    assert row["peak_p90"] == pytest.approx(64 + 4 * 7)
    assert row["capacity_needed"] == pytest.approx((64 + 4 * 7) / 70.0)


def test_flat_series_never_crosses_and_has_enough_capacity(inputs: Inputs) -> None:
    row = _plan(inputs).set_index("unique_id").loc["cart/i-1/cpu_pct"]
    assert math.isnan(row["days_to_threshold"]) and math.isnan(row["days_to_threshold_earliest"])
    assert pd.isna(row["threshold_date"]) and pd.isna(row["threshold_date_latest"])
    assert not bool(row["crosses_threshold"])
    # 80 is 50 above the median, ten half-widths of the band: no chance worth the name.
    assert 0.0 <= row["crossing_probability"] < 1e-6
    assert row["capacity_needed"] == pytest.approx(35.0 / 70.0)
    assert row["capacity_needed"] <= 1.0


def test_plan_has_documented_columns_only_thresholded_series_and_most_urgent_first(inputs: Inputs) -> None:
    plan = _plan(inputs)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert list(plan["unique_id"]) == ["cart/i-1/disk_pct", "cart/i-1/cpu_pct"]
    assert set(plan["metric"]) == {"disk_pct", "cpu_pct"}


def test_origin_is_inferred_from_the_forecast_grid_without_current_timestamps(inputs: Inputs) -> None:
    current = inputs[1].drop(columns="ds").groupby("unique_id", as_index=False).last()
    row = _plan(inputs, current=current).set_index("unique_id").loc["cart/i-1/disk_pct"]
    assert row["days_to_threshold"] == pytest.approx(5.0)


def test_plan_rejects_a_non_positive_target(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    with pytest.raises(ValueError, match="target_utilisation"):
        capacity_plan(forecasts, current, {"disk_pct": 80.0}, catalogue, 0.0)


def test_plan_is_empty_when_no_metric_has_a_threshold(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    plan = capacity_plan(forecasts, current, {"latency_p95": 0.5}, catalogue, 70.0)
    assert plan.empty and list(plan.columns) == list(PLAN_COLUMNS)


def test_a_flat_median_far_below_gets_no_short_runway_only_a_probability(inputs: Inputs) -> None:
    """The issue's mem_pct: median flat at 65.7 % against 90 %, its p90 band widening past 100 %
    within a day. The runway is not the band's 1.4 days: it is beyond the horizon, the band's
    crossing is shown as the earliest plausible one, with the chance the band gives it."""
    forecasts, current, catalogue = inputs
    k = np.arange(1, H + 1)
    upper = np.minimum(66.0 + k, 121.0)  # reaches 90 at k = 24 h, flat at 121 from k = 55 h
    flat = pd.DataFrame({"unique_id": "search/i-9/mem_pct", "ds": forecasts["ds"].iloc[:H].to_numpy(),
                         "yhat": 65.7, "yhat_lower": 60.0, "yhat_upper": upper})
    catalogue = pd.concat([catalogue, pd.DataFrame({"unique_id": ["search/i-9/mem_pct"], "service": "search",
                                                    "resource_id": "i-9", "metric": "mem_pct"})])
    current = pd.concat([current, pd.DataFrame({"unique_id": ["search/i-9/mem_pct"], "ds": [ORIGIN],
                                                "y": [65.0]})])
    plan = capacity_plan(pd.concat([forecasts, flat]), current, {"disk_pct": 80.0, "cpu_pct": 80.0, "mem_pct": 90.0},
                         catalogue, 70.0)
    row = plan.set_index("unique_id").loc["search/i-9/mem_pct"]
    assert math.isnan(row["days_to_threshold"]) and not bool(row["crosses_threshold"])
    assert row["days_to_threshold_earliest"] == pytest.approx(1.0)
    expected = norm.sf((90.0 - 65.7) / ((121.0 - 65.7) / norm.ppf(0.9)))  # the widest step's chance
    assert row["crossing_probability"] == pytest.approx(expected)
    assert 0.1 < row["crossing_probability"] < 0.5
    # Most urgent first: the median crossing, then the likelier of the two that do not cross.
    assert plan["unique_id"].tolist() == ["cart/i-1/disk_pct", "search/i-9/mem_pct", "cart/i-1/cpu_pct"]


def test_a_wider_band_means_a_higher_crossing_probability(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    narrow = capacity_plan(forecasts, current, {"cpu_pct": 40.0}, catalogue, 70.0)
    wide = capacity_plan(forecasts.assign(yhat_upper=forecasts["yhat"] + 15), current, {"cpu_pct": 40.0},
                         catalogue, 70.0)
    assert narrow["crossing_probability"].iloc[0] < wide["crossing_probability"].iloc[0] < 0.5


def test_the_level_sets_what_the_band_means(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    # cpu's band tops out at exactly 35: at an 80 % band that is a 10 % chance, at 90 % a 5 % one.
    plans = {level: capacity_plan(forecasts, current, {"cpu_pct": 35.0}, catalogue, 70.0, level=level)
             for level in (80, 90)}
    assert plans[80]["crossing_probability"].iloc[0] == pytest.approx(0.10)
    assert plans[90]["crossing_probability"].iloc[0] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="interval level"):
        capacity_plan(forecasts, current, {"cpu_pct": 35.0}, catalogue, 70.0, level=100)
