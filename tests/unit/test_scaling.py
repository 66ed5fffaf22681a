"""Predictive scaling: scheduled actions ahead of forecast peaks, bounded, merged, named deterministically."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from connectors.forecast_store import SCALING_ACTION_COLUMNS as STORE_COLUMNS
from models.scaling import (
    SCALING_ACTION_COLUMNS,
    ScalingGroup,
    action_name,
    desired_capacity,
    scaling_actions,
)

START = pd.Timestamp("2026-03-02", tz="UTC")
GROUP = ScalingGroup("api", "api-asg", vcpu_per_instance=4.0, min_size=2, max_size=10)
LEAD = timedelta(minutes=20)


def _forecast(
    per_instance_upper: list[float], n_instances: int = 2, metric: str = "cpu_pct"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hourly forecasts where every instance's upper bound follows ``per_instance_upper`` (%)."""
    ds = pd.date_range(START, periods=len(per_instance_upper), freq="h")
    upper = np.asarray(per_instance_upper, dtype="float64")
    fc = pd.concat(
        [
            pd.DataFrame(
                {"unique_id": f"api/i-{k}/{metric}", "ds": ds, "yhat": upper - 5, "yhat_upper": upper}
            )
            for k in range(n_instances)
        ],
        ignore_index=True,
    )
    catalogue = pd.DataFrame(
        {"unique_id": [f"api/i-{k}/{metric}" for k in range(n_instances)], "service": "api", "metric": metric}
    )
    return fc, catalogue


def _plan(upper: list[float], group: ScalingGroup = GROUP, **kw) -> pd.DataFrame:
    fc, catalogue = _forecast(upper)
    kw.setdefault("lead", LEAD)
    return scaling_actions(fc, catalogue, [group], target_utilisation=70.0, **kw)


def test_desired_capacity_is_demand_over_per_instance_target_rounded_up_and_bounded() -> None:
    # 6.4 vCPU / (4 vCPU x 70 %) = 2.29 -> 3; 0 -> min 2; 100 vCPU -> max 10; exact 5.6 -> 2 (no float creep).
    got = desired_capacity(np.array([6.4, 0.0, 100.0, 5.6]), GROUP, 70.0)
    assert got.tolist() == [3, 2, 10, 2]


def test_scale_out_starts_lead_before_the_peak_and_scales_in_after_it() -> None:
    # 2 instances x 4 vCPU: 40 % -> 3.2 vCPU -> 2 instances; 90 % -> 7.2 vCPU -> 3 instances.
    upper = [40.0] * 4 + [90.0] * 3 + [40.0] * 5
    plan = _plan(upper)
    assert list(plan.columns) == list(SCALING_ACTION_COLUMNS)
    starts = plan["start_time"].tolist()
    assert plan["desired_capacity"].tolist() == [2, 3, 2]
    assert starts[0] == START - LEAD
    assert starts[1] == START + pd.Timedelta(hours=4) - LEAD  # ready before the 04:00 step
    assert starts[2] == START + pd.Timedelta(hours=7)  # only after the last peak step has passed
    assert plan["action_name"].tolist() == [action_name("api", t) for t in starts]
    assert plan["action_name"].iloc[1] == "foresight-api-20260302T0340Z"
    assert (plan[["min_size", "max_size"]].values == [2, 10]).all()


def test_capacity_never_leaves_the_group_bounds() -> None:
    plan = _plan([1.0] * 3 + [500.0] * 3 + [1.0] * 3)
    assert plan["desired_capacity"].tolist() == [2, 10, 2]


def test_short_dips_are_not_scaled_in_but_long_ones_are() -> None:
    upper = [90.0] * 3 + [40.0] + [90.0] * 3 + [40.0] * 4
    held = _plan(upper, min_hold=timedelta(hours=2))
    assert held["desired_capacity"].tolist() == [3, 2]  # one-hour dip filled, adjacent actions merged
    unheld = _plan(upper, min_hold=timedelta(0))
    assert unheld["desired_capacity"].tolist() == [3, 2, 3, 2]


def test_same_forecast_same_actions() -> None:
    upper = list(50 + 40 * np.sin(np.linspace(0, 4 * np.pi, 48)))
    pd.testing.assert_frame_equal(_plan(upper), _plan(upper))
    assert _plan(upper)["action_name"].is_unique


def test_not_before_drops_past_actions_and_starts_the_current_one_now() -> None:
    upper = [40.0] * 4 + [90.0] * 3 + [40.0] * 5
    now = START + pd.Timedelta(hours=5, seconds=10)
    plan = _plan(upper, not_before=now)
    assert plan["start_time"].tolist() == [
        START + pd.Timedelta(hours=5, minutes=1),
        START + pd.Timedelta(hours=7),
    ]
    assert plan["desired_capacity"].tolist() == [3, 2]
    # The clamped action keeps the name of its planned start: a re-run later reuses it.
    assert plan["action_name"].tolist() == [
        action_name("api", START + pd.Timedelta(hours=4) - LEAD),
        action_name("api", START + pd.Timedelta(hours=7)),
    ]
    later = _plan(upper, not_before=now + pd.Timedelta(minutes=30))
    assert later["action_name"].tolist() == plan["action_name"].tolist()


@pytest.mark.parametrize("level", [10.0, 35.0, 60.0])
def test_flat_forecast_never_schedules_a_scale_out(level: float) -> None:
    rng = np.random.default_rng(int(level))
    plan = _plan(list(level + rng.uniform(-3, 3, 72)))
    assert len(plan) == 1 and plan["desired_capacity"].iloc[0] <= 2


def test_only_cpu_series_of_planned_groups_count() -> None:
    fc, catalogue = _forecast([95.0] * 6, metric="mem_pct")
    assert scaling_actions(fc, catalogue, [GROUP], target_utilisation=70.0).empty
    other = ScalingGroup("other", "other-asg", 4.0, 1, 4)
    fc, catalogue = _forecast([95.0] * 6)
    assert set(scaling_actions(fc, catalogue, [GROUP, other], target_utilisation=70.0)["service"]) == {"api"}


def test_bad_groups_and_arguments_raise() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        ScalingGroup("a", "a-asg", 2.0, 5, 3)
    with pytest.raises(ValueError, match="asg_name"):
        ScalingGroup("a", "", 2.0, 1, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        _plan([50.0] * 3, not_before=pd.Timestamp("2026-03-02 01:00"))
    with pytest.raises(ValueError, match="target_utilisation"):
        desired_capacity(np.array([1.0]), GROUP, 0.0)


def test_columns_match_the_forecast_store_table() -> None:
    assert SCALING_ACTION_COLUMNS == STORE_COLUMNS
