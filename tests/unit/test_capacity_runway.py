"""The band's probabilities: per-step exceedance through the three quantiles, the horizon's chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from models.capacity.runway import band_z, exceedance_probability, horizon_crossing_probability


@pytest.mark.parametrize(("level", "tail"), [(80, 0.10), (90, 0.05), (50, 0.25)])
def test_the_probabilities_pass_through_the_bands_quantiles(level: float, tail: float) -> None:
    yhat, lower, upper = np.array([50.0]), np.array([44.0]), np.array([61.0])  # skewed: wider above
    at = {t: exceedance_probability(yhat, lower, upper, t, level)[0] for t in (44.0, 50.0, 61.0)}
    assert at == pytest.approx({44.0: 1 - tail, 50.0: 0.5, 61.0: tail})


def test_each_side_keeps_its_own_spread() -> None:
    yhat, lower, upper = np.array([50.0]), np.array([48.0]), np.array([70.0])
    z = norm.ppf(0.9)
    assert exceedance_probability(yhat, lower, upper, 60.0)[0] == pytest.approx(norm.sf(10 / (20 / z)))
    assert exceedance_probability(yhat, lower, upper, 49.0)[0] == pytest.approx(norm.cdf(1 / (2 / z)))


def test_probability_falls_as_the_threshold_rises() -> None:
    thresholds = np.linspace(0, 120, 241)
    p = exceedance_probability(np.full(241, 60.0), np.full(241, 50.0), np.full(241, 80.0), thresholds)
    assert np.all(np.diff(p) <= 0) and p[0] > 0.999 and p[-1] < 0.01


def test_a_band_clipped_onto_its_median_is_a_step() -> None:
    # e.g. a percentage pinned at 100 %: median and upper both 100.
    p = exceedance_probability(np.array([100.0, 100.0, 100.0]), np.array([95.0, 95.0, 95.0]),
                               np.array([100.0, 100.0, 100.0]), np.array([100.0, 101.0, 99.0]))
    assert p[0] == pytest.approx(0.5) and p[1] == 0.0 and 0.5 < p[2] < 1.0


def test_a_missing_band_side_gives_no_probability() -> None:
    p = exceedance_probability(np.array([50.0, 50.0]), np.array([40.0, np.nan]), np.array([np.nan, 60.0]),
                               np.array([55.0, 55.0]))
    assert np.isnan(p[0]) and 0 < p[1] < 0.5, "the upper side decides a threshold above the median"


def test_the_horizon_probability_is_the_likeliest_step_per_series() -> None:
    fc = pd.DataFrame({"unique_id": ["a", "a", "a", "b", "b"], "yhat": [50.0, 60.0, 55.0, 10.0, 10.0],
                       "yhat_lower": [45.0, 55.0, 50.0, 5.0, 5.0], "yhat_upper": [55.0, 70.0, 60.0, 15.0, 15.0],
                       "threshold": 70.0})
    out = horizon_crossing_probability(fc)
    assert out.index.tolist() == ["a", "b"]
    assert out["a"] == pytest.approx(0.10), "the second step's upper band sits on the threshold"
    assert out["b"] < 1e-6


def test_an_impossible_level_is_refused() -> None:
    assert band_z(80) == pytest.approx(norm.ppf(0.9))
    for level in (0, 100, 120):
        with pytest.raises(ValueError, match="interval level"):
            band_z(level)
