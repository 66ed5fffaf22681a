"""The page an unverified response sends: an Events API v2 trigger for the outbox.

A separate alert, not a change to the incident's own page (``trigger_event`` is not touched): its
``dedup_key`` is ``foresight/response/<incident_id>/<rule>``, its severity
``response.escalate_severity`` (``critical`` by default, above the incident's own), its summary
says which action did not resolve which incident. The outbox skips it when it is already there,
so a re-run escalates once; the detect flow's delivery sends it like any other page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from connectors.sinks.pagerduty_outbox import (
    CLIENT,
    MAX_DEDUP_KEY,
    MAX_SUMMARY,
    routing_key_ref,
    validate_event,
)
from connectors.sinks.response.request import json_details


def escalation_dedup_key(incident_id: str, rule: str) -> str:
    return f"foresight/response/{incident_id}/{rule}"[:MAX_DEDUP_KEY]


def escalation_event(step: Mapping[str, Any], severity: str) -> dict[str, Any]:
    """A validated trigger for an ``escalated`` step (its audit details)."""
    summary = (f"[{step['service']}] automated {step['action']} of {step['target']} did not resolve incident "
               f"{step['incident_id']}: {step.get('detail') or 'still open'}")
    event = {
        "routing_key": routing_key_ref(),
        "event_action": "trigger",
        "dedup_key": escalation_dedup_key(str(step["incident_id"]), str(step["rule"])),
        "payload": {
            "summary": summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…",
            "source": str(step["target"]),
            "severity": severity,
            "timestamp": pd.Timestamp(step["time"]).tz_convert("UTC").isoformat().replace("+00:00", "Z"),
            "component": str(step["service"]),
            "group": str(step["service"]),
            "class": "response_escalation",
            "custom_details": json_details(step),
        },
        "links": [],
        "client": CLIENT,
    }
    validate_event(event)
    return event
