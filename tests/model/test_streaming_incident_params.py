"""The streaming detector as it feeds incidents: every anomalous step scored, repeats left to the
incident builder's ``for:`` and hysteresis (``incident_params``), used by the train flow's candidate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.families import anomaly_candidate
from foresight.settings import load_settings
from models.anomaly.streaming import StreamingAnomalyDetector, StreamingParams, score_stream

ALARM = 0.9999
DAY = 288


def _shifted(seed: int = 2) -> tuple[pd.DatetimeIndex, np.ndarray, int]:
    ts = pd.date_range("2024-03-04", periods=5 * DAY, freq="5min")
    rng = np.random.default_rng(seed)
    y = 50 + 5 * np.sin(2 * np.pi * (np.arange(ts.size) % DAY) / DAY) + rng.normal(0, 1, ts.size)
    at = 3 * DAY + 100
    y[at:] += 10
    return ts, y, at


def test_unsuppressed_scores_stay_high_while_a_level_shift_is_new():
    ts, y, at = _shifted()
    # from the second day on: the first one teaches the daily profile
    once = np.flatnonzero(score_stream(ts, y)[DAY:] >= ALARM) + DAY
    sustained = np.flatnonzero(score_stream(ts, y, StreamingParams(suppress=False))[DAY:] >= ALARM) + DAY
    assert once.size == 1  # an alert stream: one score per episode
    assert sustained.size >= 3 and sustained[0] == once[0]  # what a `for: 3 samples` rule can see
    assert (sustained >= at).all()  # and still nothing before the shift


def test_the_same_steps_are_surprising_either_way():
    ts, y, _ = _shifted(seed=4)
    y[2 * DAY] += 15
    suppressed = score_stream(ts, y)
    raw = score_stream(ts, y, StreamingParams(suppress=False))
    assert np.all(raw >= suppressed - 1e-12)  # suppression only ever lowers a score


def test_the_train_flows_candidate_feeds_incidents_unsuppressed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    default = anomaly_candidate(load_settings()).detector  # the default detector feeds incidents unsuppressed too
    assert default.name == "streaming_ensemble" and default.params["suppress"] is False
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "streaming")
    candidate = anomaly_candidate(load_settings()).detector
    assert isinstance(candidate, StreamingAnomalyDetector)
    assert candidate.stream_params.suppress is False
    assert StreamingAnomalyDetector().stream_params.suppress is True  # benchmarks: the alert stream
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR_PARAMS", '{"suppress": true, "onset": 5.0}')
    configured = anomaly_candidate(load_settings()).detector
    assert configured.stream_params.suppress is True and configured.stream_params.onset == 5.0


def test_detector_params_a_detector_does_not_take_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR_PARAMS", '{"supress": false}')
    with pytest.raises(ValueError, match="supress"):
        anomaly_candidate(load_settings())


def test_the_ensemble_honours_suppress_too():
    from models.anomaly.ensemble import EnsembleAnomalyDetector, EnsembleState
    from models.anomaly.knn import KnnParams

    ts, y, at = _shifted(seed=6)
    season = np.array([DAY])

    def run(suppress: bool) -> np.ndarray:
        state = EnsembleState(season, StreamingParams(suppress=suppress), KnnParams(), coarse_block=0)
        return np.array([state.update(y[t : t + 1], t % DAY)[0] for t in range(y.size)])

    once, sustained = run(True), run(False)
    assert np.all(sustained >= once - 1e-12)
    assert (sustained[DAY:] >= ALARM).sum() > (once[DAY:] >= ALARM).sum()
    assert EnsembleAnomalyDetector.incident_params == {"suppress": False}
