"""Response steps as PagerDuty change events, Grafana annotations and escalation pages, checked
against the request-validating fakes (Grafana's "Create Annotation": only ``text`` is required)."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from connectors.sinks.grafana import GrafanaClient
from connectors.sinks.pagerduty_outbox import InvalidEventError, validate_event
from connectors.sinks.response.annotations import (
    AnnotationOutcome,
    StepAnnotator,
    change_event,
    step_annotation,
)
from connectors.sinks.response.escalation import escalation_event
from support.fake_grafana import FakeGrafana
from support.fake_pagerduty import alert_event_errors, change_event_errors

STEP = {"decision_id": "d1", "step": "refused", "time": pd.Timestamp("2026-12-07 12:00", tz="UTC"),
        "incident_id": "inc-1", "service": "cart", "rule": "scale", "action": "scale_out", "target": "cart-asg",
        "dry_run": True, "check": "cooldown", "detail": "cart-asg was acted on at 11:55:00Z"}


def test_a_step_is_a_valid_change_event_naming_the_guard_rail() -> None:
    event = change_event(STEP)
    assert change_event_errors({**event, "routing_key": "k" * 32}) == []
    assert event["payload"]["summary"].startswith("Foresight response [dry-run] refused (cooldown): scale_out cart-asg")
    assert event["payload"]["timestamp"] == "2026-12-07T12:00:00Z"


def test_an_escalation_is_a_critical_trigger_of_its_own_that_the_fake_accepts() -> None:
    event = escalation_event({**STEP, "step": "escalated", "check": ""}, "critical")
    assert event["dedup_key"] == "foresight/response/inc-1/scale" and event["payload"]["severity"] == "critical"
    assert alert_event_errors({**event, "routing_key": "k" * 32}) == []
    with pytest.raises(InvalidEventError, match="severity"):
        validate_event({**event, "payload": {**event["payload"], "severity": "sev1"}})


def test_step_annotations_are_created_once_per_step_and_tagged_with_the_incident() -> None:
    with FakeGrafana(token="t") as grafana, GrafanaClient(grafana.url, "t") as client:
        annotator, outcome = StepAnnotator(grafana=client), AnnotationOutcome()
        annotator.annotate(STEP, outcome)
        annotator.annotate(STEP, outcome)  # replayed: found by its step tag
        annotator.annotate({**STEP, "step": "planned", "check": ""}, outcome)
        assert outcome.grafana == 2 and not outcome.failed
        [first, _] = sorted(grafana.annotations.values(), key=lambda a: a["id"])
        assert first["time"] == step_annotation(STEP)["time"] and "incident:inc-1" in first["tags"]


def test_the_fake_grafana_creates_as_grafana_documents_it() -> None:
    with FakeGrafana(token="t") as grafana:
        post = requests.Session()
        post.headers["Authorization"] = "Bearer t"
        assert post.post(f"{grafana.url}/api/annotations", json={"text": "no time: stamped now"}, timeout=5).ok
        assert post.post(f"{grafana.url}/api/annotations", json={"time": 1_765_000_000_000}, timeout=5).status_code == 400
        assert post.post(f"{grafana.url}/api/annotations", json={"text": "x", "time": 1_765_000_000},
                         timeout=5).status_code == 400  # seconds, not milliseconds
        assert post.post(f"{grafana.url}/api/annotations", json={"text": "x", "colour": "red"},
                         timeout=5).status_code == 400
