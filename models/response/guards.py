"""Guard rails of automated response: whether an action may run, and how big it may be. Pure.

Checked in this order; the first that says no refuses the action, and the audit row names it:

- ``allowlist``: the target matches none of ``response.allowed_targets`` (fnmatch patterns);
- ``cooldown``: the target was acted on less than ``cooldown_minutes`` ago;
- ``hourly_actions``: the target was acted on ``max_actions_per_hour`` times in the last 60 minutes;
- scale-outs only: ``group_unknown`` (Auto Scaling does not know the group), ``max_size`` (the
  group is at its MaxSize already), ``hourly_change`` (its instances added in the last 60 minutes
  used up ``max_instances_per_hour``).

A scale-out that passes is *capped*, not refused: it adds at most
``max(1, min(max_instances_per_action, ceil(max_percent_per_action % of desired)))`` instances,
what is left of the hourly budget, and never goes above MaxSize; the verdict says which cap bit.
"Acted on" counts dry-run decisions as well as applied ones (:data:`models.response.audit.ACTED`),
so a dry run shows what apply would do, refusals included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pandas as pd

from foresight.scaling_schema import LiveGroup
from foresight.settings_response import ResponseConfig
from models.response.audit import ACTED, AuditRow

HOUR = pd.Timedelta(hours=1)
CHECKS: tuple[str, ...] = ("allowlist", "cooldown", "hourly_actions", "group_unknown", "max_size", "hourly_change")


@dataclass(frozen=True)
class Verdict:
    """A guard rail's answer: ``check`` None means the action may run (``reason`` says how it was
    capped, if it was); otherwise ``check`` names the refusing guard rail and ``reason`` why."""

    check: str | None
    reason: str = ""
    change: int = 0
    desired_from: int = -1
    desired_to: int = -1

    @property
    def allowed(self) -> bool:
        return self.check is None


def allowed_target(target: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(target, pattern) for pattern in patterns)


def check_action(
    config: ResponseConfig,
    *,
    action: str,
    target: str,
    now: pd.Timestamp,
    history: Iterable[AuditRow],
    instances: int = 1,
    live: LiveGroup | None = None,
) -> Verdict:
    """The verdict on ``action`` against ``target`` at ``now``, given the audit ``history`` (every
    row; only acted steps on the same target count) and, for scale-outs, the group's ``live`` state."""
    if not allowed_target(target, config.allowed_targets):
        listed = ", ".join(config.allowed_targets) or "(empty: nothing may be acted on)"
        return Verdict("allowlist", f"{target} is not in response.allowed_targets ({listed})")
    acted = sorted((row for row in history if row.step in ACTED and row.target == target), key=lambda r: r.time)
    cooldown = pd.Timedelta(minutes=config.cooldown_minutes)
    if acted and now - acted[-1].time < cooldown:
        last = acted[-1]
        return Verdict("cooldown", f"{target} was acted on at {last.time:%H:%M:%S}Z ({last.action}, rule "
                                   f"{last.rule}); cool-down {config.cooldown_minutes} min")
    recent = [row for row in acted if now - row.time < HOUR]
    if len(recent) >= config.max_actions_per_hour:
        return Verdict("hourly_actions", f"{target} was acted on {len(recent)} times in the last hour "
                                         f"(max_actions_per_hour {config.max_actions_per_hour})")
    if action != "scale_out":
        return Verdict(None)
    return _scale_out(config, target, instances, live, sum(row.change for row in recent))


def _scale_out(config: ResponseConfig, target: str, instances: int, live: LiveGroup | None,
               added_this_hour: int) -> Verdict:
    if live is None:
        return Verdict("group_unknown", f"Auto Scaling group {target} not found")
    desired = live.desired_capacity
    if desired >= live.max_size:
        return Verdict("max_size", f"{target} runs {desired} instances, its MaxSize {live.max_size}",
                       desired_from=desired, desired_to=desired)
    budget = config.max_instances_per_hour - added_this_hour
    if budget <= 0:
        return Verdict("hourly_change", f"{target} got {added_this_hour} instances in the last hour "
                                        f"(max_instances_per_hour {config.max_instances_per_hour})",
                       desired_from=desired, desired_to=desired)
    per_action = max(1, min(config.max_instances_per_action,
                            math.ceil(config.max_percent_per_action / 100.0 * desired)))
    caps = {"max_instances_per_action / max_percent_per_action": per_action, "max_instances_per_hour": budget,
            f"MaxSize {live.max_size}": live.max_size - desired}
    change = min(instances, *caps.values())
    bit = [name for name, cap in caps.items() if cap == change and cap < instances]
    reason = f"+{change} instances ({desired} -> {desired + change})"
    if bit:
        reason += f", capped from +{instances} by {bit[0]}"
    return Verdict(None, reason, change=change, desired_from=desired, desired_to=desired + change)
