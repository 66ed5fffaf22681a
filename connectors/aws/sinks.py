"""The AWS sinks of one forecast-and-plan run: the rightsizing report to S3 and the scheduled
actions to Auto Scaling, dry-run unless ``sinks.aws.apply``.

A local copy of the report (``<report_dir>/rightsizing/<run_id>/``) is always written, so a run
without AWS still leaves it. When ``sinks.aws.enabled`` is false nothing talks to AWS and the
result says so; otherwise every write (done or only planned) goes to the action log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.aws.action_log import ActionLog
from connectors.aws.autoscaling import sync_scheduled_actions
from connectors.aws.clients import AwsClient, aws_client
from connectors.aws.reports import Report, publish_report, render_report
from foresight.settings import Settings


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
    metadata: Mapping[str, Any] | None = None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    s3: AwsClient | None = None,
    autoscaling: AwsClient | None = None,
) -> AwsPublishResult:
    """Write the local report, then (AWS enabled) the S3 report and the Auto Scaling schedule."""
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
    if not aws.enabled:
        result.skipped.append(
            "AWS sinks not configured (sinks.aws.enabled is false): no S3 report, no Auto Scaling"
        )
        log.info(result.skipped[-1])
        return result
    action_log = ActionLog(settings.aws_action_log, run_id=run_id, dry_run=not aws.apply, logger=log)
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
    group_names = sorted(set(groups) | set(actions["asg_name"].astype(str)))
    if group_names:
        client = autoscaling or aws_client("autoscaling", region=aws.region, endpoint_url=aws.endpoint_url)
        result.scaling = sync_scheduled_actions(
            client, actions, action_log, apply=aws.apply, groups=group_names
        ).as_dict()
    else:
        result.skipped.append("no service has capacity.services.<name>.asg_name: no scheduled actions")
        log.info(result.skipped[-1])
    result.actions_logged = len(action_log.entries)
    return result
