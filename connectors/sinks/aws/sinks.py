"""The AWS sinks of one forecast-and-plan run: the rightsizing report to S3 and the scheduled
actions to Auto Scaling, dry-run unless ``sinks.aws.apply``.

A local copy of the report (``<report_dir>/rightsizing/<run_id>/``) is always written, so a run
without AWS still leaves it. When ``sinks.aws.enabled`` is false nothing talks to AWS and the
result says so; otherwise every write (done or only planned) goes to the action log. Every
refusal goes there too, with its reason, whether AWS is on or not: groups the planner refused
(``models.capacity.scaling_guards``), groups not in ``capacity.allowed_asgs``, and groups whose live
state could not be read (no group is written to without its live bounds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.sinks.aws.action_log import ActionLog
from connectors.sinks.aws.autoscaling import SyncReport, describe_groups, sync_scheduled_actions
from connectors.sinks.aws.clients import AwsClient, aws_client
from connectors.sinks.aws.reports import Report, publish_report, render_report
from foresight.scaling_schema import GROUP_UNREADABLE, NOT_ALLOWED, REFUSAL_COLUMNS
from foresight.settings import Settings

PLAN_OPERATION = "PlanScheduledActions"  # the action log's operation for a refused group


@dataclass
class AwsPublishResult:
    """What the AWS sinks did in one run."""

    enabled: bool
    apply: bool
    local_report: Path
    s3_objects: int = 0
    s3_keys: list[str] = field(default_factory=list)
    scaling: dict[str, int] = field(default_factory=dict)
    actions_logged: int = 0
    skipped: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)  # asg_name, check, reason

    def summary(self) -> dict[str, Any]:
        return {
            "aws_enabled": self.enabled,
            "aws_apply": self.apply,
            "report": str(self.local_report),
            "s3_objects_written": self.s3_objects,
            "s3_keys": self.s3_keys,
            "asg_actions": self.scaling,
            "aws_actions_logged": self.actions_logged,
            "aws_skipped": self.skipped,
            "scaling_refused": self.refused,
        }


def write_local_report(report: Report, directory: Path) -> Path:
    """Write the report pair under ``directory`` (same relative keys as in S3); returns the JSON path."""
    json_path = directory / Path(report.json_key).name
    directory.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(report.json_body)
    (directory / Path(report.csv_key).name).write_bytes(report.csv_body)
    return json_path


def publish_capacity_actions(
    settings: Settings,
    recommendations: pd.DataFrame,
    actions: pd.DataFrame,
    *,
    run_id: str,
    groups: Iterable[str] = (),
    refusals: pd.DataFrame | None = None,
    metadata: Mapping[str, Any] | None = None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    s3: AwsClient | None = None,
    autoscaling: AwsClient | None = None,
) -> AwsPublishResult:
    """Write the local report, then (AWS enabled) the S3 report and the Auto Scaling schedule.

    ``refusals`` (``REFUSAL_COLUMNS``): groups the planner refused; they are logged and not
    touched at all (their existing Foresight actions stay as they are).
    """
    log = logger or logging.getLogger(__name__)
    aws = settings.sinks.aws
    report = render_report(
        recommendations,
        actions,
        prefix=aws.s3_prefix,
        run_id=run_id,
        metadata={"apply": aws.apply, **dict(metadata or {})},
    )
    local = write_local_report(report, settings.report_dir / "rightsizing" / run_id)
    result = AwsPublishResult(enabled=aws.enabled, apply=aws.apply, local_report=local)
    refused = _refused_groups(settings, actions, groups, refusals)
    action_log = None
    if aws.enabled or refused:
        action_log = ActionLog(settings.aws_action_log, run_id=run_id, dry_run=not (aws.enabled and aws.apply),
                               logger=log)
        for entry in refused:
            action_log.record("autoscaling", PLAN_OPERATION, entry["asg_name"], "refused", **entry)
    result.refused = list(refused)
    if not aws.enabled or action_log is None:
        result.skipped.append(
            "AWS sinks not configured (sinks.aws.enabled is false): no S3 report, no Auto Scaling"
        )
        log.info(result.skipped[-1])
        result.actions_logged = len(action_log.entries) if action_log is not None else 0
        return result
    mode = "applying" if aws.apply else "dry-run (pass --apply to act)"
    log.info("AWS sinks in %s, region %s; action log %s", mode, aws.region, settings.aws_action_log)
    if aws.s3_bucket:
        client = (
            s3
            if s3 is not None or not aws.apply
            else aws_client("s3", region=aws.region, endpoint_url=aws.endpoint_url)
        )
        result.s3_objects = publish_report(client, aws.s3_bucket, report, action_log, apply=aws.apply)
        result.s3_keys = [report.json_key, report.csv_key]
    else:
        result.skipped.append("no sinks.aws.s3_bucket: report not uploaded")
        log.info(result.skipped[-1])
    skip = {entry["asg_name"] for entry in refused}
    group_names = sorted((set(groups) | set(actions["asg_name"].astype(str))) - skip)
    if group_names:
        client = autoscaling or aws_client("autoscaling", region=aws.region, endpoint_url=aws.endpoint_url)
        result.scaling = _sync(settings, client, actions[~actions["asg_name"].isin(skip)], group_names,
                               action_log, result).as_dict()
    elif not skip:
        result.skipped.append("no service has capacity.services.<name>.asg_name: no scheduled actions")
        log.info(result.skipped[-1])
    result.actions_logged = len(action_log.entries)
    return result


def _refused_groups(
    settings: Settings, actions: pd.DataFrame, groups: Iterable[str], refusals: pd.DataFrame | None
) -> list[dict[str, str]]:
    """The planner's refusals, then every other group outside ``capacity.allowed_asgs``."""
    out = [] if refusals is None else [
        {k: str(v) for k, v in row.items() if k in REFUSAL_COLUMNS} for row in refusals.to_dict("records")
    ]
    allowed = settings.capacity.allowed_asgs
    if allowed is not None:
        services = dict(zip(actions["asg_name"].astype(str), actions["service"].astype(str), strict=False))
        for name in sorted((set(groups) | set(services)) - set(allowed) - {e["asg_name"] for e in out}):
            out.append({"service": services.get(name, _service_of(settings, name)), "asg_name": name,
                        "check": NOT_ALLOWED, "reason": f"{name} is not in capacity.allowed_asgs"})
    return out


def _sync(settings: Settings, client: AwsClient, actions: pd.DataFrame, group_names: list[str],
          action_log: ActionLog, result: AwsPublishResult) -> SyncReport:
    """Read the groups' live state, then reconcile; a group that cannot be read is not written."""
    try:
        live = describe_groups(client, group_names)
    except Exception as exc:  # noqa: BLE001 - no live bounds, no writes; logged and reported
        for name in group_names:
            entry = {"service": _service_of(settings, name), "asg_name": name, "check": GROUP_UNREADABLE,
                     "reason": f"{name}: live bounds unreadable: {exc}"}
            action_log.record("autoscaling", "DescribeAutoScalingGroups", name, "refused", **entry)
            result.refused.append(entry)
        return SyncReport()
    services = [c for c in settings.capacity.services.values() if c.asg_name]
    report = sync_scheduled_actions(
        client, actions, action_log, apply=settings.sinks.aws.apply, groups=group_names, live=live,
        allow_lower_min={str(c.asg_name) for c in services if c.allow_lower_min},
        allow_raise_max={str(c.asg_name) for c in services if c.allow_raise_max},
    )
    result.refused.extend({"service": _service_of(settings, r["asg_name"]), **r} for r in report.refused)
    return report


def _service_of(settings: Settings, asg_name: str) -> str:
    return next((name for name, c in settings.capacity.services.items() if c.asg_name == asg_name), "")
