"""Lead-time buckets, coverage by lead, and interval calibration fitted per lead bucket."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecasting.calibration import conformal_widths, factor_steps, lead_factors
from models.forecasting.lead_buckets import lead_bucket, lead_metrics, scores_by_lead, step_buckets
from models.forecasting.selection_scoring import width_choice


def test_buckets_are_edges_in_time_so_they_hold_at_any_sampling_interval() -> None:
    leads = pd.to_timedelta(["5min", "60min", "61min", "1D", "25h", "7D", "8D"])
    assert lead_bucket(leads).tolist() == ["1h", "1h", "1d", "1d", "7d", "7d", "beyond_7d"]
    assert step_buckets(3, "1D").tolist() == ["1d", "7d", "7d"]  # daily data has no first hour
    assert (step_buckets(48, "h") == "1h").sum() == 1 and (step_buckets(48, "5min") == "1h").sum() == 12
    with pytest.raises(ValueError, match="positive"):
        lead_bucket(pd.to_timedelta(["0s"]))


def test_coverage_and_pinball_by_lead_leave_empty_buckets_out() -> None:
    leads = pd.to_timedelta(["30min", "45min", "2h", "3h"])
    y = np.array([1.0, 5.0, 1.0, 1.0])
    table = scores_by_lead(y, np.zeros(4), np.full(4, 2.0), leads, level=80)
    assert table["bucket"].tolist() == ["1h", "1d"]  # no week-ahead point: absent, not 0
    assert table["coverage"].tolist() == [0.5, 1.0] and table["n"].tolist() == [2, 2]
    # 5 above an upper bound of 2 costs (1 - 0.1) * 3 at the upper quantile, 0.1 * 5 at the lower.
    assert table["pinball"].iloc[0] == pytest.approx(((0.1 * 1 + 0.1 * 1) / 2 + (0.1 * 5 + 0.9 * 3) / 2) / 2)
    metrics = lead_metrics(table)
    assert set(metrics) == {f"{m}_lead_{b}" for m in ("coverage", "pinball", "points") for b in ("1h", "1d")}


def _growing_and_flat(origins: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Errors (series x origins x 48 five-minute steps): most series' noise is flat over the lead,
    a tenth's grows as sqrt(step), as a random walk's does."""
    k = np.arange(1, 49)
    growing = np.arange(100) < 10
    sd = np.where(growing[:, None], np.sqrt(k)[None, :], 1.0)
    return rng.normal(0, 1, (100, origins, 48)) * sd[:, None, :], growing


def _coverage(errors: np.ndarray, half: np.ndarray, rows: np.ndarray, steps: np.ndarray) -> float:
    return float((np.abs(errors[rows][:, :, steps]) <= half[rows][:, None, steps]).mean())


def test_per_bucket_scales_cover_the_level_at_every_lead_where_one_pooled_scale_does_not() -> None:
    rng = np.random.default_rng(0)
    backtest, growing = _growing_and_flat(3, rng)
    later, _ = _growing_and_flat(20, rng)  # judged on data the widths were not fitted on
    buckets = step_buckets(48, "5min")
    first_hour, rest = buckets == "1h", buckets == "1d"
    pooled = conformal_widths(backtest).half_widths(48, 80)
    # One fleet profile (set by the flat majority) with one scale per series: a growing series'
    # band is far too wide in the first hour and too narrow after it.
    assert _coverage(later, pooled, growing, first_hour) > 0.9
    assert _coverage(later, pooled, growing, rest) < 0.77
    per_bucket = conformal_widths(backtest, buckets).half_widths(48, 80, buckets)
    for rows in (growing, ~growing):
        for steps in (first_hour, rest):
            assert abs(_coverage(later, per_bucket, rows, steps) - 0.80) <= 0.03


def test_a_lead_past_the_backtest_horizon_takes_the_longest_measured_buckets_scale() -> None:
    rng = np.random.default_rng(1)
    buckets = step_buckets(24, "h")
    widths = conformal_widths(rng.normal(0, 1, (5, 3, 24)), buckets)
    week = widths.half_widths(72, 80, step_buckets(72, "h"))
    scale_1d = widths.scales(80, "1d")
    np.testing.assert_allclose(week[:, 30] / widths.steps(72)[30], scale_1d)


def test_lead_factors_widen_only_the_bucket_the_held_out_errors_outgrew() -> None:
    rng = np.random.default_rng(2)
    buckets = step_buckets(48, "5min")
    half = np.full((400, 48), 1.2816)  # the true 80 % half-width of N(0, 1)
    errors = rng.normal(0, 1, (400, 48)) * np.where(buckets == "1d", 1.5, 1.0)[None, :]
    factors = lead_factors(errors, half, buckets, 80)
    assert factors["1h"] == pytest.approx(1.0, abs=0.06) and factors["1d"] == pytest.approx(1.5, abs=0.08)
    steps = factor_steps(factors, step_buckets(24 * 12 * 3, "5min"))  # three days ahead
    assert steps[0] == factors["1h"] and steps[-1] == factors["1d"]  # the week bucket was not measured
    assert factor_steps({}, buckets).tolist() == [1.0] * 48
    # A calm held-out origin never narrows the band: the factor corrects optimism, one way.
    assert set(lead_factors(errors / 10, half, buckets, 80).values()) == {1.0}


def test_an_expensive_champion_scored_at_one_origin_takes_its_widths_from_a_fully_backtested_one() -> None:
    mase = np.full((3, 3, 2), np.nan)  # candidates x origins x series
    mase[0] = [[1.0, 1.0]] * 3  # cheap, every origin
    mase[1] = [[0.9, 2.0]] * 3  # cheap, every origin; best for series 0
    mase[2, 2] = [0.1, 0.1]  # expensive, last origin only: the champion of both
    names = ["a", "b", "prophet"]
    chosen = np.array(["prophet", "prophet"], dtype=object)
    assert width_choice(mase, names, chosen, margin=0.0).tolist() == ["b", "a"]
    kept = np.array(["b", "a"], dtype=object)
    assert width_choice(mase, names, kept, margin=0.0).tolist() == ["b", "a"]
