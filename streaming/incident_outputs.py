"""Where incident events go: the PagerDuty outbox and the ``incidents`` topic, both idempotent.

- **Outbox**: ``open`` appends a trigger, ``resolved`` a resolve, both keyed by
  :func:`~connectors.sinks.pagerduty_outbox.dedup_key` of the registered model, the service and
  the incident's window start, the key the detect flow writes for the same incident; the outbox
  skips a ``(dedup_key, event_action)`` it already holds, so a message processed twice (a
  restart between an output and its checkpoint) never pages twice. ``reopened`` writes nothing:
  the page was resolved and PagerDuty would open a second incident for it, which the outbox's
  dedup refuses anyway; the topic carries it.
- **Response** (``response.enabled``): :func:`response_records` are the events as incident records
  for automated response (:mod:`response`), which the processor hands its ``responder``.
- **Topic**: one message per event, key = incident id, header ``foresight.incident_state``;
  at-least-once, so consumers dedupe by (incident id, state, at).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from connectors.sinks.pagerduty_outbox import Outbox, dedup_key, resolve_event, trigger_event
from streaming.keyed_scoring import IncidentEvent

INCIDENT_MODEL = "anomaly-detector"  # the registered model that pages (flows.detect.INCIDENT_MODEL)


class IncidentTopic(Protocol):
    def incident(self, topic: str, incident_id: str, state: str, body: Mapping[str, Any]) -> None: ...


def event_dedup_key(event: IncidentEvent) -> str:
    return dedup_key(INCIDENT_MODEL, str(event.incident["service"]), event.incident["window_start"])


def outbox_events(events: Sequence[IncidentEvent], *, model_version: str) -> list[dict[str, Any]]:
    """PagerDuty events for ``events`` (none for re-openings)."""
    out = []
    for event in events:
        key = event_dedup_key(event)
        if event.state == "open":
            incident = {
                **event.incident,
                "dedup_key": key,
                "end": None,
                "model_versions": {INCIDENT_MODEL: model_version},
            }
            out.append(trigger_event(incident, model_name=INCIDENT_MODEL, model_version=model_version))
        elif event.state == "resolved":
            out.append(resolve_event(key))
    return out


def response_records(events: Sequence[IncidentEvent]) -> list[dict[str, Any]]:
    """The events as incident records for automated response: open (``end`` None) unless resolved,
    a resolved one ending at its event's step when its row has no end."""
    out = []
    for event in events:
        end = event.incident.get("end")
        if event.state != "resolved":
            end = None
        elif end is None or end != end:  # None or NaT
            end = event.at
        out.append({**event.incident, "incident_id": event.incident_id, "end": end})
    return out


def topic_body(event: IncidentEvent) -> dict[str, Any]:
    """The ``incidents`` topic message of one event."""
    return {
        "incident_id": event.incident_id,
        "state": event.state,
        "key": event.key,
        "at": event.at.isoformat(),
        "dedup_key": event_dedup_key(event),
        "evidence_level": event.score,
        "incident": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.incident.items()},
    }


def publish(
    events: Sequence[IncidentEvent],
    *,
    outbox: Outbox,
    topic: IncidentTopic,
    topic_name: str,
    model_version: str,
) -> int:
    """Events to the outbox (durably, before returning) and to the topic (sent; flushed by the caller)."""
    if not events:
        return 0
    written = outbox.append(outbox_events(events, model_version=model_version)).written
    for event in events:
        topic.incident(topic_name, event.incident_id, event.state, topic_body(event))
    return written
