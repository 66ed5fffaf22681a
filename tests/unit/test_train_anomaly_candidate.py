"""The train flow's anomaly candidate is an incident pipeline (flows.families.anomaly_candidate): the
configured detector and the configured incident mode, judged by the pages it would send."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.families import anomaly_baseline, anomaly_candidate
from foresight.plugins import UnknownPluginError
from foresight.settings import load_settings


def test_the_candidate_is_the_configured_detector_and_incident_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    default = anomaly_candidate(load_settings())
    assert default.detector.name == "streaming_ensemble" and default.settings.mode == "stream"  # the defaults
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "robust_seasonal")
    monkeypatch.setenv("FORESIGHT_DETECT__INCIDENT_BUILDER", "rollup")
    monkeypatch.setenv("FORESIGHT_DETECT__ANOMALY_THRESHOLD", "0.999")
    monkeypatch.setenv("FORESIGHT_DETECT__STREAM_PARAMS", '{"open_threshold": 9.0, "split_threshold": 12.0}')
    other = anomaly_candidate(load_settings())
    assert other.name == "rollup+robust_seasonal" and other.settings.rollup.anomaly_threshold == 0.999
    assert other.settings.stream.open_threshold == 9.0
    baseline = anomaly_baseline(load_settings())
    assert baseline.name == "rollup+rolling_zscore" and baseline.settings.rollup == other.settings.rollup


def test_an_unknown_detector_name_lists_the_choices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "isolation_forest")
    with pytest.raises(UnknownPluginError, match="robust_seasonal.*streaming"):
        anomaly_candidate(load_settings())


@pytest.mark.slow
def test_the_gate_sees_the_stream_settings_that_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Before pipelines the gate scored the roll-up whatever the stream paged: a stream that
    pages nothing would have kept the figures of the detector beside it."""
    from flows.families import TrainingData, evaluate_anomaly
    from foresight.timeutil import split_time
    from simulator import simulate

    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_SOURCES", '[{"name": "sim", "kind": "simulator"}]')  # its call graph
    batch = simulate(seed=3, days=6, end=pd.Timestamp("2026-05-01", tz="UTC"))
    assert batch.incidents is not None
    data = TrainingData(batch.telemetry, batch.catalogue, batch.incidents, None)
    split = split_time(batch.telemetry["ds"], 0.6)
    shipped = evaluate_anomaly(anomaly_candidate(load_settings()), data, load_settings(), split)
    monkeypatch.setenv("FORESIGHT_DETECT__STREAM_PARAMS",
                       '{"open_threshold": 1e6, "sustain_threshold": 1e6, "split_threshold": 1e6}')
    silent = evaluate_anomaly(anomaly_candidate(load_settings()), data, load_settings(), split)
    assert shipped.metric == silent.metric == "event_f1"
    assert shipped.value > 0 and shipped.metrics["recall"] > 0 and len(shipped.detail.raised) > 0
    assert silent.value == 0 and silent.metrics["recall"] == 0 and silent.detail.raised.empty
    # The calibration the page budget ended with, over every service: what the registered model keeps.
    calibration = shipped.detail.calibration
    assert set(calibration) >= set(batch.catalogue["service"]) and min(calibration.values()) >= 6.0
    assert {"false_alarms_per_day", "max_false_alarms_per_day", "min_recall"} <= set(shipped.metrics)


def test_the_pages_and_the_calibration_are_logged_with_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.families import pipeline_artifacts
    from foresight.model_registry import PAGE_BUDGET_ARTIFACT
    from models.evaluation.gate import Evaluation
    from models.incidents.evaluation import PipelineEvaluation

    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    pipeline = anomaly_candidate(load_settings())
    pipeline.calibration = {"a": 7.5, "b": 9.0}
    metrics = {"recall": 0.5, "false_alarms_per_day": 1.0, "max_false_alarms_per_day": 2.0, "f1": 0.4}
    pages = PipelineEvaluation(metrics, pd.DataFrame({"service": ["a"]}), {"a": 7.5, "b": 9.0})
    evaluations = [Evaluation("event_f1", 0.4, True, metrics, pages)] * 2
    artifacts = pipeline_artifacts(tmp_path / "run", evaluations, pipeline)
    folder, name = PAGE_BUDGET_ARTIFACT.split("/")
    assert artifacts[folder].name == name and json.loads(artifacts[folder].read_text()) == {"a": 7.5, "b": 9.0}
    assert (artifacts["tables"] / "pages_candidate.csv").exists() and (artifacts["tables"] / "pages_baseline.csv").exists()
    pipeline.calibration = {}
    assert folder not in pipeline_artifacts(tmp_path / "run2", evaluations, pipeline)
