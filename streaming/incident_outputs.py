"""Where incident events go: the PagerDuty outbox and the ``incidents`` topic, both idempotent.

- **Outbox**: ``open`` appends a trigger, ``resolved`` a resolve, both keyed by
  :func:`~connectors.sinks.pagerduty_outbox.incident_dedup_key` of the service and the incident's
  window start, the key the detect flow writes for the same incident (an incident the outbox
  already holds under the key older versions wrote keeps it); the outbox skips a
  ``(dedup_key, event_action)`` it already holds, so a message processed twice (a restart
  between an output and its checkpoint) never pages twice. ``reopened`` writes nothing: the
  page was resolved and PagerDuty would open a second incident for it, which the outbox's dedup
  refuses anyway; the topic carries it. A trigger explains itself as the detect flow's do
  (:func:`models.incidents.page_text.describe_incident`, from the evidence alone: the stream
  holds no telemetry frame to read a time to full from) with the configured links.
- **Response** (``response.enabled``): :func:`response_records` are the events as incident records
  for automated response (:mod:`response`), which the processor hands its ``responder``.
- **Topic**: one message per event, key = incident id, header ``foresight.incident_state``;
  at-least-once, so consumers dedupe by (incident id, state, at).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from connectors.sinks.pagerduty_outbox import Outbox, incident_dedup_key, resolve_event, trigger_event
from connectors.sinks.pagerduty_page_links import PageLinks
from models.incidents.page_text import describe_incident
from streaming.keyed_scoring import IncidentEvent

INCIDENT_MODEL = "anomaly-detector"  # the registered model whose incident pipeline the stream runs


class IncidentTopic(Protocol):
    def incident(self, topic: str, incident_id: str, state: str, body: Mapping[str, Any]) -> None: ...


def event_dedup_key(event: IncidentEvent, known: set[str] | frozenset[str] = frozenset()) -> str:
    """The page key of ``event``'s incident (``known``: the outbox's keys, for those paged before an upgrade)."""
    return incident_dedup_key(str(event.incident["service"]), event.incident["window_start"], known)


def outbox_events(
    events: Sequence[IncidentEvent],
    *,
    model_version: str,
    links: PageLinks | None = None,
    known: set[str] | frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """PagerDuty events for ``events`` (none for re-openings)."""
    links = links or PageLinks()
    out = []
    for event in events:
        key = event_dedup_key(event, known)
        if event.state == "open":
            incident = {**event.incident, "dedup_key": key, "end": None}
            text = describe_incident(incident, raised_by=f"stream processor ({INCIDENT_MODEL} v{model_version})",
                                     versions={INCIDENT_MODEL: model_version})
            service, start = str(incident["service"]), incident["start"]
            out.append(trigger_event(
                {**incident, "category": text.category}, model_name=INCIDENT_MODEL, model_version=model_version, summary=text.summary,
                details=text.details, links=links.links(service, start, None, text.fault_type, text.category),
                images=links.images(service, start, None), client_url=links.client(service, start, None),
            ))
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


def topic_body(event: IncidentEvent, dedup_key: str | None = None) -> dict[str, Any]:
    """The ``incidents`` topic message of one event."""
    return {
        "incident_id": event.incident_id,
        "state": event.state,
        "key": event.key,
        "at": event.at.isoformat(),
        "dedup_key": dedup_key or event_dedup_key(event),
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
    links: PageLinks | None = None,
) -> int:
    """Events to the outbox (durably, before returning) and to the topic (sent; flushed by the caller)."""
    if not events:
        return 0
    known = outbox.dedup_keys()
    written = outbox.append(outbox_events(events, model_version=model_version, links=links, known=known)).written
    for event in events:
        topic.incident(topic_name, event.incident_id, event.state, topic_body(event, event_dedup_key(event, known)))
    return written
