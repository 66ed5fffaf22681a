"""PagerDuty change events: the Change Events API body that announces a new champion model, and its check.

Pure; the sender (``connectors.sinks.pagerduty``) delivers them and the ledger keeps a retried
train task from announcing one promotion twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.sinks.pagerduty_outbox import (
    MAX_SUMMARY,
    InvalidEventError,
    check_links,
    check_summary_and_timestamp,
)


def promotion_change_event(
    registered_name: str,
    version: str,
    reason: str,
    *,
    timestamp: datetime,
    metrics: Mapping[str, float] | None = None,
    run_id: str | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A validated Change Events API body (without ``routing_key``) announcing a new champion."""
    if timestamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    details: dict[str, Any] = {"registered_model": registered_name, "version": str(version), "reason": reason}
    if metrics:
        details["metrics"] = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    if run_id:
        details["mlflow_run_id"] = run_id
    summary = f"Foresight: {registered_name} v{version} promoted to champion ({reason})"
    event: dict[str, Any] = {
        "payload": {
            "summary": summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…",
            "source": f"foresight/{registered_name}",
            "timestamp": timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "custom_details": details,
        },
        "links": list(links or []),
    }
    validate_change_event(event)
    return event


def validate_change_event(event: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidEventError` naming the first field that breaks a Change Events API rule."""
    payload = event.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidEventError("payload", "a change event needs a payload object", event)
    check_summary_and_timestamp(payload, event)
    check_links(event)
