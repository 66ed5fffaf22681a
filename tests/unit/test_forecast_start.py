"""The forecast-start check and the one memory target: a forecast that jumps away from the last
actual is flagged per series in the plan; memory rows are planned on the memory target that
rightsizing uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from foresight.settings import load_settings
from models.capacity.forecast_start import forecast_start_checks
from models.capacity.plan import capacity_plan

ORIGIN = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def _history(uid: str, level: float, last: float, seed: int = 0, n: int = 72) -> pd.DataFrame:
    """Hourly history around ``level`` (steps of ~0.5) ending with the value ``last``."""
    rng = np.random.default_rng(seed)
    y = level + np.cumsum(rng.normal(0, 0.5, n)) * 0.2 + rng.normal(0, 0.5, n)
    y[-1] = last
    ds = pd.date_range(end=ORIGIN, periods=n, freq="h")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


def _forecast(uid: str, start: float, half_width: float, h: int = 24) -> pd.DataFrame:
    ds = pd.date_range(ORIGIN + pd.Timedelta(hours=1), periods=h, freq="h")
    yhat = np.full(h, start)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": yhat, "yhat_lower": yhat - half_width,
                         "yhat_upper": yhat + half_width})


def test_a_forecast_starting_22_points_below_its_last_actual_is_flagged() -> None:
    # The demo's case: the last actual 72, the forecast starts at 50 with a band 2.6 wide.
    history = pd.concat([_history("jump", 70.0, 72.0), _history("calm", 40.0, 40.3, seed=1)])
    forecasts = pd.concat([_forecast("jump", 50.0, 1.3), _forecast("calm", 40.1, 1.3)])
    checks = forecast_start_checks(forecasts, history, k=5.0, window=48).set_index("unique_id")
    assert checks.loc["jump", "start_jump"] == pytest.approx(-22.0)
    warning = checks.loc["jump", "start_warning"]
    assert pd.notna(warning) and "22.0 below the last actual 72.0" in warning
    assert "step-1 band [48.7, 51.3] does not reach it within that noise" in warning
    assert pd.isna(checks.loc["calm", "start_warning"])
    assert 0.1 < checks.loc["calm", "start_noise"] < 2.0


def test_the_threshold_is_k_times_the_recent_step_noise() -> None:
    history = _history("s", 50.0, 50.0, seed=2)
    noise = float(history["y"].tail(49).diff().abs().median())
    near = forecast_start_checks(_forecast("s", 50.0 + 4.5 * noise, 1.0), history, k=5.0, window=48)
    far = forecast_start_checks(_forecast("s", 50.0 + 5.5 * noise, 1.0), history, k=5.0, window=48)
    assert pd.isna(near["start_warning"].iloc[0]) and pd.notna(far["start_warning"].iloc[0])
    assert near["start_noise"].iloc[0] == pytest.approx(noise)
    # A big jump whose step-1 band still holds the last actual is an honest forecast: not flagged.
    wide = forecast_start_checks(_forecast("s", 50.0 + 5.5 * noise, 10.0), history, k=5.0, window=48)
    assert pd.isna(wide["start_warning"].iloc[0])


def test_a_flat_series_is_not_flagged_for_a_hair() -> None:
    ds = pd.date_range(end=ORIGIN, periods=48, freq="h")
    history = pd.DataFrame({"unique_id": "flat", "ds": ds, "y": 40.0})
    checks = forecast_start_checks(_forecast("flat", 40.01, 0.5), history)
    assert pd.isna(checks["start_warning"].iloc[0])
    assert forecast_start_checks(_forecast("flat", 41.0, 0.5), history)["start_warning"].notna().iloc[0]


def test_bad_arguments_are_refused() -> None:
    history = _history("s", 50.0, 50.0)
    with pytest.raises(ValueError, match="k must be positive"):
        forecast_start_checks(_forecast("s", 50.0, 1.0), history, k=0.0)
    with pytest.raises(Exception, match="yhat_lower"):
        forecast_start_checks(_forecast("s", 50.0, 1.0).drop(columns="yhat_lower"), history)


def test_the_plan_records_the_flag_per_series() -> None:
    history = pd.concat([_history("svc/i-1/cpu_pct", 70.0, 72.0), _history("svc/i-1/mem_pct", 40.0, 40.2, seed=3)])
    forecasts = pd.concat([_forecast("svc/i-1/cpu_pct", 50.0, 1.3), _forecast("svc/i-1/mem_pct", 40.2, 1.3)])
    catalogue = pd.DataFrame({"unique_id": ["svc/i-1/cpu_pct", "svc/i-1/mem_pct"], "service": "svc",
                              "resource_id": "i-1", "metric": ["cpu_pct", "mem_pct"]})
    plan = capacity_plan(forecasts, history, {"cpu_pct": 90.0, "mem_pct": 90.0}, catalogue, 70.0).set_index("unique_id")
    assert plan.loc["svc/i-1/cpu_pct", "start_warning"].startswith("forecast starts 22.0 below")
    assert pd.isna(plan.loc["svc/i-1/mem_pct", "start_warning"])
    assert plan.loc["svc/i-1/cpu_pct", "current"] == pytest.approx(72.0)  # the last value of the history


def test_memory_rows_of_the_plan_use_the_memory_target_rightsizing_uses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path)
    forecasts = pd.concat([_forecast("svc/i-1/cpu_pct", 60.0, 10.0), _forecast("svc/i-1/mem_pct", 75.0, 10.0)])
    catalogue = pd.DataFrame({"unique_id": ["svc/i-1/cpu_pct", "svc/i-1/mem_pct"], "service": "svc",
                              "resource_id": "i-1", "metric": ["cpu_pct", "mem_pct"]})
    current = pd.DataFrame({"unique_id": ["svc/i-1/cpu_pct", "svc/i-1/mem_pct"], "y": [60.0, 75.0]})
    plan = capacity_plan(forecasts, current, settings.thresholds, catalogue, settings.forecast.target_utilisation,
                         settings.utilisation_targets()).set_index("unique_id")
    mem, cpu = plan.loc["svc/i-1/mem_pct"], plan.loc["svc/i-1/cpu_pct"]
    assert mem["target_utilisation"] == settings.capacity.memory_target_utilisation == 85.0
    assert mem["capacity_needed"] == pytest.approx(85.0 / 85.0)  # p90 85 % on an 85 % target: enough
    assert cpu["target_utilisation"] == settings.forecast.target_utilisation == 70.0
    assert cpu["capacity_needed"] == pytest.approx(70.0 / 70.0)
    # One setting: moving it moves the plan (rightsizing reads the same capacity.memory_target_utilisation).
    tighter = load_settings(home=tmp_path, capacity={"memory_target_utilisation": 70.0})
    assert tighter.utilisation_targets() == {"mem_pct": 70.0}
