"""Each response step annotated on its incident: a PagerDuty change event and a Grafana annotation.

A step is given as its audit details (``decision_id``, ``step``, ``time``, ``incident_id``,
``service``, ``rule``, ``action``, ``target``, ``dry_run``, ``check``, ``detail``). Both are
idempotent per ``(decision_id, step)``: the change event through the PagerDuty delivery ledger
(key ``change/response/<decision>/<step>``), the Grafana annotation through its tag
``response:<decision>:<step>`` looked up before creating. Best effort: a sink that is down is
reported in :class:`AnnotationOutcome`, never raised, since the action and its audit row stand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from connectors.sinks.grafana import GrafanaClient, GrafanaError, epoch_ms, incident_tag
from connectors.sinks.pagerduty import PagerDutySender
from connectors.sinks.pagerduty_change_events import validate_change_event
from connectors.sinks.pagerduty_ledger import CHANGE_ACTION, DELIVERED, DeliveryLedger, ledger_record
from connectors.sinks.pagerduty_outbox import MAX_SUMMARY
from connectors.sinks.pagerduty_retry import DeliveryError
from connectors.sinks.response.request import json_details

log = logging.getLogger(__name__)
RESPONSE_TAGS: tuple[str, ...] = ("foresight", "response")


@dataclass
class AnnotationOutcome:
    """Counts of what the annotator sent, and what failed (sink -> last error)."""

    pagerduty: int = 0
    grafana: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def step_summary(step: Mapping[str, Any]) -> str:
    """One line for people: ``Foresight response [dry-run] refused: scale_out cart-asg (cooldown: ...)``."""
    mode = " [dry-run]" if step.get("dry_run") else ""
    check = f" ({step['check']})" if step.get("check") else ""
    detail = f": {step['detail']}" if step.get("detail") else ""
    text = (f"Foresight response{mode} {step['step']}{check}: {step['action']} {step['target']} "
            f"for {step['service']} incident {step['incident_id']} (rule {step['rule']}){detail}")
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def change_event(step: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Change Events API body (without ``routing_key``) for one step."""
    stamp = pd.Timestamp(step["time"]).tz_convert("UTC").isoformat().replace("+00:00", "Z")
    event: dict[str, Any] = {
        "payload": {"summary": step_summary(step), "source": "foresight/response", "timestamp": stamp,
                    "custom_details": json_details(step)},
        "links": [],
    }
    validate_change_event(event)
    return event


def step_annotation(step: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /api/annotations`` body for one step: a point at the step's time, tagged with
    the incident (as the incident's own annotation is) and the step."""
    return {
        "time": epoch_ms(step["time"]),
        "tags": [*RESPONSE_TAGS, f"service:{step['service']}", incident_tag(str(step["incident_id"])),
                 f"step:{step['step']}", step_tag(step)],
        "text": step_summary(step),
    }


def step_tag(step: Mapping[str, Any]) -> str:
    return f"response:{step['decision_id']}:{step['step']}"


class StepAnnotator:
    """Annotates steps in PagerDuty (with a sender) and Grafana (with a client); either may be None."""

    def __init__(self, *, sender: PagerDutySender | None = None, ledger: DeliveryLedger | None = None,
                 grafana: GrafanaClient | None = None) -> None:
        if sender is not None and ledger is None:
            raise ValueError("a PagerDuty sender needs the delivery ledger (one change event per step)")
        self.sender, self.ledger, self.grafana = sender, ledger, grafana

    def annotate(self, step: Mapping[str, Any], outcome: AnnotationOutcome) -> None:
        if self.sender is not None and self.ledger is not None:
            key = f"change/response/{step['decision_id']}/{step['step']}"
            try:
                if (key, CHANGE_ACTION) not in self.ledger.identities():
                    self.sender.send_change(change_event(step))
                    self.ledger.append([ledger_record(key, CHANGE_ACTION, DELIVERED)])
                    outcome.pagerduty += 1
            except DeliveryError as exc:
                log.warning("response step %s not annotated in PagerDuty: %s", key, exc)
                outcome.failed["pagerduty"] = str(exc)
        if self.grafana is not None:
            try:
                if not self.grafana.find_annotations([step_tag(step)], limit=1):
                    self.grafana.create_annotation(step_annotation(step))
                    outcome.grafana += 1
            except (GrafanaError, OSError) as exc:  # requests' connection errors are OSErrors
                log.warning("response step %s not annotated in Grafana: %s", step_tag(step), exc)
                outcome.failed["grafana"] = str(exc)
