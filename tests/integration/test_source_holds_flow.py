"""One source whose data contract failed holds back only what depends on it (issue 12, item 2).

Through the real entry points (``foresight run ingest`` / ``run detect``, the Prefect flows in
the session's harness) against the request-validating PagerDuty fake. The detect flow's champion
loader is replaced by a scripted detector (the loader boundary): the tests are about what is
published, not about a model, and training one would cost minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from foresight.lake import Lake
from foresight.settings import load_settings
from foresight.source_holds import SourceContractFailedError
from support.fake_pagerduty import FakePagerDuty, running_fake_pagerduty

pytestmark = pytest.mark.integration

KEY = "e93facc04764012d7bfb002500d5d1a6"
STEP = pd.Timedelta(minutes=5)


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with running_fake_pagerduty() as server:
        yield server


class ScriptedDetector:
    """A champion whose scores are 1 inside the given spans of each series and 0 elsewhere."""

    context_length = pd.Timedelta(hours=1)

    def __init__(self, spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]] | None = None) -> None:
        self.spans = spans or {}
        self.scored: set[str] = set()  # every series it was asked to score

    def predict(self, telemetry: pd.DataFrame) -> pd.DataFrame:
        self.scored |= set(telemetry["unique_id"].astype(str))
        score = np.zeros(len(telemetry))
        for uid, (start, end) in self.spans.items():
            inside = (telemetry["unique_id"] == uid) & (telemetry["ds"] >= start) & (telemetry["ds"] <= end)
            score[inside.to_numpy()] = 1.0
        return telemetry[["unique_id", "ds", "y"]].assign(score=score).reset_index(drop=True)


def _use_champion(monkeypatch: pytest.MonkeyPatch, detector: ScriptedDetector) -> None:
    """The champion: ``detector`` in a pipeline of the configured mode (as a bare one is loaded)."""
    from models.incidents.pipeline import IncidentPipeline
    from models.incidents.settings import PipelineSettings

    monkeypatch.setattr("flows.detect.load_champions", lambda settings: {
        "anomaly": (IncidentPipeline(detector, PipelineSettings.from_detect(settings.detect)), "7"),
        "failure": (None, None)})


def _config(path: Path, fake: FakePagerDuty, sources: list[dict], **detect: object) -> Path:
    path.write_text(yaml.safe_dump({
        "sources": sources,
        "detect": {"lookback_hours": 6, **detect},
        "sinks": {"pagerduty_routing_key": KEY, "pagerduty_events_url": fake.url, "pagerduty_max_attempts": 1},
    }))
    return path


def _cli(*args: str):
    from foresight.cli import app

    return CliRunner().invoke(app, list(args))


def _said(result) -> str:
    """What a CLI run told its user: its output and, when it ended in an exception, that too."""
    return result.output + ("" if result.exception is None else str(result.exception))


def _pending_page(config: Path, fake: FakePagerDuty, service: str, start: pd.Timestamp) -> str:
    """A critical page an earlier clean detect run wrote while PagerDuty was down: still pending."""
    from flows.detect import publish_incidents

    incident = pd.DataFrame({
        "incident_id": ["inc-1"], "service": [service], "category": ["resource_leak"], "start": [start],
        "end": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"), "severity": ["critical"], "score": [0.99995],
        "evidence": [f'[{{"unique_id": "{service}/i-1/mem_pct"}}]'], "window_start": [start.floor("30min")],
        "resource_id": ["i-1"],
    })
    fake.fail_next(100, status=503)
    earlier = publish_incidents(load_settings(config), incident, features=pd.DataFrame(), predictor=None,
                                detector_version="6", predictor_version=None)
    fake.clear_failures()
    assert earlier["paging"]["pending"] == 1 and fake.alerts == []
    return json.loads(load_settings(config).outbox_path.read_text().splitlines()[-1])["dedup_key"]


def test_a_bad_backfill_fails_its_runs_but_an_unrelated_critical_page_is_delivered(
    prefect_harness, foresight_home: Path, fake: FakePagerDuty, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's probe: a simulator source and a backfill CSV with naive timestamps."""
    backfill = tmp_path / "backfill.csv"
    ds = pd.date_range("2026-03-01", periods=48, freq="5min")  # naive: no timezone
    pd.DataFrame({"unique_id": "billing/i-9/cpu_pct", "ds": ds.strftime("%Y-%m-%d %H:%M:%S"),
                  "y": "42.0"}).to_csv(backfill, index=False)
    config = _config(tmp_path / "foresight.yaml", fake, [
        {"name": "sim", "kind": "simulator", "options": {"days": 1, "seed": 3}},
        {"name": "backfill", "kind": "file", "options": {"path": str(backfill), "unit": "percent"}},
    ])

    ingested = _cli("run", "ingest", "--config", str(config))
    assert ingested.exit_code != 0, ingested.output
    assert "backfill" in _said(ingested) and "sim" not in json.dumps(getattr(ingested.exception, "sources", []))
    lake = Lake(foresight_home / "lake")
    assert set(lake.read("catalogue")["source"]) == {"sim"}, "the healthy source was stored"
    ledger = lake.read("batches").set_index("source")["passed"].to_dict()
    assert ledger == {"sim": True, "backfill": False}

    checkout = _pending_page(config, fake, "checkout", pd.Timestamp.now(tz="UTC").floor("h"))
    _use_champion(monkeypatch, ScriptedDetector())
    detected = _cli("run", "detect", "--config", str(config))
    assert detected.exit_code != 0, detected.output
    said = _said(detected)
    assert "backfill" in said and "its pages resume after its next clean batch" in said
    [alert] = fake.open_alerts()  # the unrelated service's critical page went out
    assert alert.dedup_key == checkout and alert.trigger_event["payload"]["severity"] == "critical"


def _lake_with_a_mixed_service(lake: Lake, end: pd.Timestamp) -> None:
    """checkout has a series from each of two sources (prom, cw); cart and search only prom's."""
    series = {"checkout/i-1/cpu_pct": "prom", "checkout/i-1/mem_pct": "cw", "cart/i-1/cpu_pct": "prom",
              "search/i-1/cpu_pct": "prom"}
    ds = pd.date_range(end=end, periods=8 * 12, freq=STEP)
    lake.upsert("telemetry", pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds, "y": 40.0}) for uid in series],
                                       ignore_index=True))
    lake.upsert("catalogue", pd.DataFrame({
        "unique_id": list(series), "source": list(series.values()),
        "metric": [uid.split("/")[2] for uid in series], "labels": "{}",
        "service": [uid.split("/")[0] for uid in series], "resource_id": "i-1", "instance_type": "m5.large",
        "unit": "percent",
    }))


def _batch(lake: Lake, source: str, passed: bool) -> None:
    lake.upsert("batches", pd.DataFrame([{
        "batch_id": f"{source}-{pd.Timestamp.now(tz='UTC').value}", "source": source,
        "started_at": pd.Timestamp.now(tz="UTC"), "passed": passed, "accepted": 10 if passed else 0,
        "quarantined": 0 if passed else 10, "rejected_messages": 0, "reasons": "{}",
        "failed_checks": "[]" if passed else '["quarantine_ratio"]',
    }]))


def test_a_failed_source_holds_back_only_its_series_and_never_resolves_from_a_missing_signal(
    prefect_harness, foresight_home: Path, fake: FakePagerDuty, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.detect import detect

    end = pd.Timestamp.now(tz="UTC").floor(STEP)
    lake = Lake(foresight_home / "lake")
    _lake_with_a_mixed_service(lake, end)
    config = _config(tmp_path / "foresight.yaml", fake, [
        {"name": "prom", "kind": "file", "options": {"path": str(tmp_path / "prom.csv")}},
        {"name": "cw", "kind": "file", "options": {"path": str(tmp_path / "cw.csv")}},
    ], incident_builder="rollup")
    leak = end - pd.Timedelta(hours=2)
    # checkout: memory leaking since `leak` (cw) with a CPU burst at its start (prom); cart: busy.
    first = {"checkout/i-1/mem_pct": (leak, end), "checkout/i-1/cpu_pct": (leak, leak + 3 * STEP),
             "cart/i-1/cpu_pct": (end - pd.Timedelta(hours=1), end)}
    _batch(lake, "prom", True)
    _batch(lake, "cw", True)
    _use_champion(monkeypatch, ScriptedDetector(first))
    clean = detect(config_file=str(config))
    assert clean["paging"]["delivered"] == 2 and clean["blocked_sources"] == []
    opened = {alert.trigger_event["payload"]["component"]: alert.dedup_key for alert in fake.open_alerts()}
    assert set(opened) == {"checkout", "cart"}

    # cw's next batch fails its contract. Meanwhile cart calms down and search starts failing.
    _batch(lake, "cw", False)
    second = first | {"cart/i-1/cpu_pct": (end - pd.Timedelta(hours=1), end - pd.Timedelta(minutes=45)),
                      "search/i-1/cpu_pct": (end - pd.Timedelta(minutes=30), end)}
    detector = ScriptedDetector(second)
    _use_champion(monkeypatch, detector)
    state = detect(config_file=str(config), return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, SourceContractFailedError) and error.sources == ["cw"]
    assert "cw" in error.message and error.hint == "fix the source; its pages resume after its next clean batch"
    assert error.result["held_back_series"] == 1 and error.result["kept_open_services"] == ["checkout"]
    assert detector.scored == {"checkout/i-1/cpu_pct", "cart/i-1/cpu_pct", "search/i-1/cpu_pct"}, \
        "the failed source's series is not scored"
    sent = [(r.body["event_action"], r.body["payload"]["component"] if "payload" in r.body else r.body["dedup_key"])
            for r in fake.requests_to("/v2/enqueue")[2:]]
    # search pages and cart resolves, from healthy series; checkout's CPU alone looks calm, but
    # without its memory series that is a missing signal, not a recovery: its page stays open.
    assert sorted(sent) == sorted([("trigger", "search"), ("resolve", opened["cart"])])
    assert {a.trigger_event["payload"]["component"] for a in fake.open_alerts()} == {"checkout", "search"}


def test_ingest_stores_every_other_source_then_fails_naming_the_bad_one(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.ingest import ingest

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    ds = pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("5min"), periods=24, freq="5min")
    pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "y": "40"}).to_csv(good, index=False)
    pd.DataFrame({"unique_id": "cart/i-1/mem_pct", "ds": ds.strftime("%Y-%m-%d %H:%M:%S"), "y": "40"}).to_csv(bad, index=False)
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([
        {"name": "bad", "kind": "file", "options": {"path": str(bad), "unit": "percent"}},
        {"name": "good", "kind": "file", "options": {"path": str(good), "unit": "percent"}},
    ]))
    with pytest.raises(SourceContractFailedError) as info:
        ingest()
    error = info.value
    assert error.sources == ["bad"] and "bad (" in error.message and "naive timestamp" in error.message
    assert [(o["source"], o["passed"]) for o in error.result] == [("bad", False), ("good", True)]
    lake = Lake(foresight_home / "lake")
    assert set(lake.read("telemetry")["unique_id"]) == {"cart/i-1/cpu_pct"}, "the source after the bad one was stored"
    assert lake.read("batches").set_index("source")["passed"].to_dict() == {"bad": False, "good": True}
