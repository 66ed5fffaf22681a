"""NAB scoring (models.evaluation.nab_scoring) on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.evaluation.nab_scoring import (
    Profile,
    as_profiles,
    best_threshold,
    file_raw_score,
    probationary_length,
    raw_score_by_threshold,
    scaled_sigmoid,
    score_at_threshold,
    score_corpus,
    sweep_file,
    window_bounds,
)

STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
PROFILES = {"standard": STANDARD, "reward_low_FN_rate": LOW_FN}


def _ts(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="5min")


def _sweep(
    n: int, windows: list[tuple[int, int]], detections: list[int], name: str = "f.csv", score: float = 1.0
):
    ts = _ts(n)
    scores = np.zeros(n)
    scores[detections] = score
    return sweep_file(name, ts, scores, [(ts[lo], ts[hi]) for lo, hi in windows])


def _s(x: float) -> float:
    """The scaled sigmoid by hand: 2 / (1 + e^(5x)) - 1."""
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def test_scaled_sigmoid_matches_the_papers_landmarks():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0 and scaled_sigmoid(10.0) == -1.0


def test_probationary_period_is_15_percent_capped_at_750_rows():
    assert probationary_length(1000) == 150
    assert probationary_length(4032) == 604  # floor(604.8)
    assert probationary_length(22695) == 750  # 0.15 * 5000


def test_perfect_detector_scores_100_and_null_scores_0():
    n, windows = 400, [(100, 139), (250, 289)]
    perfect = _sweep(n, windows, [100, 250])
    null = _sweep(n, windows, [])
    assert score_at_threshold([perfect], STANDARD, 0.5).score == pytest.approx(100.0)
    assert score_at_threshold([null], STANDARD, 0.5).score == pytest.approx(0.0)
    # a detection at a window's first row is worth exactly A_TP; a miss costs A_FN
    assert file_raw_score(perfect, STANDARD, 0.5)[0] == pytest.approx(2.0)
    assert file_raw_score(null, LOW_FN, 0.5)[0] == pytest.approx(-4.0)


def test_tp_value_by_position_in_window_hand_computed():
    # window rows 100..139 (width 40); a detection at row 120: position -(139 - 120 + 1) / 40 = -0.5
    raw, tp, fn, fp = file_raw_score(_sweep(400, [(100, 139)], [120]), STANDARD, 0.5)
    assert (tp, fn, fp) == (1, 0, 0)
    assert raw == pytest.approx(_s(-0.5) / _s(-1.0))


def test_earlier_detection_in_a_window_scores_more():
    start = file_raw_score(_sweep(400, [(100, 139)], [100]), STANDARD, 0.5)[0]
    middle = file_raw_score(_sweep(400, [(100, 139)], [120]), STANDARD, 0.5)[0]
    end = file_raw_score(_sweep(400, [(100, 139)], [139]), STANDARD, 0.5)[0]
    assert start > middle > end > 0


def test_only_the_best_detection_in_a_window_counts():
    one = file_raw_score(_sweep(400, [(100, 139)], [110]), STANDARD, 0.5)[0]
    many = file_raw_score(_sweep(400, [(100, 139)], [110, 115, 130, 139]), STANDARD, 0.5)[0]
    assert many == pytest.approx(one)


def test_fp_right_after_a_window_costs_less_than_far_away():
    # window 100..139 (width 40): FP at row 141 is (141 - 139) / 39 widths past it
    near = file_raw_score(_sweep(400, [(100, 139)], [100, 141]), STANDARD, 0.5)[0]
    far = file_raw_score(_sweep(400, [(100, 139)], [100, 390]), STANDARD, 0.5)[0]
    assert near == pytest.approx(1.0 + 0.11 * _s(2 / 39))
    assert far == pytest.approx(1.0 - 0.11)  # 251 / 39 > 3 widths: full A_FP
    assert near > far


def test_fp_before_any_window_costs_full_a_fp():
    raw, tp, fn, fp = file_raw_score(_sweep(400, [(300, 339)], [200, 300]), STANDARD, 0.5)
    assert (tp, fn, fp) == (1, 0, 1)
    assert raw == pytest.approx(1.0 - 0.11)


def test_probationary_detections_are_ignored():
    # 400 rows -> 60 probationary rows; an FP at row 10 costs nothing
    with_fp = file_raw_score(_sweep(400, [(100, 139)], [10, 100]), STANDARD, 0.5)
    assert with_fp == (pytest.approx(1.0), 1, 0, 0)


def test_labels_mark_window_rows():
    sweep = _sweep(400, [(100, 139)], [])
    labels = sweep.labels()
    assert labels.sum() == 40 and labels[100] == 1 and labels[139] == 1 and labels[140] == 0


def test_window_bounds_tolerate_a_repeated_timestamp():
    ts = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:05", "2024-01-01 00:10", "2024-01-01 00:15"]
    )
    assert window_bounds(ts, [(ts[1], ts[3])]) == [(1, 3)]


def test_threshold_sweep_agrees_with_direct_scoring_and_picks_the_best():
    rng = np.random.default_rng(3)
    sweeps = []
    for k in range(3):
        n = 300
        scores = rng.uniform(0, 0.9, n)
        scores[150 + 5 * k] = 0.95  # one strong hit per file, inside its window
        ts = _ts(n)
        sweeps.append(sweep_file(f"f{k}.csv", ts, scores, [(ts[140], ts[169])]))
    thresholds, raws = raw_score_by_threshold(sweeps, STANDARD)
    for thr, raw in zip(thresholds[1:40], raws[1:40], strict=True):
        assert score_at_threshold(sweeps, STANDARD, thr).raw == pytest.approx(raw)
    best = best_threshold(sweeps, STANDARD)
    assert best == pytest.approx(0.95)
    direct = max(score_at_threshold(sweeps, STANDARD, t).raw for t in np.linspace(0.0, 1.0, 201))
    assert score_corpus(sweeps, PROFILES)["standard"].raw >= direct - 1e-12


def test_one_threshold_for_the_whole_corpus():
    # File a's anomaly scores 0.6, file b's only 0.4 but b has a 0.5 false positive far from its window:
    # a per-file threshold could score 100; one corpus threshold must trade them off.
    ts = _ts(400)
    a = np.zeros(400)
    a[100] = 0.6
    b = np.zeros(400)
    b[100], b[390] = 0.4, 0.5
    window = [(ts[100], ts[139])]
    sweeps = [sweep_file("a.csv", ts, a, window), sweep_file("b.csv", ts, b, window)]
    result = score_corpus(sweeps, {"standard": STANDARD})["standard"]
    assert result.threshold == pytest.approx(0.4)  # catching b's window beats avoiding b's FP
    assert result.raw == pytest.approx(2.0 - 0.11)
    assert result.score == pytest.approx(100 * (2.0 - 0.11 + 2.0) / 4.0)


def test_nab_cost_matrices_are_read_as_profiles(tmp_path):
    from connectors.labels.nab_corpus import read_profiles

    path = tmp_path / "profiles.json"
    path.write_text(
        '{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1}}}'
    )
    assert as_profiles(read_profiles(path)) == {"standard": STANDARD}
    path.write_text('{"broken": {"CostMatrix": {"tpWeight": 1.0}}}')
    with pytest.raises(ValueError, match="broken"):
        read_profiles(path)


def test_nan_scores_are_rejected():
    ts = _ts(10)
    with pytest.raises(ValueError, match="NaN"):
        sweep_file("x.csv", ts, np.full(10, np.nan), [])
