"""The fast smoothing recursion gives bit-for-bit the states of the plain one, and one pass with
snapshots gives what separate runs on each prefix give."""

from __future__ import annotations

import numpy as np
import pytest

from models.forecasting.base import FORECASTERS
from models.forecasting.smoothing import SmoothingState, fit_smoothing, fit_smoothing_at, parameter_grid


def plain_fit_smoothing(values: np.ndarray, trend: bool, lead: int) -> SmoothingState:
    """The recursion as it was written before the fast path (commit 211c291), step by step."""
    alpha, beta, phi = parameter_grid(trend)
    n, width = values.shape
    combos = alpha.size
    level = np.full((n, combos), np.nan)
    slope = np.zeros((n, combos))
    lead_err, lead_count = np.zeros((n, combos)), np.zeros((n, combos))
    sq_err, sq_count = np.zeros((n, combos)), np.zeros((n, combos))
    ring = np.full((lead, n, combos), np.nan)
    damp_lead = np.cumsum(phi[None, :] ** np.arange(1, lead + 1)[:, None], axis=0)[-1]
    observed_cols = np.flatnonzero(np.isfinite(values).any(axis=0))
    start = int(observed_cols[0]) if observed_cols.size else width
    for t in range(start, width):
        y = values[:, t][:, None]
        obs = np.isfinite(y)
        past = ring[t % lead]
        scored = obs & np.isfinite(past)
        lead_err += np.where(scored, np.abs(y - past), 0.0)
        lead_count += scored
        started = np.isfinite(level)
        pred = level + phi * slope
        err = y - pred
        usable = obs & started
        sq_err += np.where(usable, err * err, 0.0)
        sq_count += usable
        new_level = np.where(obs, np.where(started, pred + alpha * err, y), pred)
        slope = np.where(
            usable, beta * (new_level - level) + (1 - beta) * phi * slope, np.where(started, phi * slope, 0.0)
        )
        level = new_level
        ring[t % lead] = level + damp_lead * slope
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(lead_count > 0, lead_err / lead_count, np.inf)
        sigma = np.sqrt(np.where(sq_count > 0, sq_err / sq_count, np.nan))
    best = np.where(np.isfinite(score).any(axis=1), np.argmin(score, axis=1), combos // 2)
    rows = np.arange(n)
    return SmoothingState(alpha[best], phi[best], level[rows, best], slope[rows, best],
                          np.nan_to_num(sigma[rows, best], nan=0.0))


def panel(seed: int, rows: int = 20, width: int = 120, empty_row: bool = False) -> np.ndarray:
    """Right-aligned rows of different lengths with trends, noise and a few gaps: the steps after
    the last start and outside the gaps take the fast path, the others the general one."""
    rng = np.random.default_rng(seed)
    t = np.arange(width)
    values = 50 + rng.normal(0, 1, (rows, 1)) * t / 20 + np.sin(t / 7) * 5 + rng.normal(0, 2, (rows, width))
    starts = rng.integers(0, width // 4, rows)
    values[t[None, :] < starts[:, None]] = np.nan
    values[rng.integers(0, rows, 4), rng.integers(width // 2, width, 4)] = np.nan
    if empty_row:
        values[-1] = np.nan
    return values


def assert_same(a: SmoothingState, b: SmoothingState) -> None:
    for field in ("alpha", "phi", "level", "trend", "sigma"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("trend", [False, True])
@pytest.mark.parametrize("lead", [1, 5])
def test_fast_recursion_matches_the_plain_one_bit_for_bit(trend: bool, lead: int) -> None:
    for values in (panel(0), panel(1, empty_row=True), panel(2)[:, 40:]):
        assert_same(fit_smoothing(values, trend, lead), plain_fit_smoothing(values, trend, lead))
    assert_same(fit_smoothing(panel(3), trend, lead, max_steps=50), plain_fit_smoothing(panel(3)[:, -50:], trend, lead))


@pytest.mark.parametrize("trend", [False, True])
def test_one_pass_with_snapshots_equals_separate_runs_on_each_prefix(trend: bool) -> None:
    values = panel(3)
    ends = [0, 2, 40, 100, 112, 120]
    for end, state in zip(ends, fit_smoothing_at(values, trend, 6, ends), strict=True):
        assert_same(state, plain_fit_smoothing(values[:, :end], trend, 6))


def test_snapshot_ends_outside_the_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="ends must be within"):
        fit_smoothing_at(panel(0), False, 3, [121])


def daily_panel(season: int, width: int, rows: int = 6) -> np.ndarray:
    """Rows with a daily cycle of ``season`` steps and a slow trend, the first one NaN-padded."""
    rng = np.random.default_rng(width)
    t = np.arange(width)
    values = 30 + 10 * np.sin(2 * np.pi * t / season) + t / 50 + rng.normal(0, 1, (rows, width))
    values[0, : width // 5] = np.nan
    return values


# (season, width): under two seasons and 500 steps, no origin has a profile and one pass serves
# all; with profiles, or with more than 500 steps (each origin smooths its own last 500), the
# origins are stacked as rows instead.
@pytest.mark.parametrize(("season", "width"), [(100, 150), (24, 300), (24, 620)])
@pytest.mark.parametrize("model", ["ses", "damped_trend", "mstl"])
def test_forecasting_every_origin_at_once_equals_one_origin_at_a_time(season: int, width: int, model: str) -> None:
    forecaster = FORECASTERS.get(model)(season_length=season, lead=3)
    values = daily_panel(season, width)
    ends = [width - 3 * 5, width - 2 * 5, width - 5]
    together = [fit.point(5) for fit in forecaster.fit_origins(values, ends, season)]
    for end, forecast in zip(ends, together, strict=True):
        np.testing.assert_array_equal(forecast, forecaster.forecast_values(values[:, :end], 5, season))
