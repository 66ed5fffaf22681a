"""The demo's closing summary (flows.summary.render_summary)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from flows.summary import render_summary
from foresight.settings import load_settings


def _anomaly(metrics: dict[str, float]) -> dict[str, object]:
    return {"registered_model": "anomaly-detector", "version": "1", "model": "streaming", "decision": "champion",
            "reason": "beats the baseline", "metrics": metrics}


def test_held_out_rows_name_the_detector_and_the_incident_stream(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    events = {"recall": 0.8, "precision": 0.3, "median_lead_minutes": 12.0, "detected": 4, "missed": 1,
              "false_alarms": 9}
    stream = {f"stream_{k}": v for k, v in events.items() if k != "median_lead_minutes"}  # NaN lead: dropped
    stream |= {"stream_recall": 1.0, "stream_precision": 0.5, "stream_false_alarms": 4}
    console = Console(width=200, record=True)
    render_summary(console, {"train": {"anomaly": _anomaly(events | stream)}}, load_settings(), 1.0)
    text = console.export_text()
    assert "streaming: recall 0.80, precision 0.30, median lead time 12 min" in text
    assert "incident stream (the pages): recall 1.00, precision 0.50, median lead time n/a" in text
    assert "4 false alarms" in text

    console = Console(width=200, record=True)  # the roll-up builds the pages: no stream row
    render_summary(console, {"train": {"anomaly": _anomaly(events)}}, load_settings(), 1.0)
    assert "incident stream" not in console.export_text()


def test_a_failed_source_is_named_with_what_it_held_back_and_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    outcome = {"written": {}, "accepted": 0, "quarantined": 48, "rejected_messages": 0}
    results = {
        "ingest": [outcome | {"source": "simulator", "passed": True, "written": {"telemetry": 10}, "quarantined": 0},
                   outcome | {"source": "backfill", "passed": False,
                              "reasons": {"ds: naive timestamp (no timezone)": 48}}],
        "detect": {"incidents": 2, "events_written": 2, "events_skipped": 0, "blocked_sources": ["backfill"],
                   "held_back_series": 3},
    }
    console = Console(width=250, record=True)
    render_summary(console, results, load_settings(), 1.0)
    text = console.export_text()
    assert "backfill: contract FAILED" in text and "simulator: contract passed" in text
    assert "backfill: newest batch failed its data contract; 3 series left out of detection" in text
    assert "Data contract FAILED for backfill" in text and "its next clean batch" in text

    console = Console(width=250, record=True)  # all clean: no closing line
    render_summary(console, {"ingest": results["ingest"][:1]}, load_settings(), 1.0)
    assert "FAILED" not in console.export_text()


def test_rightsizing_shows_the_net_cost_change_and_forecast_start_warnings(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    forecast = {"series": 2, "model": "auto", "model_version": "3", "crossing_within_horizon": 0, "plan_rows": 2,
                "series_models": {"mstl": 1, "ses": 1}, "rightsizing_rows": 3,
                "rightsizing_actions": {"hold": 2, "upsize": 1}, "monthly_savings": 0.0,
                "monthly_upsize_cost": 183.96, "net_monthly_cost_change": 183.96, "price_source": "table",
                "scaling_actions": 0, "forecast_start_warnings": ["cart/i-1/mem_pct: forecast starts 22.0 below"]}
    console = Console(width=250, record=True)
    render_summary(console, {"forecast": forecast}, load_settings(), 1.0)
    text = console.export_text()
    # An increase is never shown as "savings $0.00" alone: the net change is signed and first.
    assert "3 services (2 hold, 1 upsize); net monthly cost change +$183.96/month" in text
    assert "savings $0.00, increases $183.96" in text
    assert "by auto v3 (mstl 1, ses 1)" in text
    assert "forecast start: cart/i-1/mem_pct: forecast starts 22.0 below" in text


def test_a_long_path_wraps_in_a_narrow_terminal_and_is_never_cut(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    path = tmp_path / ("a-very-long-folder-name-" * 4) / "provisioning" / "alerting" / "foresight.yaml"
    results = {"publish": {"report": str(tmp_path / "report.html"), "dashboards": [str(path)]}}
    console = Console(width=80, record=True)
    render_summary(console, results, load_settings(), 1.0)
    text = console.export_text()
    assert "…" not in text
    assert "".join(line.strip(" │") for line in text.splitlines()).count("foresight.yaml") == 1


def test_a_promoted_model_is_green_and_a_challenger_yellow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    promoted = _anomaly({}) | {"decision": "promote"}
    kept = _anomaly({}) | {"registered_model": "failure-predictor", "decision": "challenger"}
    console = Console(width=200, record=True, force_terminal=True, color_system="standard")
    render_summary(console, {"train": {"anomaly": promoted, "failure": kept}}, load_settings(), 1.0)
    html = console.export_html(inline_styles=True)
    assert re.search(r'<span style="color: #008000[^"]*">promote</span>', html)
    assert re.search(r'<span style="color: #808000[^"]*">challenger</span>', html)
