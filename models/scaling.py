"""Predictive scaling: Auto Scaling scheduled actions placed ahead of forecast peaks.

Pure. Per Auto Scaling group, the service's CPU demand at each forecast step is the sum over its
instances of the forecast upper bound (``yhat_upper`` % of the instance's vCPUs; summing upper
bounds over-covers the sum, which errs on the safe side). The capacity a step needs is
``ceil(demand / (vcpu_per_instance * target))`` instances, clamped to the group's
``[min_size, max_size]``. Capacity must be in place ``lead`` before a step needs it (instances
take minutes to boot and warm up), so a scale-out starts ``lead`` early while a scale-in waits
until the higher step has passed. Dips shorter than ``min_hold`` are filled (no scale-in just to
scale out again), runs of equal capacity are one action, and every action is named
``foresight-<service>-<UTC start>`` so a re-run of the same plan overwrites, never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL, UTC_DTYPE, require_columns

SCALING_ACTION_COLUMNS: tuple[str, ...] = (
    "service",
    "asg_name",
    "action_name",
    "start_time",
    "desired_capacity",
    "min_size",
    "max_size",
)
ACTION_PREFIX = "foresight-"


@dataclass(frozen=True)
class ScalingGroup:
    """One Auto Scaling group running one service on one instance type."""

    service: str
    asg_name: str
    vcpu_per_instance: float
    min_size: int
    max_size: int

    def __post_init__(self) -> None:
        problems = []
        if not self.asg_name:
            problems.append("asg_name is empty")
        if self.vcpu_per_instance <= 0:
            problems.append(f"vcpu_per_instance must be positive, got {self.vcpu_per_instance}")
        if self.min_size < 0 or self.max_size < self.min_size:
            problems.append(f"need 0 <= min_size <= max_size, got {self.min_size}..{self.max_size}")
        if problems:
            raise ValueError(f"scaling group for {self.service!r}: " + "; ".join(problems))


def action_name(service: str, start: pd.Timestamp) -> str:
    """The deterministic name of the action that starts at ``start`` (UTC, minute precision)."""
    return f"{ACTION_PREFIX}{service}-{start.tz_convert('UTC'):%Y%m%dT%H%MZ}"


def desired_capacity(demand_vcpu: np.ndarray, group: ScalingGroup, target_utilisation: float) -> np.ndarray:
    """Instances needed per step so demand stays at ``target_utilisation`` %, within the group's bounds."""
    if not 0 < target_utilisation <= 100:
        raise ValueError(f"target_utilisation must be within (0, 100] percent, got {target_utilisation}")
    per_instance = group.vcpu_per_instance * target_utilisation / 100.0
    needed = np.ceil(np.asarray(demand_vcpu, dtype="float64") / per_instance - 1e-9)
    return np.clip(needed, group.min_size, group.max_size).astype("int64")


def scaling_actions(
    forecasts: pd.DataFrame,
    series_catalogue: pd.DataFrame,
    groups: list[ScalingGroup],
    *,
    target_utilisation: float,
    lead: timedelta = timedelta(minutes=20),
    min_hold: timedelta = timedelta(hours=2),
    not_before: pd.Timestamp | None = None,
    cpu_metric: str = "cpu_pct",
) -> pd.DataFrame:
    """Scheduled actions (``SCALING_ACTION_COLUMNS``) for every group, by service then start.

    ``not_before`` (e.g. now): actions earlier than it are dropped, except that the capacity in
    force at ``not_before`` becomes an action starting then (a schedule cannot start in the past);
    it keeps the name of its planned start, so re-runs of the same plan reuse the same names.
    The last action's capacity stays after the horizon; the next run reschedules.
    """
    require_columns(forecasts, (ID_COL, TIME_COL, "yhat_upper"), "scaling forecasts")
    require_columns(series_catalogue, (ID_COL, "service", "metric"), "scaling catalogue")
    if lead < timedelta(0) or min_hold < timedelta(0):
        raise ValueError(f"lead and min_hold must not be negative, got {lead} and {min_hold}")
    cpu_ids = series_catalogue.loc[series_catalogue["metric"] == cpu_metric, [ID_COL, "service"]]
    fc = forecasts.merge(cpu_ids.drop_duplicates(ID_COL), on=ID_COL)
    if "yhat" in fc.columns:
        fc["yhat_upper"] = fc["yhat_upper"].fillna(
            fc["yhat"]
        )  # a step without an interval: its point forecast
    frames = []
    for group in groups:
        own = fc[fc["service"] == group.service]
        if own.empty:
            continue
        demand = (
            (own["yhat_upper"].clip(lower=0.0) / 100.0 * group.vcpu_per_instance).groupby(own[TIME_COL]).sum()
        )
        demand = demand.sort_index()
        need = desired_capacity(demand.to_numpy(), group, target_utilisation)
        segments = _segments(pd.DatetimeIndex(demand.index), need, pd.Timedelta(lead), pd.Timedelta(min_hold))
        starts = [(planned, planned, capacity) for planned, capacity in segments]
        if not_before is not None:
            starts = _from(segments, pd.Timestamp(not_before))
        for planned, start, capacity in starts:
            frames.append(
                {
                    "service": group.service,
                    "asg_name": group.asg_name,
                    "action_name": action_name(group.service, planned),
                    "start_time": start,
                    "desired_capacity": int(capacity),
                    "min_size": group.min_size,
                    "max_size": group.max_size,
                }
            )
    out = pd.DataFrame(frames, columns=list(SCALING_ACTION_COLUMNS))
    out["start_time"] = pd.to_datetime(out["start_time"], utc=True).astype(UTC_DTYPE)
    out = out.astype({"desired_capacity": "int64", "min_size": "int64", "max_size": "int64"})
    return out.sort_values(["service", "start_time"], kind="stable").reset_index(drop=True)


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


def _from(
    runs: list[tuple[pd.Timestamp, int]], not_before: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """(planned start, start, capacity) from ``not_before`` on; the run in force then starts at
    ``not_before`` (rounded up to the minute) but keeps its planned start for its name."""
    if not_before.tzinfo is None:
        raise ValueError(f"not_before must be timezone-aware, got {not_before}")
    start = not_before.ceil("min")
    current = [r for r in runs if r[0] <= start]
    future = [(planned, planned, capacity) for planned, capacity in runs if planned > start]
    return ([(current[-1][0], start, current[-1][1])] if current else []) + future


def peak_desired(actions: pd.DataFrame) -> dict[str, int]:
    """The highest desired capacity scheduled per service (for summaries)."""
    if actions.empty:
        return {}
    return {str(k): int(v) for k, v in actions.groupby("service")["desired_capacity"].max().items()}
