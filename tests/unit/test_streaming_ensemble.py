"""The ``streaming_ensemble`` detector and its members: staggered coarse nearest neighbours, the
trailing-day robust z state, the combination and suppression, the registry surface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.anomaly.base import DETECTORS
from models.anomaly.knn import BlockKnnState, KnnParams
from models.anomaly.robust_z import trailing_robust_z
from models.anomaly.robust_z_stream import DayRobustZState, RobustZParams, TailCalibration
from models.anomaly.staggered_block_knn import StaggeredBlockKnnState, stable_origins
from models.anomaly.streaming import StreamingParams
from models.anomaly.streaming_ensemble import StreamingEnsembleDetector, StreamingEnsembleState

ALARM = 0.9999  # the detect flow's default anomaly threshold
SMALL_KNN = KnnParams(history=60, calibration=200, warmup=20)


def _walks(n: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=(steps, n)), axis=0)


@pytest.mark.parametrize("origins", [None, np.array([3, 3, 0, 6, 1])])
def test_each_series_scores_as_an_unstaggered_block_state_with_its_own_origin(origins: np.ndarray | None) -> None:
    values = _walks(5, 600)
    values[100:110, 2] = np.nan  # a gap in one series
    staggered = StaggeredBlockKnnState(5, 4, SMALL_KNN, origins)
    got = np.array([staggered.surprise(row)[0] for row in values])
    for j in range(5):
        single = BlockKnnState(1, 4, SMALL_KNN)
        single._steps = int(j if origins is None else origins[j]) % 4  # blocks end where (t + 1 + origin) % 4 == 0
        want = np.array([single.surprise(row[j : j + 1])[0][0] for row in values])
        assert np.allclose(got[:, j], want, rtol=0, atol=1e-12)
    assert (got > 0).any()


def test_one_group_of_series_searches_at_each_step() -> None:
    state = StaggeredBlockKnnState(16, 8, SMALL_KNN)
    ending = []
    for row in _walks(16, 16):
        ending.append(state.ending_group())
        state.surprise(row)
    assert sorted(ending) == sorted(list(range(8)) * 2)  # every group once per block, in turn


def test_origins_by_name_are_stable_and_spread() -> None:
    names = [f"svc{i}/cpu" for i in range(800)]
    origins = stable_origins(names, 8)
    assert np.array_equal(origins, stable_origins(names, 8))
    assert stable_origins(names[5:6], 8)[0] == origins[5]  # whatever the other names
    assert np.bincount(origins, minlength=8).min() > 60  # about 100 each


def test_the_day_z_is_the_trailing_robust_z_of_the_baseline() -> None:
    x = np.random.default_rng(3).standard_t(3, size=400)
    params = RobustZParams(min_window=24, max_window=50, min_periods=12, floor_share=0.0)
    state = DayRobustZState(np.array([50]), params)
    got = np.empty(x.size)
    for t, value in enumerate(x):
        got[t] = state.z(np.array([value]))[0][0]
        state.surprise(np.array([value]), np.array([True]))
    want = trailing_robust_z(x, window=50, min_periods=12)
    ready = np.isfinite(got)
    assert ready[12:].all() and not ready[:12].any()  # 12 samples before the row
    assert np.allclose(got[ready], want[ready])


def test_day_windows_follow_the_steps_per_day_within_bounds() -> None:
    state = DayRobustZState(np.array([24, 288, 1440, 0]), RobustZParams())
    assert state.window.tolist() == [24, 288, 288, 288]


def test_the_tail_calibration_ranks_a_rare_value_far_above_a_common_one() -> None:
    rng = np.random.default_rng(4)
    tail = TailCalibration(1, 0.97, 0.05, 2000.0, 10.0)
    ok = np.array([True])
    for value in np.abs(rng.normal(size=3000)):
        tail.surprise(np.array([value]), ok)
    common = tail.surprise(np.array([0.7]), ok)[0]
    rare = tail.surprise(np.array([8.0]), ok)[0]
    assert common < 2.0 < 9.2 < rare  # 9.2 nats: the 0.9999 alarm


def _ensemble_scores(values: np.ndarray, **kwargs: object) -> np.ndarray:
    state = StreamingEnsembleState(np.zeros(values.shape[1], dtype=np.int64), knn=SMALL_KNN, **kwargs)  # type: ignore[arg-type]
    return np.array([state.update(row, 0) for row in values])


@pytest.mark.parametrize("robust_z", [None, RobustZParams()])
def test_a_spike_alarms_once_and_scores_stay_in_the_unit_interval(robust_z: RobustZParams | None) -> None:
    values = np.random.default_rng(5).normal(10, 1, size=(600, 2))
    values[500, 0] += 15.0
    values[503, 0] += 15.0  # a repeat of the same excursion: suppressed
    scores = _ensemble_scores(values, robust_z=robust_z)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[500, 0] >= ALARM and scores[503, 0] < ALARM
    assert (scores[:, 1] < ALARM).all()
    unsuppressed = _ensemble_scores(values, robust_z=robust_z, streaming=StreamingParams(suppress=False))
    assert unsuppressed[503, 0] >= ALARM


def test_scores_are_causal() -> None:
    values = _walks(3, 400, seed=6)
    full = _ensemble_scores(values, robust_z=RobustZParams())
    changed = values.copy()
    changed[300:] += 50.0
    assert np.array_equal(_ensemble_scores(changed, robust_z=RobustZParams())[:300], full[:300])
    assert (full[200:] > 0).any()


def test_the_registry_detector_scores_long_frames_and_refuses_unknown_parameters() -> None:
    assert DETECTORS.get("streaming_ensemble") is StreamingEnsembleDetector
    ds = pd.date_range("2026-01-01", periods=500, freq="5min", tz="UTC")
    y = 10 + np.random.default_rng(7).normal(size=ds.size)
    y[450] += 20.0
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})
    detector = StreamingEnsembleDetector(context_days=1.0, knn_history=60, knn_calibration=200, robust_z=True)
    scored = detector.fit(frame.iloc[:300]).predict(frame.iloc[300:])
    assert len(scored) == 200
    assert scored.loc[scored["ds"] == ds[450], "score"].item() >= ALARM
    # a series scores the same whichever series share its frame (its block origin follows its name)
    other = frame.assign(unique_id="0", y=frame["y"][::-1].to_numpy())  # sorts before "a"
    small = {"knn_history": 20, "knn_warmup": 10, "knn_calibration": 100, "context_days": 0.5}
    alone = StreamingEnsembleDetector(**small).fit(frame.iloc[:150]).predict(frame.iloc[150:])
    both = pd.concat([frame, other])
    shared = StreamingEnsembleDetector(**small).fit(both[both["ds"] < ds[150]]).predict(both[both["ds"] >= ds[150]])
    assert np.array_equal(shared.loc[shared["unique_id"] == "a", "score"].to_numpy(), alone["score"].to_numpy())
    with pytest.raises(ValueError, match="z_min_window"):
        StreamingEnsembleDetector(z_window=5)
    with pytest.raises(ValueError, match="coarse_block"):
        StreamingEnsembleDetector(coarse_block=0)


def test_score_latency_times_the_ensemble_and_the_detect_flow_uses_it_by_default() -> None:
    from bench.score_latency import run as run_latency
    from foresight.settings import DetectConfig

    figures = run_latency(series=40, repeats=3, warm_steps=5, detector="streaming_ensemble")
    assert figures.detector == "streaming_ensemble" and figures.block_ends == 0
    assert figures.median_seconds > 0 and figures.state_mib > 0
    assert DetectConfig().detector == "streaming_ensemble"
