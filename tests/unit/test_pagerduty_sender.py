"""PagerDuty delivery, the pure parts: retry waits, Retry-After, what a run sends, change events."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from connectors.sinks.pagerduty import PagerDutySender
from connectors.sinks.pagerduty_change_events import promotion_change_event, validate_change_event
from connectors.sinks.pagerduty_ledger import ledger_path, plan_delivery
from connectors.sinks.pagerduty_outbox import InvalidEventError, resolve_event, trigger_event
from connectors.sinks.pagerduty_retry import RetryPolicy, retry_after_seconds

KEY = "k" * 32
START = pd.Timestamp("2026-03-01 10:00", tz="UTC")


def _trigger(service: str = "checkout") -> dict:
    incident = {"service": service, "start": START, "severity": "error", "category": "saturation"}
    return trigger_event(incident, model_name="anomaly-detector", model_version="1")


def test_backoff_doubles_and_is_capped_and_bounded() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_wait=3.0)
    assert [policy.wait_before_retry(n, None) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    assert policy.wait_before_retry(5, None) is None  # five attempts made: stop


def test_retry_after_wins_over_backoff_unless_it_asks_too_much() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=4.0, max_wait=10.0)
    assert policy.wait_before_retry(1, 1.0) == 1.0
    assert policy.wait_before_retry(1, 0.0) == 0.0
    assert policy.wait_before_retry(1, 11.0) is None  # leave it for the next run
    assert policy.wait_before_retry(3, 1.0) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": -1}, "base_delay"),
        ({"max_wait": 0}, "max_wait"),
    ],
)
def test_retry_policy_rejects_nonsense(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("Sun, 01 Mar 2026 10:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Sun, 01 Mar 2026 09:00:00 GMT", now=now) == 0.0  # already past
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-3") is None


def test_plan_sends_pending_in_order_and_skips_delivered() -> None:
    a, b, c = _trigger("checkout"), _trigger("cart"), _trigger("search")
    plan = plan_delivery([a, c, b], {(a["dedup_key"], "trigger")})
    assert [e["dedup_key"] for e in plan.send] == [c["dedup_key"], b["dedup_key"]]
    assert plan.suppress == [] and plan.unroutable == []


def test_plan_holds_back_events_whose_reference_names_another_key() -> None:
    other = {**_trigger("cart"), "routing_key": {"ref": "sinks.other_routing_key"}}
    plan = plan_delivery([_trigger("checkout"), other], set())
    assert [e["dedup_key"] for e in plan.send] == [_trigger("checkout")["dedup_key"]]
    assert plan.unroutable == [other]


def test_plan_sends_a_resolve_whose_trigger_was_delivered() -> None:
    a = _trigger()
    resolve = resolve_event(a["dedup_key"])
    plan = plan_delivery([a, resolve], {(a["dedup_key"], "trigger")})
    assert [e["event_action"] for e in plan.send] == ["resolve"]


def test_plan_suppresses_a_problem_that_cleared_before_delivery() -> None:
    a, b = _trigger("checkout"), _trigger("cart")
    events = [a, b, resolve_event(a["dedup_key"])]
    plan = plan_delivery(events, set())
    assert [e["dedup_key"] for e in plan.send] == [b["dedup_key"]]
    assert [(e["dedup_key"], e["event_action"]) for e in plan.suppress] == [
        (a["dedup_key"], "trigger"),
        (a["dedup_key"], "resolve"),
    ]
    # On request, the past is paged too, trigger before resolve.
    loud = plan_delivery(events, set(), send_cleared=True)
    assert [e["event_action"] for e in loud.send] == ["trigger", "trigger", "resolve"] and loud.suppress == []


def test_promotion_change_event_shape() -> None:
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    event = promotion_change_event(
        "anomaly-detector",
        "7",
        "mase 0.8 beats champion 0.9",
        timestamp=when,
        metrics={"f1": 0.7, "nan": float("nan")},
        run_id="abc",
        links=[{"href": "http://grafana/d/x", "text": "dashboard"}],
    )
    payload = event["payload"]
    assert payload["summary"].startswith("Foresight: anomaly-detector v7 promoted to champion")
    assert payload["source"] == "foresight/anomaly-detector"
    assert payload["timestamp"] == "2026-03-01T12:00:00Z"
    assert payload["custom_details"] == {
        "registered_model": "anomaly-detector",
        "version": "7",
        "reason": "mase 0.8 beats champion 0.9",
        "metrics": {"f1": 0.7},
        "mlflow_run_id": "abc",
    }
    assert "routing_key" not in event  # the session adds it
    long = promotion_change_event("m", "1", "r" * 2000, timestamp=when)
    assert len(long["payload"]["summary"]) == 1024
    with pytest.raises(ValueError, match="timezone"):
        promotion_change_event("m", "1", "r", timestamp=datetime(2026, 3, 1))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "payload"),
        ({"payload": {"summary": " "}}, "payload.summary"),
        ({"payload": {"summary": "s", "timestamp": "noon"}}, "payload.timestamp"),
        ({"payload": {"summary": "s"}, "links": [{"text": "x"}]}, "links[0].href"),
    ],
)
def test_change_event_validation_names_the_field(event: dict, field: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        validate_change_event(event)
    assert info.value.field == field


def test_sender_rejects_a_key_that_is_not_an_integration_key() -> None:
    with pytest.raises(ValueError, match="32-character"):
        PagerDutySender("R0UT1NGKEY-secret")
    with pytest.raises(ValueError, match="http"):
        PagerDutySender(KEY, events_url="events.pagerduty.com")
    assert KEY not in repr(PagerDutySender(KEY))


def test_ledger_sits_beside_the_outbox(tmp_path) -> None:
    assert ledger_path(tmp_path / "pagerduty-events.jsonl") == tmp_path / "pagerduty-events.delivered.jsonl"


def test_the_sender_sends_only_events_that_reference_its_key() -> None:
    sender = PagerDutySender(KEY, events_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="sinks.other"):
        sender.send({**_trigger(), "routing_key": {"ref": "sinks.other"}})
    with pytest.raises(ValueError, match="no reference"):
        sender.send({**_trigger(), "routing_key": "x" * 32})
