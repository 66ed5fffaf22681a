"""The champion/challenger gate: ``foresight.promotion.decide`` is pure and exact."""

from __future__ import annotations

import math

import pytest

from foresight.promotion import Decision, decide


@pytest.mark.parametrize(
    ("candidate", "champion", "baseline", "higher_is_better", "min_improvement", "promote"),
    [
        pytest.param(0.80, None, 0.95, False, 0.01, True, id="no-champion-beats-baseline"),
        pytest.param(0.96, None, 0.95, False, 0.01, False, id="no-champion-loses-to-baseline"),
        pytest.param(0.61, 0.70, 0.95, False, 0.01, True, id="beats-both"),
        pytest.param(0.61, 0.70, 0.60, False, 0.01, False, id="beats-champion-not-baseline"),
        pytest.param(0.72, 0.70, 0.95, False, 0.01, False, id="worse-than-champion"),
        pytest.param(0.695, 0.70, 0.95, False, 0.01, False, id="better-but-within-margin"),
        pytest.param(0.693, 0.70, 0.95, False, 0.01, True, id="exactly-the-margin"),
        pytest.param(0.70, 0.70, 0.95, False, 0.0, False, id="tie-never-promotes"),
        pytest.param(0.699, 0.70, 0.95, False, 0.0, True, id="zero-margin-strict-gain"),
        pytest.param(0.90, 0.80, 0.50, True, 0.01, True, id="higher-better-beats-both"),
        pytest.param(0.805, 0.80, 0.50, True, 0.01, False, id="higher-better-within-margin"),
        pytest.param(0.70, 0.80, 0.50, True, 0.01, False, id="higher-better-worse-than-champion"),
        pytest.param(0.85, 0.80, 0.90, True, 0.01, False, id="higher-better-loses-to-baseline"),
        pytest.param(0.85, None, 0.80, True, 0.01, True, id="higher-better-no-champion"),
        pytest.param(math.nan, None, 0.95, False, 0.0, False, id="nan-candidate"),
        pytest.param(-math.inf, None, 0.95, False, 0.0, False, id="infinite-candidate"),
        pytest.param(0.80, math.inf, 0.95, False, 0.01, True, id="infinite-champion-mase-is-beaten"),
        pytest.param(0.80, math.nan, 0.95, False, 0.01, False, id="nan-champion-blocks-until-fixed"),
    ],
)
def test_decide_promotes_only_when_it_beats_baseline_and_champion(
    candidate: float,
    champion: float | None,
    baseline: float,
    higher_is_better: bool,
    min_improvement: float,
    promote: bool,
) -> None:
    decision = decide(
        candidate, champion, baseline, higher_is_better=higher_is_better, min_improvement=min_improvement
    )
    assert isinstance(decision, Decision)
    assert decision.promote is promote
    assert decision.label == ("promote" if promote else "challenger")


def test_direction_matters_for_the_same_numbers() -> None:
    lower = decide(0.61, 0.70, 0.95, higher_is_better=False, min_improvement=0.01)
    higher = decide(0.61, 0.70, 0.95, higher_is_better=True, min_improvement=0.01)
    assert lower.promote and not higher.promote


def test_reason_for_a_promotion_states_all_numbers() -> None:
    decision = decide(0.61, 0.70, 0.95, higher_is_better=False, min_improvement=0.01)
    assert decision.reason == "mase 0.61 beats champion 0.7 and baseline 0.95"


def test_reason_for_a_challenger_states_the_margin() -> None:
    decision = decide(0.72, 0.70, 0.95, higher_is_better=False, min_improvement=0.01)
    assert decision.reason == "mase 0.72 does not beat champion 0.7 by 1%"


def test_reason_names_the_baseline_when_that_is_what_failed() -> None:
    decision = decide(
        0.61, 0.70, 0.60, higher_is_better=False, min_improvement=0.005, metric="smape"
    )
    assert decision.reason == "smape 0.61 does not beat baseline 0.6 by 0.5%"


def test_reason_without_champion_says_so() -> None:
    decision = decide(0.8, None, 0.95, higher_is_better=False, min_improvement=0.01)
    assert "0.8" in decision.reason and "0.95" in decision.reason and "no champion" in decision.reason


def test_negative_margin_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_improvement"):
        decide(0.5, 0.6, 0.9, higher_is_better=False, min_improvement=-0.01)


def test_the_baseline_serves_only_when_there_is_no_champion_and_the_candidate_lost() -> None:
    from foresight.promotion import baseline_serves

    lost = decide(1.2, None, 1.0, higher_is_better=False, min_improvement=0.01)
    serving = baseline_serves(lost, None, 1.0, metric="mase", baseline_name="seasonal_naive")
    assert serving is not None and serving.promote
    assert "seasonal_naive" in serving.reason and "does not beat baseline" in serving.reason
    won = decide(0.8, None, 1.0, higher_is_better=False, min_improvement=0.01)
    assert baseline_serves(won, None, 1.0, metric="mase", baseline_name="seasonal_naive") is None
    lost_to_champion = decide(0.9, 0.85, 1.0, higher_is_better=False, min_improvement=0.01)
    assert baseline_serves(lost_to_champion, 0.85, 1.0, metric="mase", baseline_name="x") is None, \
        "an existing champion is never replaced by the baseline"
    assert baseline_serves(lost, None, math.nan, metric="mase", baseline_name="x") is None
