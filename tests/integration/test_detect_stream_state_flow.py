"""The detect flow keeps its incident stream's state between runs (issue 15): the second of two
runs scores only the new steps and pages exactly what one run over all the data pages.

Through the real flow in the session's Prefect harness, on simulated telemetry in a local lake;
the champion loader is replaced by a pipeline built here (the loader boundary), as in
``test_source_holds_flow.py``: what is tested is the state, not a trained model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flows.detect_state import DETECT_GROUP, checkpoint_store
from foresight.lake import Lake
from foresight.settings import load_settings
from models.anomaly.base import DETECTORS
from models.incidents.pipeline import IncidentPipeline
from models.incidents.settings import PipelineSettings
from simulator import SimulatorSource

pytestmark = pytest.mark.integration

END = pd.Timestamp("2026-03-05", tz="UTC")
STEP = pd.Timedelta(minutes=5)


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    batch = SimulatorSource(seed=3, days=4, end=END).fetch()
    return batch.telemetry, batch.catalogue


def _config(path: Path) -> Path:
    # The simulator as a source gives the call graph; the window and its warm-up cover all four days,
    # so one replay of the whole lake is what a chain of resumed runs must equal.
    path.write_text(
        yaml.safe_dump(
            {
                "sources": [{"name": "sim", "kind": "simulator", "options": {"days": 4, "seed": 3}}],
                "detect": {"lookback_hours": 24 * 5},
            }
        )
    )
    return path


def _use_champion(monkeypatch: pytest.MonkeyPatch, telemetry: pd.DataFrame, version: str) -> None:
    detector = (
        DETECTORS.get("streaming")
        .for_incidents()
        .fit(telemetry[telemetry["ds"] < telemetry["ds"].min() + pd.Timedelta(days=1)])
    )
    monkeypatch.setattr(
        "flows.detect.load_champions",
        lambda settings: {
            "anomaly": (IncidentPipeline(detector, PipelineSettings.from_detect(settings.detect)), version),
            "failure": (None, None),
        },
    )


def _store(home: Path, telemetry: pd.DataFrame, catalogue: pd.DataFrame) -> None:
    lake = Lake(home / "lake")
    lake.upsert("telemetry", telemetry)
    lake.upsert("catalogue", catalogue)


def _events(home: Path) -> list[dict[str, Any]]:
    path = home / "outbox" / "pagerduty-events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as what PagerDuty acts on: action, key, and a trigger's summary, severity,
    start and ranking (not its ``end``, which a trigger written while the incident was open lacks)."""
    out = []
    for event in events:
        payload = event.get("payload", {})
        details = payload.get("custom_details", {})
        out.append(
            (
                event["event_action"],
                event["dedup_key"],
                payload.get("summary"),
                payload.get("severity"),
                details.get("start"),
                details.get("ranked_services"),
                details.get("evidence"),
            )
        )
    return sorted(out, key=str)


def _detect(config: Path, **params: Any) -> dict[str, Any]:
    from flows.detect import detect

    return detect(config_file=str(config), **params)


def test_two_runs_page_what_one_replay_pages_and_the_second_scores_only_new_steps(
    prefect_harness, foresight_home: Path, fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    telemetry, catalogue = fleet
    config = _config(tmp_path / "foresight.yaml")
    _use_champion(monkeypatch, telemetry, "7")

    # One replay over everything, in a home of its own.
    whole_home = tmp_path / "whole"
    monkeypatch.setenv("FORESIGHT_HOME", str(whole_home))
    _store(whole_home, telemetry, catalogue)
    whole = _detect(config)
    assert whole["stream_state"]["resumed"] is False
    whole_events = _events(whole_home)
    triggers = {e["dedup_key"] for e in whole_events if e["event_action"] == "trigger"}
    assert len(triggers) >= 3 and whole["incidents"] == len(triggers)

    # Two runs: the first ends while an incident is open, the second sees it resolve.
    opened = [e for e in whole_events if e["event_action"] == "trigger"]
    split = pd.Timestamp(sorted(e["payload"]["custom_details"]["start"] for e in opened)[1]) + STEP
    monkeypatch.setenv("FORESIGHT_HOME", str(foresight_home))
    _store(foresight_home, telemetry[telemetry["ds"] <= split], catalogue)
    first = _detect(config)
    assert first["stream_state"]["resumed"] is False
    assert first["stream_state"]["full_replay_reason"].startswith("no checkpoint yet")
    assert first["stream_state"]["steps_scored"] == telemetry.loc[telemetry["ds"] <= split, "ds"].nunique()
    assert first["open"] == 1, "the run ends with the second incident open"
    checkpoint = checkpoint_store(load_settings(config)).load(DETECT_GROUP, 0)
    assert checkpoint is not None and checkpoint.state.last_step == split

    _store(foresight_home, telemetry[telemetry["ds"] > split], catalogue)
    second = _detect(config)
    new_steps = telemetry.loc[telemetry["ds"] > split, "ds"].nunique()
    assert second["stream_state"] == {
        **second["stream_state"],
        "resumed": True,
        "full_replay_reason": "",
        "steps_scored": new_steps,
        "late_samples": 0,
    }
    assert second["incidents"] == whole["incidents"] and second["open"] == whole["open"]
    # the per-series detector resumed too: only the new steps scored
    assert first["detector_state"]["resumed"] is False and whole["detector_state"]["resumed"] is False
    assert second["detector_state"] == {**second["detector_state"], "resumed": True, "full_replay_reason": "",
                                        "steps_scored": new_steps, "late_samples": 0}

    chained = _events(foresight_home)
    assert _comparable(chained) == _comparable(whole_events), "the same pages and resolves, none twice"
    keys = [e["dedup_key"] for e in chained if e["event_action"] == "trigger"]
    assert len(keys) == len(set(keys)) == len(triggers)
    assert second["events_written"] == len(chained) - first["events_written"]


def test_a_new_champion_version_replays_in_full(
    prefect_harness, foresight_home: Path, fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    telemetry, catalogue = fleet
    config = _config(tmp_path / "foresight.yaml")
    split = telemetry["ds"].min() + pd.Timedelta(days=3)
    _store(foresight_home, telemetry[telemetry["ds"] <= split], catalogue)
    _use_champion(monkeypatch, telemetry, "7")
    _detect(config)
    _store(foresight_home, telemetry[telemetry["ds"] > split], catalogue)
    _use_champion(monkeypatch, telemetry, "8")
    second = _detect(config)
    assert second["stream_state"]["resumed"] is False
    assert "champion changed (checkpoint of version 7, now 8)" in second["stream_state"]["full_replay_reason"]
    assert second["stream_state"]["steps_scored"] == telemetry["ds"].nunique()
    assert second["detector_state"]["resumed"] is False
    assert "champion changed (checkpoint of version 7, now 8)" in second["detector_state"]["full_replay_reason"]
    again = _detect(config)  # the new champion's own state is kept from then on
    assert again["stream_state"]["resumed"] is True and again["stream_state"]["steps_scored"] == 0
    assert again["detector_state"]["resumed"] is True and again["detector_state"]["steps_scored"] == 0
    forced = _detect(config, full_replay=True)
    for part in ("stream_state", "detector_state"):
        assert forced[part]["resumed"] is False
        assert forced[part]["full_replay_reason"] == "full replay requested (full_replay=True)"
    assert forced["events_written"] == 0, "a forced replay pages nothing twice"


def test_a_corrupt_checkpoint_replays_with_a_warning_naming_it(
    prefect_harness,
    foresight_home: Path,
    fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    telemetry, catalogue = fleet
    config = _config(tmp_path / "foresight.yaml")
    _store(
        foresight_home, telemetry[telemetry["ds"] <= telemetry["ds"].min() + pd.Timedelta(days=3)], catalogue
    )
    _use_champion(monkeypatch, telemetry, "7")
    first = _detect(config)
    path = Path(checkpoint_store(load_settings(config)).path(DETECT_GROUP, 0))
    path.write_bytes(b"\x80\x05 not a pickle any more")
    with caplog.at_level(logging.WARNING):
        second = _detect(config)
    reason = second["stream_state"]["full_replay_reason"]
    assert (
        second["stream_state"]["resumed"] is False
        and "unreadable checkpoint" in reason
        and path.name in reason
    )
    assert any(
        "replayed in full" in r.getMessage() and "unreadable checkpoint" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert second["incidents"] == first["incidents"] and second["events_written"] == 0, "nothing paged twice"
    assert checkpoint_store(load_settings(config)).load(DETECT_GROUP, 0) is not None, (
        "a good one written again"
    )


def test_roll_up_pages_from_resumed_scores_what_one_replay_pages(
    prefect_harness, foresight_home: Path, fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The roll-up builds its incidents from the detector's scores of the window: three runs,
    each scoring only its new steps from the kept state, page what one run over everything pages."""
    telemetry, catalogue = fleet
    config = tmp_path / "foresight.yaml"
    _config(config)
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "detect": {**settings["detect"], "incident_builder": "rollup"}}))
    _use_champion(monkeypatch, telemetry, "7")
    whole_home = tmp_path / "whole"
    monkeypatch.setenv("FORESIGHT_HOME", str(whole_home))
    _store(whole_home, telemetry, catalogue)
    whole = _detect(config)
    assert whole["incidents"] >= 1 and whole["stream_state"]["resumed"] is False

    monkeypatch.setenv("FORESIGHT_HOME", str(foresight_home))
    start = telemetry["ds"].min()
    splits = [start + pd.Timedelta(hours=h) for h in (50, 71)] + [telemetry["ds"].max()]
    runs, stored = [], start - STEP
    for split in splits:
        _store(foresight_home, telemetry[(telemetry["ds"] > stored) & (telemetry["ds"] <= split)], catalogue)
        runs.append(_detect(config))
        stored = split
    assert [r["detector_state"]["resumed"] for r in runs] == [False, True, True]
    assert runs[-1]["detector_state"]["steps_scored"] == telemetry.loc[telemetry["ds"] > splits[1], "ds"].nunique()
    assert runs[-1]["incidents"] == whole["incidents"] and runs[-1]["open"] == whole["open"]
    # The roll-up keeps no state of its own: a trigger written while an incident was open carries
    # the evidence of then, so compare what PagerDuty keys on, each page and resolve once.
    keyed = sorted({(e["event_action"], e["dedup_key"]) for e in _events(foresight_home)})
    assert keyed == sorted({(e["event_action"], e["dedup_key"]) for e in _events(whole_home)})
