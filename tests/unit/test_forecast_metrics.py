"""Forecast metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.forecasting.metrics import coverage, mase, pinball, seasonal_scale, smape


def test_mase_scales_by_in_sample_seasonal_naive_error() -> None:
    # Seasonal (m=2) in-sample errors: |3-1|, |4-2|, |5-3|, |6-4| -> scale 2; MAE = (1 + 2) / 2.
    assert mase([7, 8], [6, 10], [1, 2, 3, 4, 5, 6], season=2) == pytest.approx(0.75)


def test_mase_uses_naive_scale_when_history_is_not_longer_than_a_season() -> None:
    assert seasonal_scale([1, 3, 4], season=24) == pytest.approx(1.5)  # |3-1|, |4-3|
    assert mase([5], [2], [1, 3, 4], season=24) == pytest.approx(2.0)


def test_mase_is_nan_for_a_constant_history() -> None:
    assert math.isnan(mase([5.0], [4.0], [3.0, 3.0, 3.0, 3.0], season=2))


def test_smape_on_the_0_to_200_scale_with_zero_over_zero_as_perfect() -> None:
    # 200 * 10 / 210 for the first point, 0 for (0, 0).
    assert smape([100, 0], [110, 0]) == pytest.approx((200 * 10 / 210) / 2)
    assert smape([1.0], [0.0]) == pytest.approx(200.0)
    assert smape([3.0, 4.0], [3.0, 4.0]) == 0.0


def test_coverage_counts_closed_interval_hits() -> None:
    # 1 in [0,2]; 2 not in [2.5,3]; 3 in [3,3] (closed); 4 not in [5,6].
    assert coverage([1, 2, 3, 4], [0, 2.5, 3, 5], [2, 3, 3, 6]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y", "q", "tau", "expected"),
    [
        ([10.0], [8.0], 0.9, 1.8),  # under-forecast: tau * 2
        ([10.0], [12.0], 0.9, 0.2),  # over-forecast: (1 - tau) * 2
        ([10.0, 10.0], [8.0, 12.0], 0.9, 1.0),
        ([10.0], [8.0], 0.5, 1.0),  # median: half the absolute error
    ],
)
def test_pinball_loss(y: list[float], q: list[float], tau: float, expected: float) -> None:
    assert pinball(y, q, tau) == pytest.approx(expected)


def test_metrics_refuse_mismatched_or_empty_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        smape([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        coverage(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="tau"):
        pinball([1.0], [1.0], 1.0)
