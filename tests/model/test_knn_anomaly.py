"""Behavioural checks of the nearest-neighbour detector (models.anomaly.knn) and its ensemble with
the streaming detector (models.anomaly.ensemble) on seeded synthetic series."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.anomaly.base import DETECTORS
from models.anomaly.ensemble import EnsembleAnomalyDetector, EnsembleState
from models.anomaly.knn import BlockKnnState, KnnAnomalyDetector, KnnParams, KnnState, _squared_distances
from models.anomaly.streaming import score_stream

ALARM = 0.9999  # the detect flow's default anomaly threshold
DAY = 288  # 5-minute steps per day


def _sawtooth(n: int = 3000, seed: int = 1) -> np.ndarray:
    """A fast 7-step ramp (0, 2, .., 12; its period does not divide a day) with a little noise."""
    rng = np.random.default_rng(seed)
    return np.tile(np.arange(7.0) * 2, n // 7 + 1)[:n] + rng.normal(0, 0.3, n)


def _knn(y: np.ndarray, params: KnnParams | None = None) -> np.ndarray:
    state = KnnState(1, params or KnnParams())
    return np.array([state.update(y[t : t + 1])[0] for t in range(y.size)])


def _ensemble(y: np.ndarray, **params: int) -> np.ndarray:
    state = EnsembleState(np.array([DAY]), **params)
    return np.array([state.update(y[t : t + 1], np.array([t % DAY]))[0] for t in range(y.size)])


def _alarms(scores: np.ndarray, start: int = 300) -> np.ndarray:
    return np.flatnonzero(scores[start:] >= ALARM) + start


def _stuck(y: np.ndarray, at: int, steps: int = 24) -> np.ndarray:
    """The series with its sensor stuck at its last value for ``steps`` steps from ``at``."""
    out = y.copy()
    out[at : at + steps] = y[at - 1]
    return out


def test_a_regular_pattern_never_alerts():
    assert _alarms(_knn(_sawtooth())).size == 0


def test_a_stuck_sensor_inside_the_normal_range_alerts_at_its_onset():
    at = 2400
    alarms = _alarms(_knn(_stuck(_sawtooth(), at)))
    assert alarms.size >= 1 and at <= alarms[0] <= at + 3


@pytest.mark.slow
def test_the_ensemble_catches_a_shape_anomaly_the_forecasting_detector_misses():
    """Every stuck value is in range and equals the last value: no one-step forecaster is
    surprised, only the never-seen flat context is."""
    at = 2400
    y = _stuck(_sawtooth(), at)
    ts = pd.date_range("2024-03-04", periods=y.size, freq="5min")
    assert _alarms(score_stream(ts, y)).size == 0
    alarms = _alarms(_ensemble(y))
    assert alarms.size >= 1 and at <= alarms[0] <= at + 3
    assert _alarms(_ensemble(_sawtooth())).size == 0


def test_the_ensemble_still_catches_a_spike():
    rng = np.random.default_rng(3)
    y = 50 + rng.normal(0, 1, 2000)
    y[1500] += 15
    assert _alarms(_ensemble(y)).tolist() == [1500]


def _quiet_day(seed: int, days: int = 14, quiet: int = 12) -> np.ndarray:
    """5-minute samples, 50 + a daily wave of amplitude 5 + unit noise; on day ``quiet`` the wave
    is missing (a holiday): every value is in range and close to the last one."""
    t = np.arange(days * DAY)
    wave = 5 * np.sin(2 * np.pi * t / DAY)
    y = 50 + wave + np.random.default_rng(seed).normal(0, 1, t.size)
    y[quiet * DAY : (quiet + 1) * DAY] -= wave[quiet * DAY : (quiet + 1) * DAY]
    return y


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_the_coarse_member_ranks_a_quiet_day_above_every_normal_one(seed: int):
    """Point noise hides the missing wave from the one-step forecasters and the 30-minute
    shapes; block means over 40 minutes show a 4-hour shape no past day drew. Without the
    coarse member the quiet day does not even reach the noise peaks of normal days."""
    y = _quiet_day(seed)
    normal, quiet = slice(2 * DAY, 12 * DAY), slice(12 * DAY, 13 * DAY)
    multiscale = _ensemble(y)
    assert multiscale[quiet].max() > multiscale[normal].max()
    fine_only = _ensemble(y, coarse_block=0)
    assert fine_only[quiet].max() < fine_only[normal].max()


def test_a_block_of_one_step_is_the_plain_state_and_an_empty_block_is_a_gap():
    rng = np.random.default_rng(8)
    values = rng.normal(0, 1, (700, 2)).cumsum(axis=0)
    values[300:316, 1] = np.nan  # two whole 8-step blocks without a sample in one series
    plain, one = KnnState(2, KnnParams(warmup=20)), BlockKnnState(2, 1, KnnParams(warmup=20))
    for row in values:
        assert np.array_equal(plain.surprise(row)[0], one.surprise(row)[0])
    coarse = BlockKnnState(2, 8, KnnParams(warmup=20))
    surprises = np.stack([coarse.surprise(row)[0] for row in values])
    assert not surprises[np.arange(700) % 8 != 7].any()  # only a block's last step is scored
    # an empty block is a gap: no window holding it is scored, and scoring resumes after them
    assert not surprises[300 : 316 + 6 * 8, 1].any() and surprises[316 + 6 * 8 :, 1].any()
    alone = BlockKnnState(1, 8, KnnParams(warmup=20))
    assert np.array_equal(surprises[:, 0], [alone.surprise(v)[0][0] for v in values[:, :1]])
    with pytest.raises(ValueError, match="block"):
        BlockKnnState(1, 0)


def test_a_surprise_beyond_the_calibration_range_keeps_growing():
    """Past the largest calibrated nonconformity the tail is extrapolated: a bigger excursion is
    more surprising, not capped at the rank's resolution, ln(calibration + 1)."""

    def surprise_at(y: np.ndarray, at: int) -> float:
        state = KnnState(1)
        for t in range(at):
            state.surprise(y[t : t + 1])
        return float(state.surprise(y[at : at + 1])[0][0])

    y = _sawtooth()
    small, big = y.copy(), y.copy()
    small[2400] += 15
    big[2400] += 60
    resolution = np.log(KnnParams().calibration + 1)
    assert resolution < surprise_at(small, 2400) < surprise_at(big, 2400) - 5


def test_scores_are_causal_truncating_does_not_change_earlier_scores():
    y = _stuck(_sawtooth(2000, seed=5), 1500)
    full = _knn(y)
    for cut in (300, 1501, 1700):
        assert np.array_equal(_knn(y[:cut]), full[:cut])
    ensemble = _ensemble(y)
    assert np.array_equal(_ensemble(y[:1600]), ensemble[:1600])


def test_many_series_at_once_match_one_at_a_time_and_gaps_score_zero():
    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, (1500, 3)).cumsum(axis=0)
    values[1250, 1] += 30
    values[400:410, 2] = np.nan  # a gap in one series only
    state = KnnState(3)
    together = np.stack([state.update(values[t]) for t in range(values.shape[0])])
    for j in range(3):
        assert np.allclose(together[:, j], _knn(values[:, j]))
    assert np.all(together[400:410, 2] == 0.0)
    assert together.min() >= 0.0 and together.max() <= 1.0


def test_the_registry_detectors_score_long_frames():
    y = _stuck(_sawtooth(4 * DAY, seed=7), 3 * DAY + 10)
    ds = pd.date_range("2024-03-04", periods=y.size, freq="5min", tz="UTC")
    frame = pd.DataFrame({"unique_id": "svc/queue_depth", "ds": ds, "y": y})
    assert DETECTORS.get("knn") is KnnAnomalyDetector
    assert DETECTORS.get("streaming_knn") is EnsembleAnomalyDetector
    for name in ("knn", "streaming_knn"):
        scored = DETECTORS.get(name)().fit(frame[frame["ds"] < ds[2 * DAY]]).predict(frame)
        assert len(scored) == len(frame) and scored["score"].between(0, 1).all()
        onset = int(np.flatnonzero(scored["score"].to_numpy() >= ALARM)[0])
        assert 3 * DAY + 10 <= onset <= 3 * DAY + 13


def test_bad_parameters_are_refused_with_their_names():
    with pytest.raises(ValueError, match="unknown knn detector parameter"):
        KnnAnomalyDetector(not_a_knob=1)
    with pytest.raises(ValueError, match="unknown streaming_knn detector parameter"):
        EnsembleAnomalyDetector(knn_not_a_knob=1)
    with pytest.raises(ValueError, match="window"):
        EnsembleAnomalyDetector(knn_window=0)
    with pytest.raises(ValueError, match="coarse_block"):
        EnsembleAnomalyDetector(coarse_block=-1)
    with pytest.raises(ValueError, match="k .* history"):
        KnnParams(k=20, history=10)
    with pytest.raises(ValueError, match="expected 2 values"):
        KnnState(2).update(np.zeros(3))


@pytest.mark.slow
def test_the_train_flow_resolves_the_new_detectors_by_name(tmp_path: Path) -> None:
    """In a fresh interpreter (this module has already registered them here), importing the
    train flow alone is enough for ``detect.detector`` to name the new detectors."""
    code = (
        "from flows.families import anomaly_candidate\n"
        "from foresight.settings import load_settings\n"
        "print(anomaly_candidate(load_settings()).detector.name)\n"
    )
    for name in ("knn", "streaming_knn"):
        env = {**os.environ, "FORESIGHT_HOME": str(tmp_path), "FORESIGHT_DETECT__DETECTOR": name}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == name


class _RecordingKnnState(KnnState):
    """The state, keeping each step's nonconformities (``alpha``) to compare."""

    def _nonconformity(self, recent: np.ndarray) -> np.ndarray:
        self.alpha = super()._nonconformity(recent)
        return self.alpha


class _ReferenceKnnState(KnnState):
    """The state with the straightforward forms its nonconformity and calibration had before
    they were made faster (a (series, history, window) distance temporary, the whole ring
    ranked and partitioned every step): the fast forms must give the same values to the bit."""

    def _nonconformity(self, recent: np.ndarray) -> np.ndarray:
        self.alpha = self._reference_nonconformity(recent)
        return self.alpha

    def _reference_nonconformity(self, recent: np.ndarray) -> np.ndarray:
        p = self.params
        windows = np.lib.stride_tricks.sliding_window_view(recent, p.window, axis=1)
        current = windows[:, -1, :]
        d2 = np.square(windows[:, : p.history, :] - current[:, None, :]).sum(axis=2)
        d2 = np.where(np.isfinite(d2), d2, np.inf)
        with np.errstate(invalid="ignore"):
            alpha = np.sqrt(np.partition(d2, p.k - 1, axis=1)[:, : p.k]).mean(axis=1)
        return np.where(np.isfinite(alpha) & np.isfinite(current).all(axis=1), alpha, np.nan)

    def _surprise(self, alpha: np.ndarray) -> np.ndarray:
        p = self.params
        past = self._calib
        stored = alpha.astype(np.float32)
        alpha = stored.astype(np.float64)
        n = np.isfinite(past).sum(axis=1)
        empirical = ((past >= stored[:, None]).sum(axis=1) + 1.0) / (n + 1.0)
        cut = p.calibration - p.tail
        top = np.partition(np.where(np.isfinite(past), past, -np.inf), cut, axis=1)[:, cut:]
        u = top.min(axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            beta = np.fmax(top.mean(axis=1) - u, 1e-12 + 1e-9 * np.abs(u))
            modelled = np.log((n + 1.0) / p.tail) + (alpha - u) / beta
        s = np.where((n > p.tail) & (alpha > u), modelled, -np.log(empirical))
        return np.where(n >= p.tail, np.fmax(s, 0.0), 0.0)


@pytest.mark.parametrize("window", [1, 6, 7])
def test_the_fast_state_scores_exactly_as_the_reference_forms(window: int, monkeypatch: pytest.MonkeyPatch):
    """Random walks with spikes, ties and gaps; a small block size so several blocks of series
    are searched per step; windows below 8 values (the defaults: 6), where adding the terms in
    turn is numpy's own summation order, so every value must match to the bit."""
    monkeypatch.setattr("models.anomaly.knn._BLOCK_ELEMENTS", 4 * 60)
    rng = np.random.default_rng(11)
    values = rng.normal(0, 1, (900, 7)).cumsum(axis=0)
    values[rng.random(values.shape) < 0.01] += 25.0  # spikes beyond the calibrated tail
    values[:, 3] = np.round(values[:, 3])  # ties among distances and nonconformities
    values[200:230, 4] = np.nan
    values[rng.random(values.shape) < 0.005] = np.nan
    params = KnnParams(window=window, history=60, k=3, calibration=150, tail=10, warmup=15)
    fast, reference = _RecordingKnnState(7, params), _ReferenceKnnState(7, params)
    surprises = []
    for row in values:
        got, want = fast.surprise(row)[0], reference.surprise(row)[0]
        assert np.array_equal(fast.alpha, reference.alpha, equal_nan=True)
        assert np.array_equal(got, want)
        surprises.append(got)
    assert (np.stack(surprises) > np.log(params.calibration + 1)).any()  # the tail branch ran


def test_longer_windows_match_the_reference_distances_to_rounding() -> None:
    """From 8 values numpy sums pairwise and the fast form in turn: equal up to rounding."""
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, (5, 80)).cumsum(axis=1)
    window, history = 20, 50
    current = values[:, -window:]
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=1)[:, :history]
    want = np.square(windows - current[:, None, :]).sum(axis=2)
    np.testing.assert_allclose(_squared_distances(values, current, history), want, rtol=1e-12)
