"""Behavioural checks of the streaming detector (models.anomaly.streaming) on seeded synthetic series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.anomaly.base import DETECTORS
from models.anomaly.daily_cycle import daily_season, infer_step, phases
from models.anomaly.streaming import (
    StreamingAnomalyDetector,
    StreamingParams,
    StreamingState,
    score_stream,
)

ALARM = 0.9999  # the detect flow's default anomaly threshold
DAY = 288  # 5-minute steps per day


def _series(
    days: float, seed: int, noise: float = 1.0, peak: float = 0.0
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """5-minute samples around 50 with a gentle daily wave and, optionally, a +peak every day 12:00-13:00."""
    n = int(days * DAY)
    ts = pd.date_range("2024-03-04", periods=n, freq="5min")
    rng = np.random.default_rng(seed)
    step_of_day = np.arange(n) % DAY
    y = 50 + 5 * np.sin(2 * np.pi * step_of_day / DAY) + rng.normal(0, noise, n)
    y[(step_of_day >= 144) & (step_of_day < 156)] += peak
    return ts, y


def _alarms(scores: np.ndarray, start: int = 0) -> np.ndarray:
    return np.flatnonzero(scores[start:] >= ALARM) + start


def test_a_spike_alerts_at_the_spike():
    ts, y = _series(4, seed=1)
    at = 3 * DAY + 50
    y[at] += 12  # 12 noise standard deviations
    alarms = _alarms(score_stream(ts, y), start=DAY)
    assert alarms.tolist() == [at]


def test_a_level_shift_alerts_once_at_its_onset():
    ts, y = _series(5, seed=2)
    at = 3 * DAY + 100
    y[at:] += 10
    alarms = _alarms(score_stream(ts, y), start=DAY)
    assert alarms.size == 1 and at <= alarms[0] <= at + 3  # one alert, not one per shifted sample


def test_a_slow_leak_alerts_before_it_gets_far():
    ts, y = _series(6, seed=3)
    start = 3 * DAY
    y[start:] += np.linspace(0, 40, y.size - start)  # +40 over three days, ~0.05 per step
    alarms = _alarms(score_stream(ts, y), start=DAY)
    assert alarms.size >= 1
    assert start < alarms[0] < start + DAY // 2  # within 12 hours, while the leak is still small
    assert alarms.size <= 5  # a steady leak is one incident, not a storm


def test_a_recurring_daily_peak_is_normal_for_its_hour_but_the_same_peak_elsewhere_is_not():
    ts, y = _series(7, seed=4, peak=25.0)
    scores = score_stream(ts, y)
    assert _alarms(scores, start=2 * DAY).size == 0  # once learned, the noon peak is normal
    moved = y.copy()
    at = 5 * DAY + 40  # the same +25 at 03:20, outside its hour
    moved[at : at + 12] += 25.0
    alarms = _alarms(score_stream(ts, moved), start=2 * DAY)
    assert alarms.size >= 1 and at <= alarms[0] <= at + 2


def test_scores_are_causal_truncating_does_not_change_earlier_scores():
    ts, y = _series(3, seed=5, peak=10.0)
    y[500] += 20
    full = score_stream(ts, y)
    for cut in (300, 501, 700):
        assert np.array_equal(score_stream(ts[:cut], y[:cut]), full[:cut])


def test_many_series_at_once_match_one_at_a_time():
    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, (400, 3)).cumsum(axis=0)
    values[250, 1] += 30
    values[100:110, 2] = np.nan  # a gap in one series only
    phase = np.broadcast_to((np.arange(400) % DAY)[:, None], values.shape)
    state = StreamingState(3, np.full(3, DAY))
    together = np.stack([state.update(values[t], phase[t]) for t in range(400)])
    for j in range(3):
        alone = StreamingState(1, np.array([DAY]))
        one = np.array([alone.update(values[t, j : j + 1], phase[t, j : j + 1])[0] for t in range(400)])
        assert np.allclose(together[:, j], one)
    assert np.all(together[100:110, 2] == 0.0)  # no sample, no score
    assert together.min() >= 0.0 and together.max() <= 1.0


def test_the_registry_detector_scores_long_frames_in_order():
    ts, y = _series(4, seed=7)
    y[3 * DAY + 10] += 15
    ds = ts.tz_localize("UTC")
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": "svc/cpu_pct", "ds": ds, "y": y}),
            pd.DataFrame(
                {
                    "unique_id": "svc/mem_pct",
                    "ds": ds,
                    "y": 40 + np.random.default_rng(8).normal(0, 1, ds.size),
                }
            ),
        ],
        ignore_index=True,
    )
    assert DETECTORS.get("streaming") is StreamingAnomalyDetector
    detector = DETECTORS.get("streaming")().fit(frame[frame["ds"] < ds[2 * DAY]])
    scored = detector.predict(frame)
    assert len(scored) == len(frame) and scored["score"].between(0, 1).all()
    cpu = scored[scored["unique_id"] == "svc/cpu_pct"]
    assert cpu["score"].idxmax() == cpu.index[3 * DAY + 10] and cpu["score"].max() >= ALARM
    # predicting only the tail (the stored context is prepended) gives the same scores there
    tail = detector.predict(frame[frame["ds"] >= ds[3 * DAY]])
    merged = tail.merge(scored, on=["unique_id", "ds"], suffixes=("_tail", "_full"))
    spike = merged["ds"] == ds[3 * DAY + 10]
    assert merged.loc[spike & (merged["unique_id"] == "svc/cpu_pct"), "score_tail"].iloc[0] >= ALARM


def test_bad_parameters_are_refused_with_their_names():
    with pytest.raises(ValueError, match="unknown streaming detector parameter"):
        StreamingAnomalyDetector(not_a_knob=1)
    with pytest.raises(ValueError, match="error_alpha"):
        StreamingParams(error_alpha=0.0)
    with pytest.raises(ValueError, match="expected 2 values"):
        StreamingState(2, np.zeros(2, dtype=int)).update(np.zeros(3), 0)


def test_step_and_season_come_from_the_data():
    ts = pd.date_range("2024-01-01", periods=10, freq="30min")
    step = infer_step(ts)
    assert step == pd.Timedelta("30min") and daily_season(step) == 48
    assert daily_season(pd.Timedelta("7min")) == 0  # does not divide a day: no daily cycle
    assert phases(ts, step).tolist() == list(range(10))


def test_a_second_different_anomaly_after_the_first_still_alerts():
    ts, y = _series(5, seed=9)
    first, second = 3 * DAY, 3 * DAY + 120  # past the first one's suppression (100 steps)
    y[first] += 15
    y[second] -= 15
    assert _alarms(score_stream(ts, y), start=DAY).tolist() == [first, second]


def test_repeats_within_an_episode_stay_below_the_alarm_unless_clearly_bigger():
    ts, y = _series(4, seed=10)
    at = 3 * DAY
    y[at] += 15
    y[at + 10] += 15  # the same anomaly again, 10 steps later: suppressed
    y[at + 20] += 80  # a much bigger one: stands
    assert _alarms(score_stream(ts, y), start=DAY).tolist() == [at, at + 20]


@pytest.mark.parametrize("shape", ["flat", "square", "sine"])
def test_noise_free_regular_series_never_alert_but_a_break_in_them_does(shape: str):
    n = 6 * DAY
    ts = pd.date_range("2024-03-04", periods=n, freq="5min")
    step = np.arange(n) % DAY
    y = {
        "flat": np.full(n, 5.0),
        "square": np.where(step < DAY // 2, 20.0, 80.0),
        "sine": 50 + 20 * np.sin(2 * np.pi * step / DAY),
    }[shape]
    assert (
        _alarms(score_stream(ts, y), start=2 * DAY).size == 0
    )  # the first cycle and its first repeat are learning
    broken = y.copy()
    at = 4 * DAY + 30
    broken[at:] += 3.0  # a small permanent step
    alarms = _alarms(score_stream(ts, broken), start=2 * DAY)
    assert alarms.size >= 1 and at <= alarms[0] <= at + 2


@pytest.mark.slow
def test_a_high_seen_within_the_envelope_memory_is_not_novel_again():
    """A slow excursion that recurs 3,500 steps later: inside the default 5,000-step envelope it
    is a known level, with a 2,000-step envelope it has been forgotten and is novel again."""
    n = 6000
    ts = pd.date_range("2024-03-04", periods=n, freq="5min")
    y = 50 + np.random.default_rng(11).normal(0, 1.0, n)
    bump = 20 * np.sin(np.linspace(0, np.pi, 1000))  # up to +20 over 500 steps and back
    first, again = 500, 4000
    y[first : first + 1000] += bump
    y[again : again + 1000] += bump
    assert _alarms(score_stream(ts, y), start=again).size == 0
    forgetful = StreamingParams(envelope_memory=2000)
    assert _alarms(score_stream(ts, y, forgetful), start=again).size >= 1
    with pytest.raises(ValueError, match="envelope_memory"):
        StreamingParams(envelope_memory=1)
