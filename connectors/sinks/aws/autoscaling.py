"""Scheduled scaling actions to Auto Scaling groups, reconciled by name.

For each group, the planned actions are compared with the group's existing actions whose names
start with ``foresight-`` (actions anyone else created are never touched): new or changed ones
are put (``PutScheduledUpdateGroupAction`` creates or overwrites by name), identical ones are
left alone, and Foresight actions no longer in the plan are deleted. Dry-run reads the groups
(to report an accurate diff) but writes nothing; every action is recorded in the action log.
A failed call is logged and counted, and the rest of the plan still goes through.

Given the groups' live state (:func:`describe_groups`, read just before the puts), an action
sends MinSize / MaxSize only where they differ from the group's own, so it never moves a bound
nobody asked to move, and an action that would lower a floor or raise a ceiling without
permission is refused (:func:`bounds_request`), logged, never put.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from connectors.sinks.aws.action_log import ActionLog
from connectors.sinks.aws.clients import AwsClient
from foresight.scaling_schema import (
    ACTION_PREFIX,
    BOUNDS,
    GROUP_UNREADABLE,
    SCALING_ACTION_COLUMNS,
    LiveGroup,
)
from foresight.timeutil import utc_timestamp

SINK = "autoscaling"


@dataclass
class SyncReport:
    """What one reconciliation did (or would do, in dry-run), in action counts."""

    put: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)  # asg_name, check, reason (not in as_dict)

    def as_dict(self) -> dict[str, int]:
        return {"put": self.put, "unchanged": self.unchanged, "deleted": self.deleted, "failed": self.failed}


def describe_groups(autoscaling: AwsClient, names: Iterable[str]) -> dict[str, LiveGroup]:
    """Each named group's live MinSize / MaxSize / DesiredCapacity (groups AWS does not know are
    left out)."""
    wanted = sorted(set(names))
    out: dict[str, LiveGroup] = {}
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    for chunk in (wanted[i : i + 50] for i in range(0, len(wanted), 50)):  # names per call are capped
        for page in paginator.paginate(AutoScalingGroupNames=chunk):
            for group in page.get("AutoScalingGroups", []):
                out[group["AutoScalingGroupName"]] = LiveGroup(
                    int(group["MinSize"]), int(group["MaxSize"]), int(group["DesiredCapacity"])
                )
    return out


def existing_actions(autoscaling: AwsClient, asg_name: str) -> dict[str, dict[str, Any]]:
    """The group's Foresight-named scheduled actions by name (all pages)."""
    out: dict[str, dict[str, Any]] = {}
    pages = autoscaling.get_paginator("describe_scheduled_actions").paginate(AutoScalingGroupName=asg_name)
    for page in pages:
        for action in page.get("ScheduledUpdateGroupActions", []):
            name = action.get("ScheduledActionName", "")
            if name.startswith(ACTION_PREFIX):
                out[name] = action
    return out


def action_request(row: Any, bounds: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``PutScheduledUpdateGroupAction`` parameters for one planned action row; ``bounds``: the
    MinSize / MaxSize to send (None: the row's own)."""
    sizes = {"MinSize": int(row.min_size), "MaxSize": int(row.max_size)} if bounds is None else dict(bounds)
    return {
        "AutoScalingGroupName": str(row.asg_name),
        "ScheduledActionName": str(row.action_name),
        "StartTime": pd.Timestamp(row.start_time).tz_convert("UTC").to_pydatetime(),
        **sizes,
        "DesiredCapacity": int(row.desired_capacity),
    }


def same_action(existing: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether an existing action already does what ``request`` asks: same min, max and desired
    (a bound the request leaves out must be absent too), starting no later. (Names carry the
    planned start, so an existing action of the same name starts earlier only when an earlier run
    moved its start up to "now": it does the same thing.)"""
    start = existing.get("StartTime")
    if start is None:
        return False
    try:
        same_start = utc_timestamp(start, "StartTime") <= utc_timestamp(request["StartTime"], "StartTime")
    except (TypeError, ValueError):
        return False
    return same_start and all(
        (existing.get(key) is None) if key not in request
        else (existing.get(key) is not None and int(existing[key]) == request[key])
        for key in ("MinSize", "MaxSize", "DesiredCapacity")
    )


def _keeps_a_dropped_bound(existing: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    """An existing action sets a bound the request leaves out: overwriting might keep it, so it
    is deleted first."""
    return existing is not None and any(
        existing.get(key) is not None and key not in request for key in ("MinSize", "MaxSize")
    )


def sync_scheduled_actions(
    autoscaling: AwsClient,
    actions: pd.DataFrame,
    log: ActionLog,
    *,
    apply: bool,
    groups: Iterable[str] = (),
    live: Mapping[str, LiveGroup] | None = None,
    allow_lower_min: Collection[str] = (),
    allow_raise_max: Collection[str] = (),
) -> SyncReport:
    """Reconcile the planned ``actions`` (``SCALING_ACTION_COLUMNS``) onto their groups and on
    ``groups`` (groups with no planned action lose their old Foresight actions).

    ``live``: the groups' state read just before (None: send the rows' bounds as planned); a
    group missing from it is not touched. ``allow_lower_min`` / ``allow_raise_max``: the groups
    whose floor may go down / ceiling up."""
    missing = [c for c in SCALING_ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise ValueError(f"scaling actions lack columns {missing}")
    report = SyncReport()
    for asg_name in sorted(set(actions["asg_name"].astype(str)) | set(groups)):
        planned = actions[actions["asg_name"] == asg_name]
        state = None if live is None else live.get(asg_name)
        if live is not None and state is None:
            refusal = {"asg_name": asg_name, "check": GROUP_UNREADABLE, "reason": f"{asg_name}: group not found in AWS"}
            report.refused.append(refusal)
            log.record(SINK, "DescribeAutoScalingGroups", asg_name, "refused", **refusal)
            continue
        try:
            existing = existing_actions(autoscaling, asg_name)
        except Exception as exc:  # noqa: BLE001 - one unreadable group must not stop the others
            report.failed += 1
            report.failures.append(f"{asg_name}: {exc}")
            log.record(SINK, "DescribeScheduledActions", asg_name, "failed", error=str(exc))
            continue
        wanted = set()
        for row in planned.itertuples(index=False):
            target = f"{asg_name}/{row.action_name}"
            bounds = None if state is None else bounds_request(
                int(row.min_size), int(row.max_size), state,
                allow_lower_min=asg_name in allow_lower_min, allow_raise_max=asg_name in allow_raise_max)
            if isinstance(bounds, str):
                refusal = {"asg_name": asg_name, "check": BOUNDS, "reason": f"{target}: {bounds}"}
                report.refused.append(refusal)
                log.record(SINK, "PutScheduledUpdateGroupAction", target, "refused", **refusal,
                           DesiredCapacity=int(row.desired_capacity), MinSize=int(row.min_size),
                           MaxSize=int(row.max_size))
                continue
            request = action_request(row, bounds)
            wanted.add(request["ScheduledActionName"])
            details = {
                k: v for k, v in request.items() if k not in ("AutoScalingGroupName", "ScheduledActionName")
            }
            current = existing.get(request["ScheduledActionName"])
            if current is not None and same_action(current, request):
                report.unchanged += 1
                log.record(SINK, "PutScheduledUpdateGroupAction", target, "unchanged", **details)
                continue
            if _keeps_a_dropped_bound(current, request) and not _call(
                autoscaling.delete_scheduled_action,
                {"AutoScalingGroupName": asg_name, "ScheduledActionName": request["ScheduledActionName"]},
                log, target, "DeleteScheduledAction", {"replaced_by": details}, report, apply,
            ):
                continue
            if _call(
                autoscaling.put_scheduled_update_group_action,
                request,
                log,
                target,
                "PutScheduledUpdateGroupAction",
                details,
                report,
                apply,
            ):
                report.put += 1
        for name in sorted(set(existing) - wanted):
            request = {"AutoScalingGroupName": asg_name, "ScheduledActionName": name}
            if _call(
                autoscaling.delete_scheduled_action,
                request,
                log,
                f"{asg_name}/{name}",
                "DeleteScheduledAction",
                {},
                report,
                apply,
            ):
                report.deleted += 1
    return report


def _call(
    method: Any,
    request: dict[str, Any],
    log: ActionLog,
    target: str,
    operation: str,
    details: dict[str, Any],
    report: SyncReport,
    apply: bool,
) -> bool:
    """Make one write call (apply) or only record it (dry-run); True when it did or would happen."""
    if not apply:
        log.record(SINK, operation, target, "dry-run", **details)
        return True
    try:
        method(**request)
    except Exception as exc:  # noqa: BLE001 - logged, counted, and the plan goes on
        report.failed += 1
        report.failures.append(f"{target}: {exc}")
        log.record(SINK, operation, target, "failed", error=str(exc), **details)
        return False
    log.record(SINK, operation, target, "applied", **details)
    return True


def bounds_request(
    min_size: int, max_size: int, live: LiveGroup, *, allow_lower_min: bool = False, allow_raise_max: bool = False
) -> dict[str, int] | str:
    """The ``MinSize`` / ``MaxSize`` a put sends for a planned action, or why it must not be put.

    A bound equal to the group's live one is left out, so the action never changes it when it
    fires, even if someone moves the group's bounds in between; a bound that would lower the
    live floor or raise the live ceiling is refused unless allowed.
    """
    if min_size < live.min_size and not allow_lower_min:
        return f"MinSize {min_size} would lower the group's floor {live.min_size} (allow_lower_min is off)"
    if max_size > live.max_size and not allow_raise_max:
        return f"MaxSize {max_size} would raise the group's ceiling {live.max_size} (allow_raise_max is off)"
    out = {}
    if min_size != live.min_size:
        out["MinSize"] = int(min_size)
    if max_size != live.max_size:
        out["MaxSize"] = int(max_size)
    return out
