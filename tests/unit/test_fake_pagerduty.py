"""The PagerDuty fake's validation rejects what PagerDuty documents as invalid (the delivery tests lean on it)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from support.fake_pagerduty import alert_event_errors, change_event_errors

VALID: dict[str, Any] = {
    "routing_key": "k" * 32,
    "event_action": "trigger",
    "dedup_key": "foresight/anomaly-detector/checkout/2026-03-01T10:00:00Z",
    "payload": {
        "summary": "checkout is leaking memory",
        "source": "checkout",
        "severity": "critical",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "custom_details": {"score": 0.99},
    },
    "links": [{"href": "https://grafana.local/d/x", "text": "dashboard"}],
}


def _mutated(change) -> dict:
    event = copy.deepcopy(VALID)
    change(event)
    return event


def test_a_documented_example_is_valid() -> None:
    assert alert_event_errors(VALID) == []
    full = _mutated(lambda e: e.update(
        client="Sample Monitoring Service", client_url="https://monitoring.example.com",
        images=[{"src": "https://example.com/i.png", "href": "https://example.com/", "alt": "Example text"}],
    ))
    full["payload"].update(component="postgres", group="prod-datapipe", **{"class": "deploy"})
    assert alert_event_errors(full) == []
    assert alert_event_errors(_mutated(lambda e: e["payload"].update(summary="s" * 1024))) == []
    assert alert_event_errors({"routing_key": "k" * 32, "event_action": "resolve", "dedup_key": "x"}) == []
    assert change_event_errors({"routing_key": "k" * 32, "payload": {"summary": "deployed"}}) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(routing_key="k" * 31), "routing_key"),
        (lambda e: e.update(event_action="escalate"), "event_action"),
        (lambda e: e.update(dedup_key="d" * 256), "dedup_key"),
        (lambda e: e.update(event_action="resolve", dedup_key=None), "dedup_key"),
        (lambda e: e["payload"].pop("summary"), "payload.summary"),
        (lambda e: e["payload"].update(summary="s" * 1025), "summary"),
        (lambda e: e["payload"].update(summary=["a list"]), "payload.summary"),
        (lambda e: e["payload"].update(component=7), "payload.component"),
        (lambda e: e["payload"].update(group={"a": 1}), "payload.group"),
        (lambda e: e["payload"].update({"class": 3.5}), "payload.class"),
        (lambda e: e.update(client=1), "client"),
        (lambda e: e.update(client_url=["https://x"]), "client_url"),
        (lambda e: e.update(links={"href": "https://x"}), "links"),
        (lambda e: e.update(links=["https://x"]), "links[0]"),
        (lambda e: e.update(links=[{"href": 5}]), "links[0].href"),
        (lambda e: e.update(links=[{"href": "https://x", "text": 5}]), "links[0].text"),
        (lambda e: e.update(images="https://x/i.png"), "images"),
        (lambda e: e.update(images=[{"src": "https://x/i.png", "alt": ["a"]}]), "images[0].alt"),
        (lambda e: e.update(images=[{"src": "https://x/i.png", "href": 1}]), "images[0].href"),
        (lambda e: e["payload"].pop("source"), "payload.source"),
        (lambda e: e["payload"].update(severity="fatal"), "payload.severity"),
        (lambda e: e["payload"].update(timestamp="yesterday"), "payload.timestamp"),
        (lambda e: e["payload"].update(custom_details=[1]), "payload.custom_details"),
        (lambda e: e.update(links=[{"text": "no href"}]), "links[0].href"),
        (lambda e: e.update(images=[{"href": "x"}]), "images[0].src"),
    ],
)
def test_each_documented_rule_is_enforced(change, field: str) -> None:
    errors = alert_event_errors(_mutated(change))
    assert any(f"'{field}'" in error for error in errors), errors
