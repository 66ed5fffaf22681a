"""The detect flow's response task on its own incident frame (NaT ends, JSON evidence), acting
through a command executor; and a no-op while ``response.enabled`` is off."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from flows.detection_sinks import respond_to_incidents
from foresight.lake import Lake
from foresight.settings import Settings
from response.from_settings import respond

T0 = pd.Timestamp("2026-12-07 12:00", tz="UTC")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "incident_id": ["inc-a", "inc-b"], "service": ["cart", "billing"], "category": ["resource_leak"] * 2,
        "start": [T0, T0], "end": pd.Series([pd.NaT, T0], dtype="datetime64[us, UTC]"),
        "severity": ["critical", "error"], "score": [0.99, 0.99],
        "evidence": [json.dumps({"fault_type": "memory_leak"})] * 2, "window_start": [T0, T0],
        "resource_id": ["i-1", None], "ranked_services": ["cart", "billing"],
    })


def _settings(tmp_path: Path, marker: Path, *, enabled: bool = True) -> Settings:
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", str(marker),
            "{service}/{resource_id}/{incident_id}"]
    return Settings(home=tmp_path, lake_url=str(tmp_path / "lake"), response={
        "enabled": enabled, "apply": True, "allowed_targets": ["cart", "billing"],
        "commands": {"restart": {"argv": argv}},
        "rules": [{"name": "leak", "fault_types": ["memory_leak"], "action": "restart", "command": "restart"}]})


def test_the_task_restarts_the_open_incident_once_through_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "restarted.txt"
    settings = _settings(tmp_path, marker)
    report = respond_to_incidents.fn(settings, _frame())
    assert report["steps"] == {"planned": 1, "applied": 1}  # billing's incident already resolved: no action
    assert marker.read_text() == "cart/i-1/inc-a\n"
    assert respond_to_incidents.fn(settings, _frame())["steps"] == {}
    assert marker.read_text() == "cart/i-1/inc-a\n"
    audit = Lake(settings.lake_location).read("response_audit")
    assert audit.query("step == 'applied'")["detail"].str.contains("command restart exited 0").all()


def test_a_failing_command_is_audited_as_failed(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "x")
    settings.response.commands["restart"].argv[:] = [sys.executable, "-c", "import sys; sys.exit('no such pod')"]

    def clock() -> datetime:
        return T0.to_pydatetime()

    report = respond(settings, _frame().to_dict("records"), clock=clock)
    assert report["steps"] == {"planned": 1, "failed": 1}
    failed = Lake(settings.lake_location).read("response_audit").query("step == 'failed'").iloc[0]
    assert "exited 1: no such pod" in failed["detail"] and failed["time"] == T0


def test_off_by_default(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "x", enabled=False)
    assert respond_to_incidents.fn(settings, _frame()) == {"skipped": "response.enabled is off"}
    assert not Lake(settings.lake_location).exists("response_audit")
