"""Opening thresholds calibrated to a page budget (models.incidents.page_budget)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.incidents.page_budget import MIN_BLOCKS, GumbelTail, PageBudget, fit_block_maxima

MINUTE = 60.0


def _replay(budget: PageBudget, evidence: np.ndarray, start_minute: int = 0) -> np.ndarray:
    """Feed one system's per-minute ``evidence``; the threshold in force at each step."""
    used = np.empty(evidence.size)
    for i, e in enumerate(evidence):
        used[i] = budget.thresholds[0]
        budget.observe((start_minute + i) * MINUTE, np.array([e]))
    return used


def _episodes(evidence: np.ndarray, threshold: float, gap: int = 3) -> int:
    at = np.flatnonzero(evidence >= threshold)
    return 0 if at.size == 0 else 1 + int((np.diff(at) > gap + 1).sum())


def test_the_calibrated_level_is_reached_about_budget_times_a_day_on_new_data() -> None:
    rng = np.random.default_rng(0)
    days = 14
    evidence = rng.exponential(1.0, size=days * 1440)  # per minute; steps >= x: 1440 e^-x a day
    budget = PageBudget([6.0], budget_per_day=2.0, prior_days=0.0, floor=0.0)
    _replay(budget, evidence[: 7 * 1440])
    level = float(budget.thresholds[0])
    assert abs(level - math.log(1440 / 2.0)) < 0.6  # ~6.6, the level of 2 exceedances a day
    per_day = _episodes(evidence[7 * 1440:], level) / 7  # the next week, not seen by the fit
    assert 0.7 < per_day < 5.0


def test_faults_in_many_blocks_do_not_raise_the_threshold_much() -> None:
    rng = np.random.default_rng(1)
    evidence = rng.exponential(1.0, size=3 * 1440)
    clean = PageBudget([6.0], prior_days=0.0, floor=0.0)
    _replay(clean, evidence)
    faulty = evidence.copy()
    hours = rng.choice(72, size=14, replace=False)  # a fifth of the hours hold a fault
    for h in hours:
        faulty[h * 60 + 10: h * 60 + 15] = 40.0  # far beyond anything normal
    dirty = PageBudget([6.0], prior_days=0.0, floor=0.0)
    _replay(dirty, faulty)
    assert dirty.thresholds[0] - clean.thresholds[0] < 1.2
    # A moment fit to every block's maximum follows the faults far up.
    maxima = faulty[: 71 * 60].reshape(71, 60).max(axis=1)
    beta = maxima.std() * math.sqrt(6) / math.pi
    mu = maxima.mean() - 0.5772 * beta
    assert GumbelTail(mu, beta, 1 / 24).level(2.0) > dirty.thresholds[0] + 10


def test_the_prior_holds_until_four_blocks_then_weighs_as_prior_days() -> None:
    rng = np.random.default_rng(2)
    evidence = rng.exponential(1.0, size=2 * 1440)
    budget = PageBudget([30.0], prior_days=1.0, floor=0.0)
    used = _replay(budget, evidence[: MIN_BLOCKS * 60])  # four hours: the fourth block still open
    assert (used == 30.0).all() and budget.tails[0] is None
    _replay(budget, evidence[MIN_BLOCKS * 60:], start_minute=MIN_BLOCKS * 60)
    fitted = PageBudget([30.0], prior_days=0.0, floor=0.0)
    _replay(fitted, evidence)
    # After a day (24 blocks, less the one still open) the prior, worth a day, weighs about half.
    weight = 47 / (47 + 24)
    expected = (1 - weight) * 30.0 + weight * float(fitted.thresholds[0])
    assert budget.thresholds[0] == pytest.approx(expected, rel=1e-6)


def test_the_floor_bounds_a_quiet_system_and_blocks_are_time_not_steps() -> None:
    rng = np.random.default_rng(3)
    quiet = rng.exponential(0.3, size=1440)
    floored = PageBudget([6.0], prior_days=0.0, floor=6.0)
    _replay(floored, quiet)
    assert floored.thresholds[0] == 6.0
    # The same day at 5-minute sampling: blocks are hours either way, so the fit sees 23 blocks.
    five = PageBudget([6.0], prior_days=0.0, floor=0.0)
    for i, e in enumerate(quiet[::5]):
        five.observe(i * 5 * MINUTE, np.array([e]))
    assert five.tails[0] is not None and five.tails[0].blocks == 23


def test_a_page_score_is_the_chance_of_a_normal_day_without_such_an_episode() -> None:
    tail = GumbelTail(mu=3.0, beta=0.8, block_days=1 / 24)
    level = tail.level(2.0)
    assert tail.pages_per_day(level) == pytest.approx(2.0)
    assert tail.page_score(level) == pytest.approx(math.exp(-2.0))
    scores = [tail.page_score(x) for x in (0.0, level, level + 3, 1e6)]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores)
    assert GumbelTail.from_dict(tail.to_dict()) == tail


def test_systems_are_calibrated_each_on_its_own_evidence() -> None:
    rng = np.random.default_rng(4)
    budget = PageBudget([6.0, 6.0], prior_days=0.0, floor=0.0)
    for i in range(2 * 1440):
        budget.observe(i * MINUTE, np.array([rng.exponential(1.0), rng.exponential(2.0)]))
    quiet, noisy = budget.thresholds
    assert noisy > quiet + 4  # twice the scale: about twice the level


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="budget_per_day"):
        PageBudget([6.0], budget_per_day=0)
    with pytest.raises(ValueError, match="lower_quantile"):
        fit_block_maxima(np.ones((8, 1)), 1 / 24, lower_quantile=0.6, upper_quantile=0.5)
    assert fit_block_maxima(np.ones((MIN_BLOCKS - 1, 1)), 1 / 24) == [None]
