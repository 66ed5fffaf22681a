"""Predictive scaling: scheduled actions ahead of forecast peaks, bounded, merged, named
deterministically, and within the guard rails (live bounds, ramps, sane forecasts)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from connectors.sinks.aws.autoscaling import bounds_request
from connectors.sinks.forecast_store_schema import SCALING_ACTION_COLUMNS as STORE_COLUMNS
from foresight.scaling_schema import BOUNDS, GROUP_UNREADABLE, SCALING_ACTION_COLUMNS, LiveGroup
from models.capacity.scaling import (
    ScalingGroup,
    ScalingPlan,
    action_name,
    desired_capacity,
    plan_scaling,
)
from models.capacity.scaling_guards import BEYOND_HISTORY, NEGATIVE, NON_FINITE, ScalingLimits, limit_changes

START = pd.Timestamp("2026-03-02", tz="UTC")
GROUP = ScalingGroup("api", "api-asg", vcpu_per_instance=4.0, min_size=2, max_size=10)
LEAD = timedelta(minutes=20)
# Wide limits for the tests of planning itself (the guard-rail tests set their own).
NO_LIMITS = ScalingLimits(max_step=10_000, max_per_hour=10_000, max_forecast_ratio=1_000.0)


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


def _history(fc: pd.DataFrame, peak: float | None = None) -> pd.DataFrame:
    """The forecasts' own values a week earlier as history (or a flat history at ``peak`` %)."""
    past = fc.rename(columns={"yhat_upper": "y"})[["unique_id", "ds", "y"]].copy()
    past["ds"] = past["ds"] - pd.Timedelta(days=7)
    if peak is not None:
        past["y"] = peak
    return past


def _run(upper: list[float], group: ScalingGroup = GROUP, *, history_peak: float | None = None,
         **kw) -> ScalingPlan:
    fc, catalogue = _forecast(upper)
    kw.setdefault("lead", LEAD)
    kw.setdefault("limits", NO_LIMITS)
    history = _history(fc.assign(yhat_upper=fc["yhat_upper"].clip(0, 1e6).fillna(0)), history_peak)
    return plan_scaling(fc, catalogue, [group], target_utilisation=70.0, history=history, **kw)


def _plan(upper: list[float], group: ScalingGroup = GROUP, **kw) -> pd.DataFrame:
    plan = _run(upper, group, **kw)
    assert plan.refusals.empty, plan.refusals.to_dict("records")
    return plan.actions


def test_desired_capacity_is_demand_over_per_instance_target_rounded_up_and_bounded() -> None:
    # 6.4 vCPU / (4 vCPU x 70 %) = 2.29 -> 3; 0 -> min 2; 100 vCPU -> max 10; exact 5.6 -> 2 (no float creep).
    got = desired_capacity(np.array([6.4, 0.0, 100.0, 5.6]), 4.0, 70.0, (2, 10))
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
    plan = plan_scaling(fc, catalogue, [GROUP], target_utilisation=70.0, history=_history(fc))
    assert plan.actions.empty and plan.refusals.empty
    other = ScalingGroup("other", "other-asg", 4.0, 1, 4)
    fc, catalogue = _forecast([95.0] * 6)
    plan = plan_scaling(fc, catalogue, [GROUP, other], target_utilisation=70.0, history=_history(fc))
    assert set(plan.actions["service"]) == {"api"}


def test_bad_groups_and_arguments_raise() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        ScalingGroup("a", "a-asg", 2.0, 5, 3)
    with pytest.raises(ValueError, match="asg_name"):
        ScalingGroup("a", "", 2.0, 1, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        _plan([50.0] * 3, not_before=pd.Timestamp("2026-03-02 01:00"))
    with pytest.raises(ValueError, match="target_utilisation"):
        desired_capacity(np.array([1.0]), 4.0, 0.0, (2, 10))
    with pytest.raises(ValueError, match="max_step"):
        ScalingLimits(max_step=0)


def test_columns_match_the_forecast_store_table() -> None:
    assert SCALING_ACTION_COLUMNS == STORE_COLUMNS


# -- guard rails (issue 12, case 3) ---------------------------------------------------------------
LIVE = {"api-asg": LiveGroup(min_size=3, max_size=10, desired_capacity=4)}
UNSET = ScalingGroup("api", "api-asg", vcpu_per_instance=4.0)  # bounds: the group's own


def _assert_within_limits(actions: pd.DataFrame, start: int, step: int, hourly: int) -> None:
    """No action moves desired capacity by more than ``step``; none of the 60-minute windows
    ending at an action holds more than ``hourly`` of change."""
    capacity = [start, *actions["desired_capacity"].tolist()]
    change = np.abs(np.diff(capacity))
    assert change.max(initial=0) <= step, list(zip(actions["start_time"], capacity[1:], strict=True))
    times = actions["start_time"].tolist()
    for end in times:
        window = sum(c for t, c in zip(times, change, strict=True) if end - pd.Timedelta(hours=1) < t <= end)
        assert window <= hourly, (end, window)


def test_case_3a_an_unset_min_size_keeps_the_groups_live_floor() -> None:
    # 10 % of two 4-vCPU instances needs one instance; the group's live floor is 3.
    plan = _plan([10.0] * 12, UNSET, live=LIVE)
    assert not plan.empty
    assert (plan["min_size"] == 3).all() and (plan["max_size"] == 10).all()
    assert plan["desired_capacity"].min() == 3


@pytest.mark.parametrize(
    ("flags", "bounds"),
    [
        ({}, (3, 10)),  # the floor is not lowered and the ceiling not raised without permission
        ({"allow_lower_min": True}, (1, 10)),
        ({"allow_raise_max": True}, (3, 20)),
        ({"allow_lower_min": True, "allow_raise_max": True}, (1, 20)),
    ],
)
def test_configured_bounds_beyond_the_live_ones_need_explicit_permission(
    flags: dict[str, bool], bounds: tuple[int, int]
) -> None:
    group = ScalingGroup("api", "api-asg", 4.0, min_size=1, max_size=20, **flags)
    low = _plan([10.0] * 12, group, live=LIVE)
    assert (low["min_size"].iloc[0], low["max_size"].iloc[0]) == bounds
    assert low["desired_capacity"].min() == bounds[0]
    high = _plan([1000.0] * 12, group, live=LIVE)  # 80 vCPU: 29 instances wanted
    assert high["desired_capacity"].max() == bounds[1]


def test_a_configured_floor_above_the_live_one_is_honoured() -> None:
    group = ScalingGroup("api", "api-asg", 4.0, min_size=5)
    plan = _plan([10.0] * 12, group, live=LIVE)
    assert (plan["min_size"] == 5).all() and plan["desired_capacity"].min() == 5


def test_groups_without_known_bounds_are_refused_not_guessed() -> None:
    unread = _run([40.0] * 12, UNSET, live={"api-asg": "AccessDenied: autoscaling:Describe*"})
    assert unread.actions.empty and unread.refusals["check"].tolist() == [GROUP_UNREADABLE]
    assert "AccessDenied" in unread.refusals["reason"].iloc[0]
    missing = _run([40.0] * 12, UNSET, live={})
    assert missing.actions.empty and "not found" in missing.refusals["reason"].iloc[0]
    offline = _run([40.0] * 12, UNSET)  # AWS off: no live bounds, none configured
    assert offline.actions.empty and offline.refusals["check"].tolist() == [BOUNDS]
    above = _run([40.0] * 12, ScalingGroup("api", "api-asg", 4.0, min_size=12), live=LIVE)
    assert above.actions.empty and "ceiling" in above.refusals["reason"].iloc[0]


@pytest.mark.parametrize(("spike", "check"), [(1e12, BEYOND_HISTORY), (np.inf, NON_FINITE), (np.nan, NON_FINITE)])
def test_case_3b_one_absurd_step_refuses_the_group_instead_of_scaling_to_max(spike: float, check: str) -> None:
    upper = [40.0] * 6 + [spike] + [40.0] * 5
    plan = _run(upper, UNSET, live=LIVE, history_peak=45.0, limits=ScalingLimits())
    assert plan.actions.empty
    assert plan.refusals[["service", "asg_name", "check"]].values.tolist() == [["api", "api-asg", check]]
    assert plan.refused_groups == ["api-asg"]


def test_case_3c_an_all_nan_forecast_is_refused_not_read_as_zero_demand() -> None:
    plan = _run([float("nan")] * 12, GROUP, history_peak=45.0)
    assert plan.actions.empty
    assert plan.refusals["check"].tolist() == [NON_FINITE]
    assert "24 of 24" in plan.refusals["reason"].iloc[0] and "NaN" in plan.refusals["reason"].iloc[0]


def test_case_3d_a_negative_forecast_is_refused_even_with_min_size_0() -> None:
    zero_floor = ScalingGroup("api", "api-asg", 4.0, min_size=0, max_size=10)
    plan = _run([-5.0] * 12, zero_floor, history_peak=45.0)
    assert plan.actions.empty and plan.refusals["check"].tolist() == [NEGATIVE]
    # min_size 0 in config does not take a live floor of 3 down to 0 on a near-idle forecast.
    idle = _plan([0.0] * 12, zero_floor, live=LIVE)
    assert idle["desired_capacity"].min() == 3


def test_forecast_within_the_history_bound_is_planned_beyond_it_refused() -> None:
    # History peak: 2 x 40 % x 4 vCPU = 3.2 vCPU, floored at one instance (4 vCPU): bound 12 vCPU.
    within = _run([40.0] * 6 + [140.0] * 6, GROUP, history_peak=40.0, limits=ScalingLimits(max_forecast_ratio=3.0))
    assert within.refusals.empty and within.actions["desired_capacity"].max() == 4  # 11.2 vCPU
    beyond = _run([40.0] * 6 + [160.0] * 6, GROUP, history_peak=40.0, limits=ScalingLimits(max_forecast_ratio=3.0))
    assert beyond.actions.empty and beyond.refusals["check"].tolist() == [BEYOND_HISTORY]
    assert "12.8 vCPU" in beyond.refusals["reason"].iloc[0]


def test_a_spike_ramps_ahead_within_the_per_action_and_per_hour_limits() -> None:
    limits = ScalingLimits(max_step=2, max_step_percent=0, max_per_hour=4, max_per_hour_percent=0,
                           max_forecast_ratio=1_000.0)
    upper = [40.0] * 12 + [400.0] * 12 + [40.0] * 12  # 2 instances, then the group's max 10, then 2
    plan = _plan(upper, limits=limits)
    peak = START + pd.Timedelta(hours=12) - LEAD
    assert plan["desired_capacity"].tolist() == [2, 4, 6, 8, 10, 8, 6, 4, 2]
    times = plan["start_time"].tolist()
    # Two steps of 2 per hour: the rise is a staircase every 30 minutes that is complete when
    # the peak needs it; the fall starts once the peak has passed, at the same pace.
    assert times[1:5] == [peak - pd.Timedelta(minutes=m) for m in (90, 60, 30, 0)]
    assert times[5] == START + pd.Timedelta(hours=24)
    _assert_within_limits(plan, 2, step=2, hourly=4)
    assert plan["action_name"].is_unique


def test_the_ramp_starts_from_the_groups_live_capacity() -> None:
    limits = ScalingLimits(max_step=1, max_step_percent=0, max_per_hour=2, max_per_hour_percent=0,
                           max_forecast_ratio=1_000.0)
    now = START + pd.Timedelta(minutes=1)
    live = {"api-asg": LiveGroup(min_size=1, max_size=10, desired_capacity=2)}
    plan = _plan([400.0] * 12, UNSET, live=live, limits=limits, not_before=now)  # wants 10 at once
    assert plan["desired_capacity"].tolist()[:3] == [3, 4, 5]
    assert plan["start_time"].iloc[0] == now and plan["desired_capacity"].iloc[-1] == 10
    _assert_within_limits(plan, 2, step=1, hourly=2)


@pytest.mark.parametrize("seed", range(6))
def test_random_forecasts_never_break_the_limits_or_the_bounds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    upper = np.clip(50 + 30 * np.sin(np.linspace(0, 6 * np.pi, 72)) + rng.normal(0, 20, 72), 0, None)
    upper[rng.integers(0, 72, 3)] *= rng.uniform(3, 8)  # a few spikes
    limits = ScalingLimits(max_step=int(rng.integers(1, 4)), max_step_percent=0,
                           max_per_hour=int(rng.integers(1, 7)), max_per_hour_percent=0, max_forecast_ratio=1_000.0)
    desired = int(rng.integers(3, 11))
    live = {"api-asg": LiveGroup(min_size=3, max_size=10, desired_capacity=desired)}
    plan = _plan(list(upper), UNSET, live=live, limits=limits, not_before=START + pd.Timedelta(hours=1),
                 min_hold=timedelta(0))
    assert plan["desired_capacity"].between(3, 10).all()
    _assert_within_limits(plan, desired, step=min(limits.max_step, limits.max_per_hour), hourly=limits.max_per_hour)
    assert plan["action_name"].is_unique and plan["start_time"].is_monotonic_increasing


def test_limits_grow_with_the_group() -> None:
    limits = ScalingLimits()  # the settings' defaults: 4 or 50 % per action, 8 or 100 % per hour
    assert limits.for_size(2) == (4, 8)
    assert limits.for_size(40) == (20, 40)


def test_limit_changes_without_limits_to_apply_keeps_the_plan() -> None:
    runs = [(START, 2), (START + pd.Timedelta(hours=3), 5), (START + pd.Timedelta(hours=6), 2)]
    got = limit_changes(runs, start=None, current=None, max_step=10, max_per_hour=10)
    assert [(t, c) for t, c, _ in got] == runs


@pytest.mark.parametrize(
    ("bounds", "flags", "expected"),
    [
        ((3, 10), {}, {}),  # equal to the live bounds: left out, the action never touches them
        ((4, 10), {}, {"MinSize": 4}),
        ((3, 8), {}, {"MaxSize": 8}),
        ((1, 10), {}, "lower the group's floor 3"),
        ((1, 10), {"allow_lower_min": True}, {"MinSize": 1}),
        ((3, 12), {}, "raise the group's ceiling 10"),
        ((3, 12), {"allow_raise_max": True}, {"MaxSize": 12}),
    ],
)
def test_bounds_request_sends_only_changes_and_refuses_unpermitted_ones(
    bounds: tuple[int, int], flags: dict[str, bool], expected: dict[str, int] | str
) -> None:
    got = bounds_request(*bounds, LIVE["api-asg"], **flags)
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got
    else:
        assert got == expected
