"""Guard rails of predictive scaling: what a plan may ask of an Auto Scaling group. Pure.

- **Bounds.** A group's floor (MinSize) is never lowered and its ceiling (MaxSize) never raised
  unless the service's config sets the bound explicitly *and* allows it
  (``allow_lower_min`` / ``allow_raise_max``); unset bounds are the group's own live ones.
- **Sane forecasts.** A forecast with a non-finite or negative upper bound, or whose demand goes
  beyond ``max_forecast_ratio`` times the busiest the service has been in its history, is
  refused: the group gets no actions, and the caller records why.
- **Ramps, not jumps.** One action changes desired capacity by at most ``max_step`` instances and
  all actions starting within any 60 minutes together by at most ``max_per_hour``
  (:func:`limit_changes`); both limits grow with the group (a percentage of its current size).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.scaling_schema import LiveGroup

HOUR = pd.Timedelta(hours=1)

# Refusal checks; the forecast ones raise a warning incident (the model needs a look), the
# others are configuration or permission problems, logged only.
NON_FINITE = "non_finite_forecast"
NEGATIVE = "negative_forecast"
BEYOND_HISTORY = "forecast_beyond_history"
FORECAST_CHECKS: tuple[str, ...] = (NON_FINITE, NEGATIVE, BEYOND_HISTORY)


@dataclass(frozen=True)
class ScalingLimits:
    """How far a plan may move a group (see the module docstring); defaults as in the settings."""

    max_step: int = 4
    max_step_percent: float = 50.0
    max_per_hour: int = 8
    max_per_hour_percent: float = 100.0
    max_forecast_ratio: float = 3.0

    def __post_init__(self) -> None:
        if self.max_step < 1 or self.max_per_hour < 1:
            raise ValueError(f"max_step and max_per_hour must be >= 1, got {self.max_step}, {self.max_per_hour}")
        if self.max_step_percent < 0 or self.max_per_hour_percent < 0:
            raise ValueError("max_step_percent and max_per_hour_percent must not be negative")
        if not self.max_forecast_ratio >= 1:
            raise ValueError(f"max_forecast_ratio must be >= 1, got {self.max_forecast_ratio}")

    def for_size(self, capacity: int) -> tuple[int, int]:
        """(per action, per hour) instance limits for a group running ``capacity`` instances."""
        step = max(self.max_step, math.ceil(self.max_step_percent / 100.0 * capacity))
        hourly = max(self.max_per_hour, math.ceil(self.max_per_hour_percent / 100.0 * capacity))
        return step, hourly


@dataclass(frozen=True)
class Refusal:
    """Why a group gets no actions in this plan."""

    service: str
    asg_name: str
    check: str
    reason: str


def group_bounds(
    asg_name: str,
    min_size: int | None,
    max_size: int | None,
    live: LiveGroup | None,
    *,
    allow_lower_min: bool = False,
    allow_raise_max: bool = False,
) -> tuple[int, int] | str:
    """The ``(min, max)`` a plan may use for a group, or why there is none.

    ``live`` None means the group was not read (AWS sinks off): the configured bounds are used
    as given and both must be set. Otherwise an unset bound is the live one, and a configured
    bound beyond the live one (a lower floor, a higher ceiling) is held at the live value
    unless allowed.
    """
    if live is None:
        if min_size is None or max_size is None:
            return (f"{asg_name}: min_size/max_size not configured and the group's live bounds were not "
                    "read (AWS sinks off): set both, or enable sinks.aws")
        lo, hi = min_size, max_size
    else:
        lo = live.min_size if min_size is None or (min_size < live.min_size and not allow_lower_min) else min_size
        hi = live.max_size if max_size is None or (max_size > live.max_size and not allow_raise_max) else max_size
    if lo > hi:
        return (f"{asg_name}: floor {lo} above ceiling {hi} (configured {min_size}..{max_size}, live "
                f"{live.min_size}..{live.max_size}); raising the ceiling needs max_size and allow_raise_max"
                if live is not None else f"{asg_name}: min_size {lo} above max_size {hi}")
    return lo, hi


def forecast_refusal(
    upper: np.ndarray, demand_vcpu: np.ndarray, history_peak_vcpu: float, vcpu_per_instance: float,
    max_forecast_ratio: float,
) -> tuple[str, str] | None:
    """``(check, reason)`` when a group's forecast must not drive scaling, else None.

    ``upper`` is every ``yhat_upper`` (%) of the group's CPU series over the horizon and
    ``demand_vcpu`` the demand per step; the history peak is floored at one busy instance, so a
    near-idle history does not refuse every small rise.
    """
    upper = np.asarray(upper, dtype="float64")
    bad = ~np.isfinite(upper)
    if bad.any():
        kinds = sorted({"NaN" if np.isnan(v) else ("inf" if v > 0 else "-inf") for v in upper[bad]})
        return NON_FINITE, (f"{int(bad.sum())} of {upper.size} forecast upper bounds are non-finite "
                            f"({', '.join(kinds)})")
    if (upper < 0).any():
        return NEGATIVE, (f"{int((upper < 0).sum())} of {upper.size} forecast upper bounds are negative "
                          f"(lowest {upper.min():.4g} %)")
    peak = float(np.max(demand_vcpu)) if len(demand_vcpu) else 0.0
    history = history_peak_vcpu if np.isfinite(history_peak_vcpu) else 0.0
    bound = max_forecast_ratio * max(history, vcpu_per_instance)
    if peak > bound:
        return BEYOND_HISTORY, (f"peak forecast demand {peak:.4g} vCPU is beyond {max_forecast_ratio:g} x the "
                                f"history's peak {history:.4g} vCPU (bound {bound:.4g})")
    return None


def limit_changes(
    runs: list[tuple[pd.Timestamp, int]],
    *,
    start: pd.Timestamp | None,
    current: int | None,
    max_step: int,
    max_per_hour: int,
) -> list[tuple[pd.Timestamp, int, pd.Timestamp]]:
    """Actions ``(start, capacity, planned start)`` that follow ``runs`` (change points of the
    capacity wanted) within the limits.

    Rises larger than one step are ramped ahead, one step per cadence ending when the run
    begins (so a genuine peak still finds its capacity); then a forward pass from ``current``
    (the capacity in force at ``start``; None: the wanted one) moves at most ``max_step`` per
    action and ``max_per_hour`` within any 60 minutes, continuing when the hour's budget frees.
    With ``start`` after the first run, the first action starts then and is named after the run
    in force (so a re-run keeps its name); every other action is named after its own start.
    """
    if not runs:
        return []
    step = min(max_step, max_per_hour)
    cadence = _ceil_minute(HOUR / max(1, max_per_hour // step))
    wanted = _ramped(runs, step, cadence)
    times = [t for t, _ in wanted]
    if start is not None and times[0] <= start:  # the run in force at start becomes an action then
        first = start
        events = [first] + [t for t in times if t > first]
    else:
        first = times[0]
        events = list(times)

    def wanted_at(t: pd.Timestamp) -> tuple[int, pd.Timestamp]:
        at = [(level, s) for s, level in wanted if s <= t]
        return at[-1] if at else (wanted[0][1], wanted[0][0])

    capacity = wanted_at(first)[0] if current is None else int(current)
    heapq.heapify(events)
    done: set[pd.Timestamp] = set()
    history: list[tuple[pd.Timestamp, int]] = []
    actions: list[tuple[pd.Timestamp, int, pd.Timestamp]] = []
    horizon_guard = 10_000
    while events and horizon_guard:
        horizon_guard -= 1
        t = heapq.heappop(events)
        if t in done:
            continue
        done.add(t)
        target, planned = wanted_at(t)
        if target == capacity and t != first:
            continue
        used = sum(change for s, change in history if s > t - HOUR)
        room = max(0, min(max_step, max_per_hour - used))
        move = int(np.clip(target - capacity, -room, room))
        if move or t == first:
            capacity += move
            actions.append((t, capacity, planned if t == first else t))
            if move:
                history.append((t, abs(move)))
        if capacity != target:
            left = max_per_hour - used - abs(move)
            oldest = min((s for s, _ in history if s > t - HOUR), default=t)
            heapq.heappush(events, t + cadence if left > 0 else oldest + HOUR)
    return actions


def _ramped(runs: list[tuple[pd.Timestamp, int]], step: int, cadence: pd.Timedelta) -> list[tuple[pd.Timestamp, int]]:
    """``runs`` with every rise of more than ``step`` preceded by a staircase of ``step`` per
    ``cadence`` that reaches the new level when its run starts."""
    ramps: list[tuple[pd.Timestamp, pd.Timestamp, int, int]] = []  # (first stair, run start, level, n)
    for (_, before), (t, level) in zip(runs, runs[1:], strict=False):
        n = math.ceil((level - before) / step)
        if n > 1:
            ramps.append((t - (n - 1) * cadence, t, level, n))
    if not ramps:
        return list(runs)
    points = sorted({t for t, _ in runs} | {r[1] - j * cadence for r in ramps for j in range(1, r[3])})
    base = pd.Series([lvl for _, lvl in runs], index=pd.DatetimeIndex([t for t, _ in runs]))
    out: list[tuple[pd.Timestamp, int]] = []
    for p in points:
        level = int(base[base.index <= p].iloc[-1]) if (base.index <= p).any() else int(base.iloc[0])
        for first, t, top, _ in ramps:
            if first <= p < t:
                level = max(level, top - step * math.ceil((t - p) / cadence))
        if not out or out[-1][1] != level:
            out.append((p, level))
    return out


def _ceil_minute(delta: pd.Timedelta) -> pd.Timedelta:
    return pd.Timedelta(minutes=math.ceil(delta / pd.Timedelta(minutes=1)))
