"""The robust z-score baseline: causal, exact, and its suppression keeps one score per excursion."""

import numpy as np
import pandas as pd
import pytest

from models.anomaly.robust_z import causal_suppression, steps_in, trailing_robust_z


def test_the_score_is_the_distance_from_the_past_median_in_robust_sigmas() -> None:
    past = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # median 3, MAD 1
    z = trailing_robust_z(np.r_[past, 3.0 + 2 * 1.4826], window=5, min_periods=5)
    assert z[:5].tolist() == [0.0] * 5  # not enough history yet
    assert z[5] == pytest.approx(2.0)


def test_a_row_never_sees_itself_or_the_future() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    z = trailing_robust_z(x, window=50)
    changed = x.copy()
    changed[150:] += 100.0  # a later change must not move earlier scores
    assert np.array_equal(trailing_robust_z(changed, window=50)[:150], z[:150])


def test_blocks_give_the_same_scores_as_one_pass() -> None:
    x = np.random.default_rng(2).normal(size=1000)
    x[[10, 500]] = np.nan
    assert np.allclose(trailing_robust_z(x, 60, chunk=7), trailing_robust_z(x, 60, chunk=5000))


def test_suppression_keeps_the_start_of_an_excursion_and_where_it_grows() -> None:
    kept = causal_suppression(np.array([0.0, 5.0, 5.0, 4.0, 6.0, 1.0]), width=3)
    assert kept.tolist() == [0.0, 5.0, 0.0, 0.0, 6.0, 0.0]


def test_a_day_in_steps_follows_the_sampling_interval() -> None:
    five_min = pd.date_range("2026-01-01", periods=10, freq="5min", tz="UTC")
    assert steps_in(pd.Timedelta("1D"), five_min) == 288
