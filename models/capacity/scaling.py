"""Predictive scaling: Auto Scaling scheduled actions placed ahead of forecast peaks.

Pure. Per Auto Scaling group, the service's CPU demand at each forecast step is the sum over its
instances of the forecast upper bound (``yhat_upper`` % of the instance's vCPUs; summing upper
bounds over-covers the sum, which errs on the safe side). The capacity a step needs is
``ceil(demand / (vcpu_per_instance * target))`` instances, clamped to the group's bounds (its
live MinSize/MaxSize unless the config explicitly allows otherwise). Capacity must be in place
``lead`` before a step needs it (instances take minutes to boot and warm up), so a scale-out
starts ``lead`` early while a scale-in waits until the higher step has passed. Dips shorter than
``min_hold`` are filled (no scale-in just to scale out again), runs of equal capacity are one
action, changes are limited per action and per hour (ramps, not jumps), and every action is
named ``foresight-<service>-<UTC start>`` so a re-run of the same plan overwrites, never
duplicates. A forecast that is non-finite, negative or beyond a sanity bound from history
refuses the group instead (``models.capacity.scaling_guards``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from foresight.scaling_schema import (
    ACTION_PREFIX,
    BOUNDS,
    GROUP_UNREADABLE,
    REFUSAL_COLUMNS,
    SCALING_ACTION_COLUMNS,
    LiveGroup,
)
from foresight.schemas import ID_COL, TIME_COL, UTC_DTYPE, require_columns
from models.capacity.scaling_guards import (
    Refusal,
    ScalingLimits,
    forecast_refusal,
    group_bounds,
    limit_changes,
)


@dataclass(frozen=True)
class ScalingGroup:
    """One Auto Scaling group running one service on one instance type.

    ``min_size`` / ``max_size`` None: the group's live bound. A configured floor below the live
    one, or ceiling above it, applies only with ``allow_lower_min`` / ``allow_raise_max``.
    """

    service: str
    asg_name: str
    vcpu_per_instance: float
    min_size: int | None = None
    max_size: int | None = None
    allow_lower_min: bool = False
    allow_raise_max: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not self.asg_name:
            problems.append("asg_name is empty")
        if self.vcpu_per_instance <= 0:
            problems.append(f"vcpu_per_instance must be positive, got {self.vcpu_per_instance}")
        if (self.min_size is not None and self.min_size < 0) or (
            self.min_size is not None and self.max_size is not None and self.max_size < self.min_size
        ):
            problems.append(f"need 0 <= min_size <= max_size, got {self.min_size}..{self.max_size}")
        if problems:
            raise ValueError(f"scaling group for {self.service!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class ScalingPlan:
    """Scheduled actions (``SCALING_ACTION_COLUMNS``) and the groups refused (``REFUSAL_COLUMNS``)."""

    actions: pd.DataFrame
    refusals: pd.DataFrame

    @property
    def refused_groups(self) -> list[str]:
        return sorted(set(self.refusals["asg_name"]))


def action_name(service: str, start: pd.Timestamp) -> str:
    """The deterministic name of the action that starts at ``start`` (UTC, minute precision)."""
    return f"{ACTION_PREFIX}{service}-{start.tz_convert('UTC'):%Y%m%dT%H%MZ}"


def desired_capacity(
    demand_vcpu: np.ndarray, vcpu_per_instance: float, target_utilisation: float, bounds: tuple[int, int]
) -> np.ndarray:
    """Instances needed per step so demand stays at ``target_utilisation`` %, within ``bounds``."""
    if not 0 < target_utilisation <= 100:
        raise ValueError(f"target_utilisation must be within (0, 100] percent, got {target_utilisation}")
    per_instance = vcpu_per_instance * target_utilisation / 100.0
    needed = np.ceil(np.asarray(demand_vcpu, dtype="float64") / per_instance - 1e-9)
    return np.clip(needed, *bounds).astype("int64")


def service_demand(values: pd.Series, ds: pd.Series, vcpu_per_instance: float) -> pd.Series:
    """A service's CPU demand per timestamp: the sum over its instances of ``values`` % x vCPUs."""
    return (values / 100.0 * vcpu_per_instance).groupby(ds).sum().sort_index()


def plan_scaling(
    forecasts: pd.DataFrame,
    series_catalogue: pd.DataFrame,
    groups: list[ScalingGroup],
    *,
    target_utilisation: float,
    history: pd.DataFrame,
    live: Mapping[str, LiveGroup | str] | None = None,
    limits: ScalingLimits = ScalingLimits(),
    lead: timedelta = timedelta(minutes=20),
    min_hold: timedelta = timedelta(hours=2),
    not_before: pd.Timestamp | None = None,
    cpu_metric: str = "cpu_pct",
) -> ScalingPlan:
    """Scheduled actions for every group, by service then start, and the groups refused.

    ``history`` (``unique_id, ds, y``: what the forecaster was fitted on) bounds a sane
    forecast. ``live`` holds each group's live state (or why it could not be read) when AWS was
    asked; None when it was not, and then configured bounds are used as given. A refused group
    gets no actions at all (see ``models.capacity.scaling_guards``).

    ``not_before`` (e.g. now): actions earlier than it are dropped, except that the capacity in
    force at ``not_before`` becomes an action starting then (a schedule cannot start in the past);
    it keeps the name of its planned start, so re-runs of the same plan reuse the same names.
    The last action's capacity stays after the horizon; the next run reschedules.
    """
    require_columns(forecasts, (ID_COL, TIME_COL, "yhat_upper"), "scaling forecasts")
    require_columns(history, (ID_COL, TIME_COL, "y"), "scaling history")
    require_columns(series_catalogue, (ID_COL, "service", "metric"), "scaling catalogue")
    if lead < timedelta(0) or min_hold < timedelta(0):
        raise ValueError(f"lead and min_hold must not be negative, got {lead} and {min_hold}")
    if not_before is not None and pd.Timestamp(not_before).tzinfo is None:
        raise ValueError(f"not_before must be timezone-aware, got {not_before}")
    start = None if not_before is None else pd.Timestamp(not_before).ceil("min")
    cpu_ids = series_catalogue.loc[series_catalogue["metric"] == cpu_metric, [ID_COL, "service"]]
    cpu_ids = cpu_ids.drop_duplicates(ID_COL)
    fc = forecasts.merge(cpu_ids, on=ID_COL)
    past = history.merge(cpu_ids, on=ID_COL)
    frames: list[dict[str, object]] = []
    refusals: list[Refusal] = []
    for group in groups:
        own = fc[fc["service"] == group.service]
        if own.empty:
            continue
        state = None if live is None else live.get(group.asg_name, "not found in AWS")
        if isinstance(state, str):
            refusals.append(Refusal(group.service, group.asg_name, GROUP_UNREADABLE,
                                    f"{group.asg_name}: live bounds unreadable: {state}"))
            continue
        bounds = group_bounds(group.asg_name, group.min_size, group.max_size, state,
                              allow_lower_min=group.allow_lower_min, allow_raise_max=group.allow_raise_max)
        if isinstance(bounds, str):
            refusals.append(Refusal(group.service, group.asg_name, BOUNDS, bounds))
            continue
        upper = own["yhat_upper"].astype("float64")
        demand = service_demand(upper, own[TIME_COL], group.vcpu_per_instance)
        mine = past[past["service"] == group.service]
        peak = service_demand(mine["y"].astype("float64"), mine[TIME_COL], group.vcpu_per_instance).max()
        problem = forecast_refusal(upper.to_numpy(), demand.to_numpy(), float(peak) if pd.notna(peak) else 0.0,
                                   group.vcpu_per_instance, limits.max_forecast_ratio)
        if problem is not None:
            refusals.append(Refusal(group.service, group.asg_name, problem[0], f"{group.asg_name}: {problem[1]}"))
            continue
        need = desired_capacity(demand.to_numpy(), group.vcpu_per_instance, target_utilisation, bounds)
        runs = _segments(pd.DatetimeIndex(demand.index), need, pd.Timedelta(lead), pd.Timedelta(min_hold))
        current = None if state is None else int(np.clip(state.desired_capacity, *bounds))
        size = current if current is not None else _level_at(runs, start)
        step, hourly = limits.for_size(size)
        for begin, capacity, planned in limit_changes(runs, start=start, current=current, max_step=step,
                                                      max_per_hour=hourly):
            frames.append(
                {
                    "service": group.service,
                    "asg_name": group.asg_name,
                    "action_name": action_name(group.service, planned),
                    "start_time": begin,
                    "desired_capacity": int(capacity),
                    "min_size": bounds[0],
                    "max_size": bounds[1],
                }
            )
    out = pd.DataFrame(frames, columns=list(SCALING_ACTION_COLUMNS))
    out["start_time"] = pd.to_datetime(out["start_time"], utc=True).astype(UTC_DTYPE)
    out = out.astype({"desired_capacity": "int64", "min_size": "int64", "max_size": "int64"})
    out = out.sort_values(["service", "start_time"], kind="stable").reset_index(drop=True)
    refused = pd.DataFrame([vars(r) for r in refusals], columns=list(REFUSAL_COLUMNS))
    return ScalingPlan(out, refused)


def _level_at(runs: list[tuple[pd.Timestamp, int]], t: pd.Timestamp | None) -> int:
    before = [level for s, level in runs if t is None or s <= t]
    return before[-1] if before else runs[0][1]


def _segments(
    ds: pd.DatetimeIndex, need: np.ndarray, lead: pd.Timedelta, min_hold: pd.Timedelta
) -> list[tuple[pd.Timestamp, int]]:
    """(start, capacity) change points of "the most any step within the next ``lead`` needs".

    Step i needs ``need[i]`` over [ds[i], ds[i+1]). Capacity at time t must cover every step that
    overlaps [t, t + lead], so it can only change at some ds[i] - lead (a rise) or ds[i] (a fall).
    """
    if len(ds) == 0:
        return []
    step = ds[1:] - ds[:-1]
    last_step = step.min() if len(step) else pd.Timedelta(hours=1)
    ends = ds[1:].append(pd.DatetimeIndex([ds[-1] + last_step]))
    points = sorted(set(ds - lead) | set(ds))
    levels = []
    for t in points:
        covering = (ds <= t + lead) & (ends > t)
        levels.append(int(need[covering].max()) if covering.any() else int(need[-1]))
    runs = _run_lengths(points, levels)
    return _fill_short_dips(runs, min_hold, horizon_end=ends[-1])


def _run_lengths(points: list[pd.Timestamp], levels: list[int]) -> list[tuple[pd.Timestamp, int]]:
    runs: list[tuple[pd.Timestamp, int]] = []
    for t, level in zip(points, levels, strict=True):
        if not runs or runs[-1][1] != level:
            runs.append((t, level))
    return runs


def _fill_short_dips(
    runs: list[tuple[pd.Timestamp, int]], min_hold: pd.Timedelta, horizon_end: pd.Timestamp
) -> list[tuple[pd.Timestamp, int]]:
    """Raise every interior run lower than both neighbours and shorter than ``min_hold`` to the
    lower neighbour, then merge equal neighbours; repeat until nothing changes."""
    changed = True
    while changed and len(runs) >= 3:
        changed = False
        for i in range(1, len(runs) - 1):
            (_, before), (start, level), (end, after) = runs[i - 1], runs[i], runs[i + 1]
            if level < before and level < after and end - start < min_hold:
                runs[i] = (start, min(before, after))
                changed = True
        merged = _run_lengths([t for t, _ in runs], [lvl for _, lvl in runs])
        changed = changed or len(merged) != len(runs)
        runs = merged
    return runs


def peak_desired(actions: pd.DataFrame) -> dict[str, int]:
    """The highest desired capacity scheduled per service (for summaries)."""
    if actions.empty:
        return {}
    return {str(k): int(v) for k, v in actions.groupby("service")["desired_capacity"].max().items()}
