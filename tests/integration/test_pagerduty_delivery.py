"""PagerDuty delivery against a request-validating local fake: retries, the ledger, the detect flow's paging,
events written before a key was configured, no key on disk, change events on promotion and REST history
as labels."""

from __future__ import annotations

import copy
import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from connectors.labels.pagerduty_history import PagerDutyHistory, PagerDutyHistoryError, true_incidents
from connectors.sinks.pagerduty import PagerDutySender, deliver_outbox, notify_promotion
from connectors.sinks.pagerduty_ledger import DeliveryLedger, ledger_path
from connectors.sinks.pagerduty_outbox import Outbox, resolve_event, trigger_event
from connectors.sinks.pagerduty_retry import DeliveryError, RetryPolicy
from foresight.settings import Settings, load_settings
from support.fake_pagerduty import FakePagerDuty, running_fake_pagerduty

pytestmark = pytest.mark.integration

KEY = "e93facc04764012d7bfb002500d5d1a6"  # 32 characters, like a real integration key
START = pd.Timestamp("2026-03-01 10:00", tz="UTC")
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_wait=5.0)


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with running_fake_pagerduty() as server:
        yield server


def _settings(tmp_path: Path, fake: FakePagerDuty | None, **sinks: object) -> Settings:
    base: dict[str, object] = {"outbox_path": tmp_path / "outbox" / "pagerduty-events.jsonl"}
    if fake is not None:
        base |= {
            "pagerduty_routing_key": KEY,
            "pagerduty_events_url": fake.url,
            "pagerduty_max_attempts": 3,
            "pagerduty_max_wait_seconds": 5.0,
            "pagerduty_api_url": fake.url,
            "pagerduty_api_token": fake.api_token,
            "dashboard_url": "http://grafana.local/d/foresight",
        }
    return load_settings(home=tmp_path / "home", sinks=base | sinks)


def _sender(fake: FakePagerDuty, retry: RetryPolicy = FAST) -> PagerDutySender:
    return PagerDutySender(KEY, events_url=fake.url, retry=retry)


def _trigger(service: str = "checkout", start: pd.Timestamp = START) -> dict:
    incident = {
        "service": service,
        "start": start,
        "severity": "critical",
        "category": "resource_leak",
        "score": 0.9999,
    }
    return trigger_event(
        incident,
        model_name="anomaly-detector",
        model_version="3",
        links=[{"href": "http://grafana.local/d/foresight", "text": "dashboard"}],
    )


def _outbox(tmp_path: Path, events: list[dict]) -> tuple[Outbox, DeliveryLedger]:
    outbox = Outbox(tmp_path / "pagerduty-events.jsonl")
    outbox.append(events)
    return outbox, DeliveryLedger(ledger_path(outbox.path))


# -- the fake itself ---------------------------------------------------------------------------
VALID: dict[str, Any] = {
    "routing_key": "k" * 32,
    "event_action": "trigger",
    "dedup_key": "foresight/anomaly-detector/checkout/2026-03-01T10:00:00Z",
    "payload": {
        "summary": "checkout is leaking memory",
        "source": "checkout",
        "severity": "critical",
        "custom_details": {"score": 0.99},
    },
}


def _mutated(change) -> dict:
    event = copy.deepcopy(VALID)
    change(event)
    return event


def test_the_fake_answers_like_pagerduty(fake: FakePagerDuty) -> None:
    ok = requests.post(f"{fake.url}/v2/enqueue", json=VALID, timeout=5)
    assert ok.status_code == 202
    assert ok.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": VALID["dedup_key"],
    }
    again = requests.post(f"{fake.url}/v2/enqueue", json=VALID, timeout=5)  # joins the open alert
    assert again.status_code == 202 and len(fake.alerts) == 1 and fake.alerts[0].triggers == 2
    bad = requests.post(f"{fake.url}/v2/enqueue", json=_mutated(lambda e: e.pop("routing_key")), timeout=5)
    assert bad.status_code == 400 and bad.json()["message"] == "Event object is invalid"
    big = _mutated(lambda e: e["payload"]["custom_details"].update(blob="b" * 600_000))
    assert requests.post(f"{fake.url}/v2/enqueue", json=big, timeout=5).status_code == 400
    text = requests.post(f"{fake.url}/v2/enqueue", data=json.dumps(VALID), timeout=5)  # no Content-Type
    assert text.status_code == 400
    resolve = {"routing_key": "k" * 32, "event_action": "resolve", "dedup_key": VALID["dedup_key"]}
    assert requests.post(f"{fake.url}/v2/enqueue", json=resolve, timeout=5).status_code == 202
    assert fake.open_alerts() == [] and fake.incidents[0]["status"] == "resolved"
    # REST: token and Accept header are both required.
    headers = {
        "Authorization": f"Token token={fake.api_token}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }
    assert (
        requests.get(f"{fake.url}/incidents", headers=headers, timeout=5).json()["incidents"][0][
            "incident_key"
        ]
        == VALID["dedup_key"]
    )
    assert (
        requests.get(
            f"{fake.url}/incidents", headers={**headers, "Authorization": "Token token=x"}, timeout=5
        ).status_code
        == 401
    )
    assert (
        requests.get(
            f"{fake.url}/incidents", headers={**headers, "Accept": "application/json"}, timeout=5
        ).status_code
        == 406
    )
    too_far = {"offset": "9950", "limit": "100"}
    assert (
        requests.get(f"{fake.url}/incidents", headers=headers, params=too_far, timeout=5).status_code == 400
    )


# -- the sender --------------------------------------------------------------------------------
def test_trigger_carries_the_incident_and_the_fake_accepts_it(fake: FakePagerDuty) -> None:
    event = _trigger()
    assert _sender(fake).send(event) == event["dedup_key"]
    [sent] = fake.requests_to("/v2/enqueue")
    assert sent.status == 202 and sent.headers["Content-Type"] == "application/json"
    body = sent.body
    assert body["routing_key"] == KEY and body["dedup_key"] == event["dedup_key"]
    assert {
        k: body["payload"][k] for k in ("summary", "source", "severity", "component", "group", "class")
    } == {k: event["payload"][k] for k in ("summary", "source", "severity", "component", "group", "class")}
    assert body["payload"]["custom_details"]["model_version"] == "3"
    assert body["links"] == event["links"]
    assert [a.status for a in fake.open_alerts()] == ["triggered"]


def test_429_is_retried_after_what_retry_after_asks(fake: FakePagerDuty) -> None:
    fake.fail_next(1, status=429, retry_after="1")
    _sender(fake).send(_trigger())  # backoff alone would wait 0.01 s
    first, second = fake.requests_to("/v2/enqueue")
    assert (first.status, second.status) == (429, 202)
    waited = second.at - first.at
    assert 1.0 <= waited < 2.5, waited
    assert len(fake.open_alerts()) == 1


def test_5xx_is_retried_with_backoff_then_succeeds(fake: FakePagerDuty) -> None:
    fake.fail_next(2, status=503)
    _sender(fake).send(_trigger())
    assert [r.status for r in fake.requests_to("/v2/enqueue")] == [503, 503, 202]
    assert len(fake.open_alerts()) == 1


def test_a_retry_after_beyond_the_cap_defers_instead_of_blocking(fake: FakePagerDuty, tmp_path: Path) -> None:
    outbox, ledger = _outbox(tmp_path, [_trigger()])
    fake.fail_next(1, status=429, retry_after="3600")
    began = time.monotonic()
    report = _sender(fake).deliver(outbox, ledger)
    assert time.monotonic() - began < 1.0
    assert (report.delivered, report.pending) == (0, 1) and report.failures[0].status == 429
    assert len(fake.requests_to("/v2/enqueue")) == 1


def test_a_rejected_event_is_not_retried_and_does_not_hold_up_the_others(
    fake: FakePagerDuty, tmp_path: Path
) -> None:
    first, second = _trigger("checkout"), _trigger("cart")
    outbox, ledger = _outbox(tmp_path, [first, second])
    fake.fail_next(1, status=400)
    report = _sender(fake).deliver(outbox, ledger)
    assert (report.delivered, report.pending) == (1, 1)
    assert report.failures[0].dedup_key == first["dedup_key"] and not report.failures[0].retryable
    assert [r.status for r in fake.requests_to("/v2/enqueue")] == [400, 202]


def test_the_fake_rejects_what_pagerduty_rejects(fake: FakePagerDuty) -> None:
    bad = _trigger()
    bad["payload"]["severity"] = "sev1"  # the outbox would refuse this; send it past the outbox
    with pytest.raises(DeliveryError) as info:
        PagerDutySender("x" * 32, events_url=fake.url, retry=FAST).send(bad)
    assert info.value.status == 400 and not info.value.retryable
    assert "payload.severity" in info.value.detail and info.value.attempts == 1
    assert fake.alerts == []


# -- the outbox and its ledger -----------------------------------------------------------------
def test_permanent_failure_leaves_the_event_pending_and_the_next_run_delivers_it(
    fake: FakePagerDuty, tmp_path: Path
) -> None:
    first, second = _trigger("checkout"), _trigger("cart")
    outbox, ledger = _outbox(tmp_path, [first, second])
    fake.fail_next(100, status=500)
    report = _sender(fake).deliver(outbox, ledger)
    # Three attempts at the first event, then PagerDuty counts as down: the second is not tried.
    assert (report.delivered, report.pending) == (0, 2)
    assert [(f.status, f.retryable) for f in report.failures] == [(500, True)]
    assert len(fake.requests_to("/v2/enqueue")) == 3 and ledger.read() == []

    fake.clear_failures()
    report = _sender(fake).deliver(outbox, ledger)
    assert (report.delivered, report.pending, report.failures) == (2, 0, [])
    assert {a.dedup_key for a in fake.open_alerts()} == {first["dedup_key"], second["dedup_key"]}
    assert {(r["dedup_key"], r["state"]) for r in ledger.read()} == {
        (first["dedup_key"], "delivered"),
        (second["dedup_key"], "delivered"),
    }

    before = len(fake.requests)
    report = _sender(fake).deliver(outbox, ledger)  # nothing pending: nothing sent twice
    assert (report.delivered, report.pending) == (0, 0) and len(fake.requests) == before


def test_a_resolve_never_overtakes_its_trigger(fake: FakePagerDuty, tmp_path: Path) -> None:
    trig = _trigger()
    outbox, ledger = _outbox(tmp_path, [trig])
    fake.fail_next(100, status=502)
    _sender(fake).deliver(outbox, ledger)
    fake.clear_failures()
    outbox.append([resolve_event(trig["dedup_key"])])
    # Trigger and resolve both pending: the problem cleared before anyone heard; nobody is paged.
    report = _sender(fake).deliver(outbox, ledger)
    assert (report.delivered, report.suppressed, report.pending) == (0, 2, 0)
    assert fake.alerts == [] and fake.requests_to("/v2/enqueue")[-1].status == 502
    assert {r["state"] for r in ledger.read()} == {"suppressed"}


def test_concurrent_runs_send_each_event_once(fake: FakePagerDuty, tmp_path: Path) -> None:
    events = [_trigger(service) for service in ("checkout", "cart", "search", "payments")]
    outbox, ledger = _outbox(tmp_path, events)
    threads = [threading.Thread(target=_sender(fake).deliver, args=(outbox, ledger)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(fake.requests_to("/v2/enqueue")) == 4
    assert all(alert.triggers == 1 for alert in fake.alerts) and len(fake.alerts) == 4


def test_lines_an_older_version_wrote_with_a_key_are_delivered_and_scrubbed(
    fake: FakePagerDuty, tmp_path: Path
) -> None:
    path = tmp_path / "pagerduty-events.jsonl"
    keyed, placeholder = _trigger("checkout"), _trigger("cart")
    path.write_text("".join(json.dumps({**e, "routing_key": k}) + "\n"
                            for e, k in ((keyed, KEY), (placeholder, "embedded-outbox"))))
    path.chmod(0o644)
    report = _sender(fake).deliver(Outbox(path), DeliveryLedger(ledger_path(path)))
    assert (report.delivered, report.pending) == (2, 0)
    assert {(r.body["dedup_key"], r.body["routing_key"]) for r in fake.requests_to("/v2/enqueue")} == {
        (keyed["dedup_key"], KEY), (placeholder["dedup_key"], KEY)}
    assert KEY not in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger_path(path).stat().st_mode) == 0o600


def test_an_event_for_a_key_nobody_configured_stays_pending_and_says_why(
    fake: FakePagerDuty, tmp_path: Path
) -> None:
    other = {**_trigger("cart"), "routing_key": {"ref": "sinks.team_b_routing_key"}}
    path = tmp_path / "pagerduty-events.jsonl"
    path.write_text(json.dumps(other) + "\n")
    report = _sender(fake).deliver(Outbox(path), DeliveryLedger(ledger_path(path)))
    assert (report.delivered, report.pending, report.unroutable) == (0, 1, 1) and fake.requests == []
    assert "sinks.team_b_routing_key" in report.failures[0].detail


def test_deliver_outbox_is_a_no_op_in_embedded_mode(tmp_path: Path) -> None:
    assert deliver_outbox(_settings(tmp_path, None)) is None


# -- the detect flow's paging ------------------------------------------------------------------
def _incidents(end: pd.Timestamp | None = None) -> pd.DataFrame:
    """One service incident as ``models.incidents.rollup.build_incidents`` returns it: on a resource,
    starting mid-window (its identity is the service and the window, not the resource)."""
    start = START + pd.Timedelta(minutes=10)
    return pd.DataFrame(
        {
            "incident_id": ["inc-1"],
            "service": ["checkout"],
            "category": ["resource_leak"],
            "start": [start],
            "end": pd.to_datetime([end], utc=True),
            "severity": ["critical"],
            "score": [0.99995],
            "evidence": ['[{"unique_id": "checkout/i-1/mem_pct"}]'],
            "window_start": [start.floor("30min")],
            "resource_id": ["i-1"],
        }
    )


def _publish(settings: Settings, incidents: pd.DataFrame) -> dict:
    from flows.detect import publish_incidents

    return publish_incidents(
        settings,
        incidents,
        features=pd.DataFrame(),
        predictor=None,
        detector_version="3",
        predictor_version=None,
    )


def test_reruns_of_detect_hold_one_incident_and_recovery_resolves_it(
    prefect_harness, fake: FakePagerDuty, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, fake)
    first = _publish(settings, _incidents())
    second = _publish(settings, _incidents())  # same data again
    assert first["paging"]["delivered"] == 1 and second["paging"]["delivered"] == 0
    assert second["outbox"] == {"written": 0, "skipped_duplicates": 1}
    [alert] = fake.open_alerts()
    assert alert.triggers == 1 and len(fake.requests_to("/v2/enqueue")) == 1
    sent = alert.trigger_event["payload"]
    assert alert.dedup_key == f"foresight/incident-pipeline/checkout/{START.floor('30min'):%Y-%m-%dT%H:%M:%S}Z"
    assert sent["custom_details"]["anomaly_detector_version"] == "3"
    assert "failure_predictor_version" not in sent["custom_details"]
    assert sent["custom_details"]["score"] == 1.0 and sent["custom_details"]["instance"] == "i-1"
    assert alert.trigger_event["links"] == [
        {"href": "http://grafana.local/d/foresight", "text": "Foresight dashboard"}
    ]
    assert alert.trigger_event["client"] == "Foresight"
    assert alert.trigger_event["client_url"] == "http://grafana.local/d/foresight"

    recovered = _publish(settings, _incidents(end=START + pd.Timedelta(hours=2)))
    assert recovered["paging"]["delivered"] == 1
    assert fake.open_alerts() == [] and [a.status for a in fake.alerts] == ["resolved"]
    assert [r.body["event_action"] for r in fake.requests_to("/v2/enqueue")] == ["trigger", "resolve"]
    assert len({r.body["dedup_key"] for r in fake.requests_to("/v2/enqueue")}) == 1  # the resolve hits the page


def test_an_incident_paged_before_the_upgrade_keeps_its_key_and_its_resolve_closes_it(
    prefect_harness, fake: FakePagerDuty, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, fake)
    legacy = f"foresight/anomaly-detector/checkout/{START.floor('30min'):%Y-%m-%dT%H:%M:%S}Z"
    # What the version before wrote and delivered for the open incident.
    Outbox(settings.outbox_path).append([{**_trigger(start=START + pd.Timedelta(minutes=10)), "dedup_key": legacy}])
    assert deliver_outbox(settings).delivered == 1
    again = _publish(settings, _incidents())  # the upgraded detect flow over the same data
    assert again["outbox"] == {"written": 0, "skipped_duplicates": 1} and again["paging"]["delivered"] == 0
    recovered = _publish(settings, _incidents(end=START + pd.Timedelta(hours=2)))
    assert recovered["paging"]["delivered"] == 1
    assert [(r.body["event_action"], r.body["dedup_key"]) for r in fake.requests_to("/v2/enqueue")] == [
        ("trigger", legacy), ("resolve", legacy)
    ]
    assert fake.open_alerts() == [] and len(fake.alerts) == 1


def test_a_page_with_images_client_url_and_links_arrives_whole(fake: FakePagerDuty) -> None:
    image = {"src": "https://grafana.example.com/render/d-solo/x/y?panelId=4", "href": "https://grafana.example.com/d/x",
             "alt": "evidence"}
    event = trigger_event({"service": "cart", "start": START, "severity": "error"}, model_name="m", model_version="1",
                          summary="[cart] i-1: memory 96 % (normal 70 %), full in ~70 min", details={"instance": "i-1"},
                          links=[{"href": "https://runbooks.example.com/leak", "text": "Runbook"}], images=[image],
                          client_url="https://grafana.example.com/d/x")
    _sender(fake).send(event)
    [sent] = fake.requests_to("/v2/enqueue")
    assert sent.status == 202
    for name in ("links", "images", "client", "client_url"):
        assert sent.body[name] == event[name], name  # pdpyras' trigger() would drop client and client_url
    assert sent.body["payload"] == event["payload"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda e: e["payload"].update(summary="s" * 1025), "'summary' is too long (maximum is 1024 characters)"),
        (lambda e: e.update(links=[{"text": "no href"}]), "'links[0].href' is required and must be a string"),
        (lambda e: e.update(links=[{"href": "https://x", "text": 1}]), "'links[0].text' must be a string"),
    ],
)
def test_an_over_long_summary_or_a_malformed_link_past_the_outbox_is_refused(fake: FakePagerDuty, change, error) -> None:
    bad = _trigger()
    change(bad)  # what the outbox refuses, sent past it: PagerDuty answers 400 with its error object
    with pytest.raises(DeliveryError) as info:
        _sender(fake).send(bad)
    assert info.value.status == 400 and not info.value.retryable
    body = json.loads(info.value.detail)
    assert body == {"status": "invalid event", "message": "Event object is invalid", "errors": [error]}


def test_embedded_mode_writes_only_the_outbox(prefect_harness, fake: FakePagerDuty, tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    result = _publish(settings, _incidents())
    assert result["paging"] is None and result["outbox"]["written"] == 1
    assert fake.requests == []
    assert not ledger_path(settings.outbox_path).exists()


def test_events_written_before_a_key_was_configured_are_delivered_once_it_is(
    prefect_harness, fake: FakePagerDuty, tmp_path: Path
) -> None:
    # A week with the key misspelt (issue 12): one problem opened and cleared, one still open.
    embedded = _settings(tmp_path, None)
    cleared = _incidents(end=START + pd.Timedelta(hours=1))
    still_open = _incidents().assign(service="cart", incident_id="inc-2")
    assert _publish(embedded, pd.concat([cleared, still_open], ignore_index=True))["outbox"]["written"] == 3
    assert fake.requests == []

    configured = _settings(tmp_path, fake)  # the key fixed: same home, same outbox
    report = deliver_outbox(configured)
    assert report is not None and (report.delivered, report.suppressed, report.pending) == (1, 2, 0)
    [sent] = fake.requests_to("/v2/enqueue")
    assert sent.status == 202 and sent.body["routing_key"] == KEY
    assert sent.body["payload"]["component"] == "cart"  # the open one pages; the cleared one does not
    states = {(r["dedup_key"].split("/")[2], r["event_action"], r["state"]) for r in DeliveryLedger(
        ledger_path(configured.outbox_path)).read()}
    assert states == {("cart", "trigger", "delivered"), ("checkout", "trigger", "suppressed"),
                      ("checkout", "resolve", "suppressed")}
    assert deliver_outbox(configured).delivered == 0  # nothing twice


def test_the_key_never_reaches_the_outbox_or_the_ledger(prefect_harness, fake: FakePagerDuty, tmp_path: Path) -> None:
    settings = _settings(tmp_path, fake)
    _publish(settings, _incidents())
    _publish(settings, _incidents(end=START + pd.Timedelta(hours=2)))
    assert len(fake.requests_to("/v2/enqueue")) == 2
    for path in (settings.outbox_path, ledger_path(settings.outbox_path)):
        assert KEY not in path.read_text(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    events = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert [e["routing_key"] for e in events] == [{"ref": "sinks.pagerduty_routing_key"}] * 2


# -- change events on promotion ----------------------------------------------------------------
def test_promotion_sends_one_change_event(fake: FakePagerDuty, tmp_path: Path) -> None:
    settings = _settings(tmp_path, fake)
    assert notify_promotion(
        settings, "anomaly-detector", "4", "f1 0.71 beats champion 0.62", metrics={"f1": 0.71}, run_id="run-1"
    )
    [change] = fake.change_events
    assert change["routing_key"] == KEY
    assert change["payload"]["summary"].startswith("Foresight: anomaly-detector v4 promoted to champion")
    assert change["payload"]["custom_details"]["metrics"] == {"f1": 0.71}
    assert change["links"] == [{"href": "http://grafana.local/d/foresight", "text": "Foresight dashboard"}]
    # A retried train task announces nothing twice; a new version is news.
    assert notify_promotion(settings, "anomaly-detector", "4", "again")
    assert notify_promotion(settings, "anomaly-detector", "5", "better still")
    assert [c["payload"]["custom_details"]["version"] for c in fake.change_events] == ["4", "5"]


def test_promotion_notice_is_best_effort(fake: FakePagerDuty, tmp_path: Path) -> None:
    assert not notify_promotion(_settings(tmp_path, None), "m", "1", "r")  # embedded: nothing to send
    settings = _settings(tmp_path, fake, pagerduty_max_attempts=2)
    fake.fail_next(100, status=503)
    assert not notify_promotion(settings, "m", "1", "r")
    assert len(fake.requests_to("/v2/change/enqueue")) == 2
    fake.clear_failures()
    assert notify_promotion(settings, "m", "1", "r")  # not recorded as sent, so the next call sends
    assert len(fake.change_events) == 1


# -- REST history as labels --------------------------------------------------------------------
def test_history_pages_through_incidents_and_reads_false_positive_notes(fake: FakePagerDuty) -> None:
    for i in range(130):
        day, hour = 1 + i // 24, i % 24
        fake.add_incident(
            created_at=f"2026-03-{day:02d}T{hour:02d}:00:00Z",
            resolved_at=f"2026-03-{day:02d}T{hour:02d}:40:00Z",
            title=f"[cart] disk on i-{i} since x",
            notes=["#false-positive"] if i % 10 == 0 else [],
        )
    fake.add_incident(
        created_at="2026-03-07T00:00:00Z", status="triggered", title="DB down", service="Database"
    )
    fake.add_incident(created_at="2025-06-01T00:00:00Z", title="too old")
    history = PagerDutyHistory(fake.api_token, api_url=fake.url, backoff_seconds=0.01)
    fake.fail_next(1, status=429)
    labels = history.labels("2026-01-01", "2026-09-01")  # more than the 6 months one query may span
    assert len(labels) == 131 and labels["pagerduty_id"].is_unique
    assert int(labels["false_positive"].sum()) == 13
    assert set(labels["service"]) == {"cart", "Database"} and set(labels["category"]) == {"disk", "unknown"}
    assert labels["end"].isna().sum() == 1
    pages = [r for r in fake.requests_to("/incidents") if r.status == 200]
    assert [(p.query["offset"], p.query["limit"]) for p in pages] == [
        (["0"], ["100"]),
        (["100"], ["100"]),
        (["0"], ["100"]),
    ]  # two pages, then the second window
    assert all(r.status == 200 for r in fake.requests if r.path.endswith("/notes"))
    assert len([r for r in fake.requests if r.path.endswith("/notes")]) == 130  # resolved ones only
    assert len(true_incidents(labels)) == 118


def test_history_of_pages_foresight_sent(fake: FakePagerDuty) -> None:
    sender = _sender(fake)
    noisy, real = _trigger("checkout"), _trigger("cart", START + pd.Timedelta(hours=1))
    for event in (noisy, real):
        sender.send(event)
        sender.send(resolve_event(event["dedup_key"]))
    noisy_incident = next(i for i in fake.incidents if i["incident_key"] == noisy["dedup_key"])
    fake.add_note(noisy_incident["id"], "Backup job, expected. #false-positive")
    now = pd.Timestamp.now(tz="UTC")
    labels = PagerDutyHistory(fake.api_token, api_url=fake.url).labels(
        now - pd.Timedelta(days=1), now + pd.Timedelta(minutes=1)
    )
    by_key = labels.set_index("incident_key")
    assert (
        by_key.loc[noisy["dedup_key"], "false_positive"]
        and not by_key.loc[real["dedup_key"], "false_positive"]
    )
    assert list(by_key["service"]) == ["checkout", "cart"] and set(by_key["category"]) == {"resource_leak"}
    assert by_key["end"].notna().all()


def test_history_needs_the_right_token(fake: FakePagerDuty) -> None:
    history = PagerDutyHistory("wrong-token", api_url=fake.url)
    with pytest.raises(PagerDutyHistoryError) as info:
        history.incidents("2026-03-01", "2026-03-02")
    assert info.value.status == 401


def test_history_reader_comes_from_the_settings(fake: FakePagerDuty, tmp_path: Path) -> None:
    assert PagerDutyHistory.from_settings(_settings(tmp_path, None)) is None
    history = PagerDutyHistory.from_settings(_settings(tmp_path, fake, pagerduty_false_positive_tag="#noise"))
    assert history is not None and history.api_url == fake.url and history.tag == "#noise"
    assert fake.api_token not in repr(history)
    fake.add_incident(created_at="2026-03-01T10:00:00Z", notes=["#noise"])
    assert history.labels("2026-03-01", "2026-03-02")["false_positive"].tolist() == [True]


def test_history_gives_up_after_bounded_retries(fake: FakePagerDuty) -> None:
    fake.fail_next(100, status=503)
    history = PagerDutyHistory(fake.api_token, api_url=fake.url, max_attempts=3, backoff_seconds=0.01)
    with pytest.raises(PagerDutyHistoryError) as info:
        history.incidents("2026-03-01", "2026-03-02")
    assert info.value.status == 503 and len(fake.requests_to("/incidents")) == 3
