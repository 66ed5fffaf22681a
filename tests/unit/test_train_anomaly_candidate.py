"""The train flow's anomaly candidate comes from ``detect.detector`` (flows.train.anomaly_candidate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.train import anomaly_candidate
from foresight.plugins import UnknownPluginError
from foresight.settings import load_settings


def test_the_candidate_is_the_configured_detector(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    assert anomaly_candidate(load_settings()).name == "streaming_ensemble"  # the default
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "robust_seasonal")
    assert anomaly_candidate(load_settings()).name == "robust_seasonal"


def test_an_unknown_detector_name_lists_the_choices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "isolation_forest")
    with pytest.raises(UnknownPluginError, match="robust_seasonal.*streaming"):
        anomaly_candidate(load_settings())


def test_the_stream_figures_travel_with_the_detector_only_when_the_stream_builds_the_pages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    from bench.detect import evaluate_builder
    from connectors.simulator import simulate
    from flows.train import TrainingData, evaluate_incident_stream, stream_figures
    from models.training import split_time

    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_SOURCES", '[{"name": "sim", "kind": "simulator"}]')  # its call graph
    batch = simulate(seed=3, days=6, end=pd.Timestamp("2026-05-01", tz="UTC"))
    assert batch.incidents is not None
    data = TrainingData(batch.telemetry, batch.catalogue, batch.incidents, None)
    split = split_time(batch.telemetry["ds"], 0.6)
    settings = load_settings()
    metrics, raised, thresholds = stream_figures(settings, data, split)
    bench_raised, expected = evaluate_builder("stream", batch.telemetry, batch.catalogue, batch.incidents,
                                              settings.detect, split)
    assert metrics == {f"stream_{k}": float(v) for k, v in expected.items()}  # the bench's figures, same split
    assert len(raised) == len(bench_raised) > 0
    # The page budget's calibration: every service's system threshold, none below open_threshold.
    assert set(thresholds) >= set(batch.catalogue["service"]) and min(thresholds.values()) >= 6.0
    monkeypatch.setenv("FORESIGHT_DETECT__INCIDENT_BUILDER", "rollup")
    assert evaluate_incident_stream.fn(load_settings(), data, split, tmp_path / "other") == ({}, {})


def test_the_page_budget_calibration_is_logged_with_the_stream_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json
    import logging

    import pandas as pd

    from flows import train
    from foresight.model_registry import PAGE_BUDGET_ARTIFACT

    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    canned = ({"stream_f1": 0.5, "stream_false_alarms": 1.0}, pd.DataFrame({"service": ["a"]}), {"a": 7.5, "b": 9.0})
    monkeypatch.setattr(train, "stream_figures", lambda settings, data, split: canned)
    monkeypatch.setattr(train, "get_run_logger", lambda: logging.getLogger("test"))
    metrics, artifacts = train.evaluate_incident_stream.fn(load_settings(), None, None, tmp_path / "run")
    assert metrics["stream_open_threshold_min"] == 7.5 and metrics["stream_open_threshold_max"] == 9.0
    folder, name = PAGE_BUDGET_ARTIFACT.split("/")
    assert artifacts[folder].name == name and json.loads(artifacts[folder].read_text()) == {"a": 7.5, "b": 9.0}
    assert (artifacts["tables"] / "stream_incidents.csv").exists()
