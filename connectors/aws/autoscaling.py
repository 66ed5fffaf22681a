"""Scheduled scaling actions to Auto Scaling groups, reconciled by name.

For each group, the planned actions are compared with the group's existing actions whose names
start with ``foresight-`` (actions anyone else created are never touched): new or changed ones
are put (``PutScheduledUpdateGroupAction`` creates or overwrites by name), identical ones are
left alone, and Foresight actions no longer in the plan are deleted. Dry-run reads the groups
(to report an accurate diff) but writes nothing; every action is recorded in the action log.
A failed call is logged and counted, and the rest of the plan still goes through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from connectors.aws.action_log import ActionLog
from connectors.aws.clients import AwsClient
from models.scaling import ACTION_PREFIX, SCALING_ACTION_COLUMNS

SINK = "autoscaling"


@dataclass
class SyncReport:
    """What one reconciliation did (or would do, in dry-run), in action counts."""

    put: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"put": self.put, "unchanged": self.unchanged, "deleted": self.deleted, "failed": self.failed}


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


def action_request(row: Any) -> dict[str, Any]:
    """``PutScheduledUpdateGroupAction`` parameters for one planned action row."""
    return {
        "AutoScalingGroupName": str(row.asg_name),
        "ScheduledActionName": str(row.action_name),
        "StartTime": pd.Timestamp(row.start_time).tz_convert("UTC").to_pydatetime(),
        "MinSize": int(row.min_size),
        "MaxSize": int(row.max_size),
        "DesiredCapacity": int(row.desired_capacity),
    }


def same_action(existing: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether an existing action already does what ``request`` asks: same min, max and desired,
    starting no later. (Names carry the planned start, so an existing action of the same name
    starts earlier only when an earlier run moved its start up to "now": it does the same thing.)"""
    start = existing.get("StartTime")
    if start is None:
        return False
    try:
        same_start = _utc(start) <= _utc(request["StartTime"])
    except (TypeError, ValueError):
        return False
    return same_start and all(
        existing.get(key) is not None and int(existing[key]) == request[key]
        for key in ("MinSize", "MaxSize", "DesiredCapacity")
    )


def sync_scheduled_actions(
    autoscaling: AwsClient,
    actions: pd.DataFrame,
    log: ActionLog,
    *,
    apply: bool,
    groups: Iterable[str] = (),
) -> SyncReport:
    """Reconcile the planned ``actions`` (``SCALING_ACTION_COLUMNS``) onto their groups and on
    ``groups`` (groups with no planned action lose their old Foresight actions)."""
    missing = [c for c in SCALING_ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise ValueError(f"scaling actions lack columns {missing}")
    report = SyncReport()
    for asg_name in sorted(set(actions["asg_name"].astype(str)) | set(groups)):
        planned = actions[actions["asg_name"] == asg_name]
        try:
            existing = existing_actions(autoscaling, asg_name)
        except Exception as exc:  # noqa: BLE001 - one unreadable group must not stop the others
            report.failed += 1
            report.failures.append(f"{asg_name}: {exc}")
            log.record(SINK, "DescribeScheduledActions", asg_name, "failed", error=str(exc))
            continue
        wanted = set()
        for row in planned.itertuples(index=False):
            request = action_request(row)
            wanted.add(request["ScheduledActionName"])
            target = f"{asg_name}/{request['ScheduledActionName']}"
            details = {
                k: v for k, v in request.items() if k not in ("AutoScalingGroupName", "ScheduledActionName")
            }
            current = existing.get(request["ScheduledActionName"])
            if current is not None and same_action(current, request):
                report.unchanged += 1
                log.record(SINK, "PutScheduledUpdateGroupAction", target, "unchanged", **details)
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


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
