"""Rightsizing reports: one JSON and one CSV object per run, rendered here and put in S3.

The JSON holds the run's metadata, every recommendation and the planned scaling actions; the
CSV holds the recommendations only (one row per service), for spreadsheets and Athena. Keys are
``<prefix>/<run_id>/rightsizing.json`` and ``.csv``: a re-run of the same run overwrites its pair.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from connectors.sinks.aws.action_log import ActionLog
from connectors.sinks.aws.clients import AwsClient

SINK = "s3"


@dataclass(frozen=True)
class Report:
    """A rendered report: the two object keys and their bodies."""

    json_key: str
    csv_key: str
    json_body: bytes
    csv_body: bytes


def report_keys(prefix: str, run_id: str) -> tuple[str, str]:
    """The JSON and CSV keys of a run's report under ``prefix``."""
    if not run_id or "/" in run_id:
        raise ValueError(f"run_id must be non-empty and contain no '/', got {run_id!r}")
    base = f"{prefix.strip('/')}/{run_id}/rightsizing" if prefix.strip("/") else f"{run_id}/rightsizing"
    return f"{base}.json", f"{base}.csv"


def render_report(
    recommendations: pd.DataFrame,
    actions: pd.DataFrame,
    *,
    prefix: str,
    run_id: str,
    metadata: Mapping[str, Any],
) -> Report:
    """The report for a run (pure): JSON of metadata + recommendations + actions, CSV of recommendations."""
    json_key, csv_key = report_keys(prefix, run_id)
    document = {
        "run_id": run_id,
        **dict(metadata),
        "recommendations": _records(recommendations),
        "scaling_actions": _records(actions),
    }
    json_body = json.dumps(document, indent=2, sort_keys=False, default=str).encode()
    csv_body = recommendations.to_csv(index=False).encode()
    return Report(json_key, csv_key, json_body, csv_body)


def publish_report(s3: AwsClient | None, bucket: str, report: Report, log: ActionLog, *, apply: bool) -> int:
    """Put the report's two objects (apply) or only log what would be put (dry-run); returns the
    number of objects written."""
    written = 0
    for key, body, content_type in (
        (report.json_key, report.json_body, "application/json"),
        (report.csv_key, report.csv_body, "text/csv"),
    ):
        target = f"s3://{bucket}/{key}"
        if not apply:
            log.record(SINK, "PutObject", target, "dry-run", bytes=len(body))
            continue
        if s3 is None:
            raise ValueError("publish_report with apply needs an S3 client")
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as exc:
            log.record(SINK, "PutObject", target, "failed", bytes=len(body), error=str(exc))
            raise
        log.record(SINK, "PutObject", target, "applied", bytes=len(body))
        written += 1
    return written


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN/NaT -> null, timestamps -> ISO 8601 UTC, numpy -> Python."""
    out = []
    for row in frame.to_dict("records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
                clean[key] = None
            elif isinstance(value, pd.Timestamp):
                clean[key] = value.isoformat()
            elif isinstance(value, np.generic):
                clean[key] = value.item()
            else:
                clean[key] = value
        out.append(clean)
    return out
