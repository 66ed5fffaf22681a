"""Capacity plan: threshold crossing dates, their interval, and the capacity factor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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
            # p50 = 60 + 4/day; p90 = p50 + 4 reaches 80 at k = 96 h (day 4); p10 = p50 - 4 at 144 h.
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
    assert row["days_to_threshold"] == pytest.approx(4.0)
    assert row["threshold_date"] == ORIGIN + pd.Timedelta(days=4)
    assert row["threshold_date_earliest"] == row["threshold_date"]
    assert row["threshold_date_latest"] == ORIGIN + pd.Timedelta(days=6), "the p10 crossing closes the interval"
    assert bool(row["crosses_threshold"])
    assert row["current"] == 60.0  # the latest sample, not the first
    assert row["peak_p90"] == pytest.approx(64 + 4 * 7)
    assert row["capacity_needed"] == pytest.approx((64 + 4 * 7) / 70.0)


def test_flat_series_never_crosses_and_has_enough_capacity(inputs: Inputs) -> None:
    row = _plan(inputs).set_index("unique_id").loc["cart/i-1/cpu_pct"]
    assert math.isnan(row["days_to_threshold"])
    assert pd.isna(row["threshold_date"]) and pd.isna(row["threshold_date_latest"])
    assert not bool(row["crosses_threshold"])
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
    assert row["days_to_threshold"] == pytest.approx(4.0)


def test_plan_rejects_a_non_positive_target(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    with pytest.raises(ValueError, match="target_utilisation"):
        capacity_plan(forecasts, current, {"disk_pct": 80.0}, catalogue, 0.0)


def test_plan_is_empty_when_no_metric_has_a_threshold(inputs: Inputs) -> None:
    forecasts, current, catalogue = inputs
    plan = capacity_plan(forecasts, current, {"latency_p95": 0.5}, catalogue, 70.0)
    assert plan.empty and list(plan.columns) == list(PLAN_COLUMNS)
