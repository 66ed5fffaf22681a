"""The stream processor hands its incident events to automated response (``responder``): open
events with no end, the resolve with one; a responder that raises does not stall the stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_stream_processor_wiring import _processor, _records


def test_incident_events_reach_the_responder_as_incident_records(tmp_path: Path) -> None:
    seen: list[list[dict[str, Any]]] = []
    proc = _processor(tmp_path)
    proc.responder = seen.append
    proc.on_assigned({0})
    proc.process(_records())
    records = [r for batch in seen for r in batch]
    assert [r["end"] is None for r in records] == [True, False]
    opened, resolved = records
    assert opened["incident_id"] == resolved["incident_id"] and opened["service"] == "cart"
    assert resolved["end"] >= opened["start"] and "evidence" in opened


def test_a_failing_responder_is_logged_and_the_events_still_go_out(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(records: list[dict[str, Any]]) -> None:
        raise RuntimeError("lake gone")

    proc = _processor(tmp_path)
    proc.responder = broken
    proc.on_assigned({0})
    proc.process(_records())
    assert [s for _, s in proc.producer.incidents] == ["open", "resolved"]  # type: ignore[attr-defined]
    assert "automated response on 2 incident events failed" in caplog.text
