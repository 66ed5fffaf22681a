"""Rightsizing from forecast upper quantiles: choices, costs, exceed probability, and behaviour
against history-percentile sizing."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from connectors.sinks.aws.instances import bundled_table
from connectors.sinks.forecast_store_schema import RIGHTSIZING_COLUMNS as STORE_COLUMNS
from models.capacity.rightsizing import (
    HOURS_PER_MONTH,
    RIGHTSIZING_COLUMNS,
    choose_instance_type,
    fleet_from_catalogue,
    history_percentile_demand,
    rightsize,
)

START = pd.Timestamp("2026-03-01", tz="UTC")
FAMILIES = ["m5", "m6i", "c5", "c6i", "r5", "r6i"]
LEVEL = 80
Z = NormalDist().inv_cdf(0.5 + LEVEL / 200)


@pytest.fixture(scope="module")
def instances() -> pd.DataFrame:
    return bundled_table()


def _catalogue(service: str, instance_type: str, n_instances: int = 2) -> pd.DataFrame:
    rows = [
        (f"{service}/i-{k}/{metric}", service, f"i-{k}", metric, instance_type)
        for k in range(n_instances)
        for metric in ("cpu_pct", "mem_pct")
    ]
    return pd.DataFrame(rows, columns=["unique_id", "service", "resource_id", "metric", "instance_type"])


def _history(level: float, slope_per_day: float, days: int = 14, seed: int = 0) -> pd.Series:
    """Hourly utilisation: a level, a linear trend, a daily cycle (+-5 points) and noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    y = (
        level
        + slope_per_day * hours / 24
        + 5 * np.sin(2 * np.pi * hours / 24)
        + rng.normal(0, 1.5, hours.size)
    )
    return pd.Series(y, index=pd.date_range(START, periods=hours.size, freq="h"))


def _trend_forecast(history: pd.Series, horizon: int = 168) -> pd.DataFrame:
    """A small honest forecaster: least-squares trend + hour-of-day profile, interval from residuals."""
    t = np.arange(history.size)
    slope, intercept = np.polyfit(t, history.to_numpy(), 1)
    detrended = history.to_numpy() - (slope * t + intercept)
    profile = pd.Series(detrended).groupby(t % 24).mean().to_numpy()
    sigma = np.std(detrended - profile[t % 24])
    future = np.arange(history.size, history.size + horizon)
    yhat = slope * future + intercept + profile[future % 24]
    ds = pd.date_range(history.index[-1] + pd.Timedelta(hours=1), periods=horizon, freq="h")
    return pd.DataFrame(
        {"ds": ds, "yhat": yhat, "yhat_lower": yhat - Z * sigma, "yhat_upper": yhat + Z * sigma}
    )


def _fleet_forecasts(service: str, cpu: pd.Series, mem: pd.Series, n_instances: int = 2) -> pd.DataFrame:
    parts = []
    for k in range(n_instances):
        for metric, hist in (("cpu_pct", cpu), ("mem_pct", mem)):
            parts.append(_trend_forecast(hist).assign(unique_id=f"{service}/i-{k}/{metric}"))
    return pd.concat(parts, ignore_index=True)


def _rightsize(
    forecasts: pd.DataFrame, catalogue: pd.DataFrame, instances: pd.DataFrame, **kw
) -> pd.DataFrame:
    fleet = fleet_from_catalogue(catalogue)
    kw.setdefault("target_utilisation", 70.0)
    return rightsize(
        forecasts,
        catalogue,
        fleet,
        instances,
        level=LEVEL,
        allowed_families=kw.pop("allowed_families", FAMILIES),
        price_source="test",
        **kw,
    )


def _vcpu(instances: pd.DataFrame, instance_type: str) -> float:
    return float(instances.set_index("instance_type").loc[instance_type, "vcpu"])


def test_rising_trend_upsizes_where_history_p95_would_keep(instances: pd.DataFrame) -> None:
    cpu, mem = _history(30.0, slope_per_day=1.8), _history(40.0, slope_per_day=0.0, seed=1)
    catalogue = _catalogue("api", "m6i.xlarge")
    # What a history-percentile rightsizer sees: the p95 of the lookback on today's type.
    p95_cpu = history_percentile_demand(cpu.to_frame("y")) / 100 * 4
    p95_mem = history_percentile_demand(mem.to_frame("y")) / 100 * 16
    by_history = choose_instance_type(
        p95_cpu, p95_mem, "m6i.xlarge", instances, target_utilisation=70.0, allowed_families=FAMILIES
    )
    assert by_history.action == "keep" and by_history.instance_type == "m6i.xlarge"

    out = _rightsize(_fleet_forecasts("api", cpu, mem), catalogue, instances).set_index("service")
    row = out.loc["api"]
    assert row["action"] == "upsize"
    assert _vcpu(instances, row["recommended_instance_type"]) > 4
    assert row["demand_vcpu"] > 0.7 * 4 > p95_cpu  # the forecast peak exceeds today's target line
    assert row["peak_upper_utilisation"] <= 70.0 + 1e-9
    assert row["monthly_savings"] < 0  # more capacity costs more
    assert "m6i.xlarge would run CPU at 7" in row["reason"] and "memory at" not in row["reason"]
    assert row["current_exceed_probability"] > row["exceed_probability"]


@pytest.mark.parametrize("cpu_level", [10.0, 30.0, 45.0, 55.0])
@pytest.mark.parametrize("instance_type", ["m6i.xlarge", "c6i.2xlarge", "r6i.large"])
def test_flat_series_never_gets_a_scale_up(
    instances: pd.DataFrame, cpu_level: float, instance_type: str
) -> None:
    cpu, mem = _history(cpu_level, 0.0, seed=2), _history(45.0, 0.0, seed=3)
    out = _rightsize(_fleet_forecasts("svc", cpu, mem), _catalogue("svc", instance_type), instances)
    row = out.iloc[0]
    assert row["action"] in ("keep", "downsize")
    rec = instances.set_index("instance_type").loc[row["recommended_instance_type"]]
    cur = instances.set_index("instance_type").loc[instance_type]
    assert rec["vcpu"] <= cur["vcpu"] and row["monthly_savings"] >= 0


def test_downsize_saves_the_price_difference_for_every_instance(instances: pd.DataFrame) -> None:
    cpu, mem = _history(15.0, 0.0, seed=4), _history(20.0, 0.0, seed=5)
    out = _rightsize(
        _fleet_forecasts("web", cpu, mem, n_instances=3), _catalogue("web", "m6i.2xlarge", 3), instances
    )
    row = out.iloc[0]
    prices = instances.set_index("instance_type")["usd_per_hour"]
    assert row["action"] == "downsize" and row["instance_count"] == 3
    assert row["current_monthly_cost"] == pytest.approx(prices["m6i.2xlarge"] * HOURS_PER_MONTH * 3)
    expected = (prices["m6i.2xlarge"] - prices[row["recommended_instance_type"]]) * HOURS_PER_MONTH * 3
    assert row["monthly_savings"] == pytest.approx(expected)
    # It is the cheapest type of the allowed families that holds the demand at target.
    fits = instances[
        instances["family"].isin(FAMILIES)
        & (instances["vcpu"] * 0.7 >= row["demand_vcpu"])
        & (instances["memory_gib"] * 0.7 >= row["demand_memory_gib"])
    ]
    assert prices[row["recommended_instance_type"]] == fits["usd_per_hour"].min()


def test_memory_bound_service_moves_to_a_memory_optimised_type(instances: pd.DataFrame) -> None:
    cpu, mem = _history(10.0, 0.0, seed=6), _history(85.0, 0.0, seed=7)  # on c6i.xlarge: 8 GiB
    row = _rightsize(_fleet_forecasts("cache", cpu, mem), _catalogue("cache", "c6i.xlarge"), instances).iloc[
        0
    ]
    assert row["action"] == "upsize" and row["recommended_instance_type"].startswith(
        ("r5", "r6i", "m5", "m6i")
    )
    assert "memory binds" in row["reason"]


def test_exceed_probability_reads_the_interval_as_a_normal_band(instances: pd.DataFrame) -> None:
    """With the recommended capacity exactly at the upper bound, P(exceed) is the interval's upper tail."""
    ds = pd.date_range(START, periods=4, freq="h")
    catalogue = _catalogue("svc", "m6i.large", 1).query("metric == 'cpu_pct'")
    fc = pd.DataFrame(
        {
            "unique_id": "svc/i-0/cpu_pct",
            "ds": ds,
            "yhat": [100.0, 120.0, 150.0, 110.0],
            "yhat_upper": [150.0, 170.0, 200.0, 160.0],
        }
    )
    # 200 % of m6i.large = 4 vCPU = m6i.xlarge at a 100 % target.
    row = _rightsize(fc, catalogue, instances, target_utilisation=100.0, allowed_families=["m6i"]).iloc[0]
    assert row["recommended_instance_type"] == "m6i.xlarge"
    assert row["exceed_probability"] == pytest.approx(0.10, abs=1e-9)
    assert np.isnan(row["demand_memory_gib"])  # memory not forecast: not sized
    # More headroom, smaller risk.
    row70 = _rightsize(fc, catalogue, instances, target_utilisation=70.0, allowed_families=["m6i"]).iloc[0]
    assert row70["recommended_instance_type"] == "m6i.2xlarge" and row70["exceed_probability"] < 1e-6


def test_choose_keeps_a_current_type_outside_the_allowed_families_when_cheapest(
    instances: pd.DataFrame,
) -> None:
    choice = choose_instance_type(
        0.4, 1.5, "t3.medium", instances, target_utilisation=70.0, allowed_families=FAMILIES
    )
    assert (choice.instance_type, choice.action, choice.current_fits) == ("t3.medium", "keep", True)


def test_choose_reports_when_nothing_fits_and_skips_unpriced_types(instances: pd.DataFrame) -> None:
    assert (
        choose_instance_type(
            500.0, 1.0, "m6i.large", instances, target_utilisation=70.0, allowed_families=FAMILIES
        ).action
        == "none_fits"
    )
    unpriced = instances.assign(
        usd_per_hour=np.where(instances["instance_type"] == "c6i.large", np.nan, instances["usd_per_hour"])
    )
    choice = choose_instance_type(
        1.0, 2.0, "m6i.xlarge", unpriced, target_utilisation=70.0, allowed_families=["c6i"]
    )
    assert choice.instance_type == "c6i.xlarge"


def test_unknown_instance_type_and_missing_forecast_are_reported_not_dropped(instances: pd.DataFrame) -> None:
    catalogue = pd.concat([_catalogue("a", "x9.mega"), _catalogue("b", "m6i.large")])
    cpu, mem = _history(20.0, 0.0), _history(20.0, 0.0)
    fc = _fleet_forecasts("a", cpu, mem)
    out = _rightsize(fc, catalogue, instances).set_index("service")
    assert out.loc["a", "action"] == "unknown_type" and "x9.mega" in out.loc["a", "reason"]
    assert out.loc["b", "action"] == "no_forecast" and pd.isna(out.loc["b", "recommended_instance_type"])
    assert out.loc["b", "current_monthly_cost"] > 0


def test_fleet_from_catalogue_counts_resources_and_applies_overrides() -> None:
    catalogue = pd.concat([_catalogue("a", "m6i.large", 3), _catalogue("b", "c6i.large", 2)])
    fleet = fleet_from_catalogue(
        catalogue,
        {
            "b": {"instance_type": "c5.xlarge", "instance_count": 4},
            "c": {"instance_type": "r5.large", "instance_count": 2},
        },
    )
    assert fleet.values.tolist() == [["a", "m6i.large", 3], ["b", "c5.xlarge", 4], ["c", "r5.large", 2]]


def test_bad_arguments_raise_clear_errors(instances: pd.DataFrame) -> None:
    fc = pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_upper"])
    catalogue = _catalogue("a", "m6i.large")
    with pytest.raises(ValueError, match="target_utilisation"):
        _rightsize(fc, catalogue, instances, target_utilisation=0.0)
    with pytest.raises(Exception, match="yhat_upper"):
        _rightsize(fc.drop(columns="yhat_upper"), catalogue, instances)


def test_columns_match_the_forecast_store_table() -> None:
    assert RIGHTSIZING_COLUMNS == STORE_COLUMNS


def test_memory_has_its_own_target(instances: pd.DataFrame) -> None:
    cpu, mem = _history(20.0, 0.0, seed=8), _history(72.0, 0.0, seed=9)  # memory p90 ~ 75 % of 16 GiB
    catalogue = _catalogue("cart", "r6i.large")
    tight = _rightsize(_fleet_forecasts("cart", cpu, mem), catalogue, instances).iloc[0]
    assert tight["action"] == "upsize" and "memory at 7" in tight["reason"]
    roomy = _rightsize(
        _fleet_forecasts("cart", cpu, mem), catalogue, instances, memory_target_utilisation=85.0
    ).iloc[0]
    assert roomy["action"] == "keep" and "memory 85 %" in roomy["reason"]


def test_steps_without_an_interval_use_the_point_forecast(instances: pd.DataFrame) -> None:
    ds = pd.date_range(START, periods=3, freq="h")
    catalogue = _catalogue("svc", "m6i.large", 1).query("metric == 'cpu_pct'")
    fc = pd.DataFrame(
        {
            "unique_id": "svc/i-0/cpu_pct",
            "ds": ds,
            "yhat": [20.0, 95.0, 20.0],
            "yhat_upper": [30.0, np.nan, 30.0],
        }
    )
    row = _rightsize(fc, catalogue, instances).iloc[0]
    assert row["demand_vcpu"] == pytest.approx(0.95 * 2) and row["action"] == "upsize"
