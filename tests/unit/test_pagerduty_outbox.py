"""PagerDuty outbox: event shape per Events API v2, deterministic dedup keys, idempotent appends,
no routing key on disk (a reference instead), owner-only files."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from connectors.sinks.pagerduty_outbox import (
    MAX_DEDUP_KEY,
    InvalidEventError,
    Outbox,
    dedup_key,
    resolve_event,
    routing_key_ref,
    trigger_event,
    validate_event,
)

START = pd.Timestamp("2026-03-01 10:15", tz="UTC")
KEY = "e93facc04764012d7bfb002500d5d1a6"  # 32 characters, like a real integration key
REF = {"ref": "sinks.pagerduty_routing_key"}


def _incident(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "incident_id": "inc-1",
        "service": "checkout",
        "resource_id": "i-0abc123",
        "category": "resource_leak",
        "start": START,
        "end": pd.NaT,
        "severity": "critical",
        "score": 0.97,
    }
    return base | overrides


def _trigger(**overrides: object) -> dict:
    return trigger_event(
        _incident(**overrides),
        model_name="robust_seasonal",
        model_version="3",
        links=[{"href": "http://grafana.local/d/foresight-capacity", "text": "Capacity dashboard"}],
    )


def test_dedup_key_is_readable_and_deterministic() -> None:
    key = dedup_key("robust_seasonal", "i-0abc123", START)
    assert key == "foresight/robust_seasonal/i-0abc123/2026-03-01T10:15:00Z"
    # Same instant in another zone gives the same key.
    assert dedup_key("robust_seasonal", "i-0abc123", START.tz_convert("Asia/Tokyo")) == key
    assert dedup_key("robust_seasonal", "i-0abc124", START) != key


def test_long_dedup_key_is_hashed_within_limit_and_stays_unique() -> None:
    a = dedup_key("m", "x" * 400 + "a", START)
    b = dedup_key("m", "x" * 400 + "b", START)
    assert len(a) <= MAX_DEDUP_KEY and len(b) <= MAX_DEDUP_KEY
    assert a.startswith("foresight/m/xxx") and a != b
    assert a == dedup_key("m", "x" * 400 + "a", START)


def test_trigger_event_has_the_events_api_v2_shape() -> None:
    event = _trigger()
    assert set(event) == {"routing_key", "event_action", "dedup_key", "payload", "links", "client"}
    assert event["routing_key"] == REF == routing_key_ref()
    assert event["event_action"] == "trigger"
    assert event["client"] == "Foresight"
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "i-0abc123"
    assert payload["component"] == "checkout" and payload["group"] == "checkout"
    assert payload["class"] == "resource_leak"
    assert datetime.fromisoformat(payload["timestamp"]) == START.to_pydatetime()
    assert "checkout" in payload["summary"] and len(payload["summary"]) <= 1024
    details = payload["custom_details"]
    assert details["model_version"] == "3" and details["end"] is None and details["score"] == 0.97
    json.dumps(event)  # everything is JSON-serialisable


def test_trigger_falls_back_to_service_as_entity_and_truncates_summary() -> None:
    event = _trigger(resource_id=None, description="x" * 5000)
    assert event["payload"]["source"] == "checkout"
    assert event["dedup_key"] == dedup_key("robust_seasonal", "checkout", START)
    assert len(event["payload"]["summary"]) == 1024


def test_an_incident_that_carries_its_dedup_key_is_triggered_under_it() -> None:
    # The detect flow keys an incident by service and window and resolves it under that key.
    key = dedup_key("anomaly-detector", "checkout", START.floor("30min"))
    assert _trigger(dedup_key=key)["dedup_key"] == key
    assert _trigger(dedup_key=None)["dedup_key"] == dedup_key("robust_seasonal", "i-0abc123", START)


def test_events_name_the_key_setting_and_resolve_matches_trigger() -> None:
    trig = trigger_event(_incident(), model_name="m", model_version="1", links=[])
    res = resolve_event(trig["dedup_key"])
    assert res == {"routing_key": REF, "event_action": "resolve", "dedup_key": trig["dedup_key"]}
    assert trig["routing_key"] == REF
    # A wire event (the key itself, as the sender's session adds it) is still a valid event.
    validate_event({**trig, "routing_key": KEY})


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("routing_key"), "routing_key"),
        (lambda e: e.update(routing_key={"ref": ""}), "routing_key"),
        (lambda e: e.update(routing_key={"ref": "sinks.x", "key": KEY}), "routing_key"),
        (lambda e: e.update(event_action="explode"), "event_action"),
        (lambda e: e.update(dedup_key="k" * 256), "dedup_key"),
        (lambda e: e["payload"].update(severity="fatal"), "payload.severity"),
        (lambda e: e["payload"].update(summary=""), "payload.summary"),
        (lambda e: e["payload"].update(summary="s" * 1025), "payload.summary"),
        (lambda e: e["payload"].pop("source"), "payload.source"),
        (lambda e: e["payload"].update(timestamp="yesterday"), "payload.timestamp"),
        (lambda e: e.update(links=[{"text": "no href"}]), "links[0].href"),
        (lambda e: e["payload"]["custom_details"].update(blob="b" * 600_000), "payload"),
    ],
)
def test_validation_names_the_broken_field(mutate, field: str) -> None:
    event = _trigger()
    mutate(event)
    with pytest.raises(InvalidEventError) as info:
        validate_event(event)
    assert info.value.field == field
    assert field in str(info.value)


def test_incident_without_severity_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="incident.severity"):
        _trigger(severity=None)


def test_resolve_requires_a_dedup_key() -> None:
    with pytest.raises(InvalidEventError, match="dedup_key"):
        resolve_event("")


def test_outbox_append_skips_duplicates_across_runs(tmp_path) -> None:
    outbox = Outbox(tmp_path / "outbox" / "events.jsonl")
    first, second = _trigger(), _trigger(start=START + pd.Timedelta(hours=2))
    assert outbox.read() == []
    report = outbox.append([first, second, first])
    assert (report.written, report.skipped_duplicates) == (2, 1)
    # A re-run appends nothing; a resolve of the same key is a different event and is kept.
    report = outbox.append([first, second, resolve_event(first["dedup_key"])])
    assert (report.written, report.skipped_duplicates) == (1, 2)
    events = outbox.read()
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve"]
    assert events[0] == first
    lines = (tmp_path / "outbox" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["dedup_key"] for line in lines)


def test_outbox_writes_nothing_when_any_event_is_invalid(tmp_path) -> None:
    outbox = Outbox(tmp_path / "events.jsonl")
    bad = _trigger()
    bad["payload"]["severity"] = "sev1"
    with pytest.raises(InvalidEventError):
        outbox.append([_trigger(), bad])
    assert outbox.read() == []


def test_outbox_survives_a_torn_last_line(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    outbox = Outbox(path)
    outbox.append([_trigger()])
    with path.open("a") as fh:
        fh.write('{"dedup_key": "half')  # a crash mid-write
    assert len(outbox.read()) == 1
    outbox.append([_trigger(start=START + pd.Timedelta(hours=1))])
    assert len(outbox.read()) == 2  # the torn tail was cut, not glued onto the new event
    assert '"half' not in path.read_text() and path.read_text().endswith("\n")


def test_the_outbox_refuses_an_event_that_carries_a_key(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "events.jsonl")
    with pytest.raises(InvalidEventError, match="never a key") as info:
        outbox.append([_trigger(), {**_trigger(start=START + pd.Timedelta(hours=1)), "routing_key": KEY}])
    assert info.value.field == "routing_key"
    assert outbox.read() == [] and KEY not in str(info.value)


def _old_line(event: dict, key: str) -> str:
    return json.dumps({**event, "routing_key": key}) + "\n"


def test_lines_an_older_version_wrote_with_a_key_are_read_and_rewritten_as_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    keyed, embedded = _trigger(), _trigger(start=START + pd.Timedelta(hours=1))
    path.write_text(_old_line(keyed, KEY) + _old_line(embedded, "embedded-outbox"))
    path.chmod(0o644)
    outbox = Outbox(path)
    assert [e["routing_key"] for e in outbox.read()] == [REF, REF]
    assert KEY in path.read_text(), "reading alone changes nothing on disk"
    # The next append rewrites the old lines without the key; dedup still sees them.
    newer = _trigger(start=START + pd.Timedelta(hours=2))
    report = outbox.append([keyed, newer])
    assert (report.written, report.skipped_duplicates) == (1, 1)
    text = path.read_text()
    assert KEY not in text and "embedded-outbox" not in text
    assert [json.loads(line)["routing_key"] for line in text.splitlines()] == [REF, REF, REF]
    assert outbox.read() == [keyed, embedded, newer]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Outbox(path).scrub() == 0  # nothing left to migrate


def test_scrub_rewrites_without_an_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(_old_line(_trigger(), KEY))
    assert Outbox(path).scrub() == 1
    assert KEY not in path.read_text() and Outbox(path).read() == [_trigger()]
    assert not (tmp_path / "events.jsonl.scrub").exists()


def test_outbox_and_lock_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # the widest: a plain open(..., 0o644) would give rw-r--r--
    try:
        outbox = Outbox(tmp_path / "outbox" / "events.jsonl")
        outbox.append([_trigger()])
    finally:
        os.umask(old_umask)
    for path in (outbox.path, outbox.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # A file an older version left world-readable is tightened by the next append.
    outbox.path.chmod(0o644)
    outbox.append([_trigger()])
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
