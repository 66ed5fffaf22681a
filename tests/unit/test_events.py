"""Event-wise evaluation on hand-made alarms and incidents (models.evaluation.events)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation.events import (
    alarm_episodes,
    episodes_frame,
    evaluate_alarms,
    event_f1_sweep,
    rolling_origin_splits,
    time_split,
)

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def incidents(*rows: tuple[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"service": [s for s, _ in rows], "start": [at(m) for _, m in rows]})


def test_alarm_episodes_split_on_gaps_longer_than_gap() -> None:
    times = pd.date_range(T0, periods=12, freq="5min")
    flags = np.zeros(12, dtype=bool)
    flags[[1, 2, 3, 5, 9]] = True
    assert alarm_episodes(times, flags, gap="5min") == [(at(5), at(15)), (at(25), at(25)), (at(45), at(45))]
    # A 10-minute gap bridges the single clear sample at 20 min.
    assert alarm_episodes(times, flags, gap="10min") == [(at(5), at(25)), (at(45), at(45))]
    assert alarm_episodes(times, np.zeros(12, dtype=bool), gap="5min") == []


def test_alarm_episodes_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        alarm_episodes(pd.date_range(T0, periods=3, freq="5min"), [True], gap="5min")


def test_episodes_frame_keeps_services_apart() -> None:
    times = pd.date_range(T0, periods=4, freq="5min")
    df = pd.DataFrame({"service": ["a"] * 4 + ["b"] * 4, "ds": list(times) * 2, "alarm": [1, 1, 0, 1, 0, 1, 1, 0]})
    eps = episodes_frame(df, "alarm", gap="5min")
    assert eps.values.tolist() == [["a", at(0), at(5)], ["a", at(15), at(15)], ["b", at(5), at(10)]]


def test_evaluate_alarms_counts_detections_misses_false_alarms_and_lead() -> None:
    episodes = {
        "cart": [(at(20), at(40)), (at(500), at(505))],  # 40 min early for the 60-min incident; then noise
        "search": [(at(110), at(120))],  # 10 min late, within the 15-min grace
        "payments": [(at(0), at(5))],  # no incident of payments at all
    }
    truth = incidents(("cart", 60), ("search", 100), ("checkout", 300))
    m = evaluate_alarms(episodes, truth, horizon="60min", grace="15min")
    assert (m.detected, m.missed, m.false_alarms) == (2, 1, 2)
    assert m.recall == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(2 / 4)
    assert m.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m.median_lead_minutes == pytest.approx((40 + -10) / 2)


@pytest.mark.parametrize(
    ("episode_start", "detected"),
    [(0, True), (-0.5, False), (75, True), (75.5, False)],  # incident at 60, horizon 60, grace 15
)
def test_detection_window_bounds_are_inclusive(episode_start: float, detected: bool) -> None:
    episodes = {"cart": [(at(episode_start), at(episode_start))]}
    m = evaluate_alarms(episodes, incidents(("cart", 60)), horizon="60min", grace="15min")
    assert m.detected == int(detected)
    assert m.false_alarms == int(not detected)


def test_an_episode_of_another_service_does_not_detect() -> None:
    m = evaluate_alarms({"search": [(at(50), at(55))]}, incidents(("cart", 60)), "60min", "15min")
    assert (m.detected, m.false_alarms, m.recall, m.precision) == (0, 1, 0.0, 0.0)
    assert m.median_lead_minutes is None


def test_earliest_matching_episode_sets_the_lead_and_one_episode_may_match_two_incidents() -> None:
    episodes = {"cart": [(at(10), at(12)), (at(40), at(41))]}
    m = evaluate_alarms(episodes, incidents(("cart", 60), ("cart", 65)), "60min", "0min")
    assert m.detected == 2 and m.false_alarms == 0
    assert m.median_lead_minutes == pytest.approx((50 + 55) / 2)


def test_nothing_raised_or_nothing_to_detect_scores_zero_not_nan() -> None:
    silent = evaluate_alarms({}, incidents(("cart", 60)), "60min", "15min")
    assert (silent.recall, silent.precision, silent.f1, silent.missed) == (0.0, 0.0, 0.0, 1)
    noisy = evaluate_alarms({"cart": [(at(0), at(5))]}, incidents(), "60min", "15min")
    assert (noisy.precision, noisy.false_alarms) == (0.0, 1)


def test_frame_and_mapping_inputs_agree() -> None:
    mapping = {"cart": [(at(20), at(40))], "search": [(at(0), at(1))]}
    frame = pd.DataFrame(
        [("cart", at(20), at(40)), ("search", at(0), at(1))], columns=["service", "start", "end"]
    )
    truth = incidents(("cart", 60))
    assert evaluate_alarms(mapping, truth, "1h", "5min") == evaluate_alarms(frame, truth, "1h", "5min")


def test_naive_incident_times_are_refused() -> None:
    truth = pd.DataFrame({"service": ["cart"], "start": [pd.Timestamp("2026-03-01 01:00")]})
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_alarms({}, truth, "1h", "5min")


def test_time_split_is_by_time_not_rows() -> None:
    ds = pd.date_range(T0, periods=100, freq="5min")
    df = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 100), "ds": np.tile(ds, 2)})
    train, test = time_split(df, 0.75)
    assert train["ds"].max() < test["ds"].min()
    assert len(train) + len(test) == len(df)
    assert train.groupby("unique_id").size().tolist() == [75, 75]
    with pytest.raises(ValueError, match="within"):
        time_split(df, 1.0)


def test_rolling_origin_splits_expand_and_cover_the_tail() -> None:
    df = pd.DataFrame({"ds": pd.date_range(T0, periods=101, freq="5min")})
    splits = list(rolling_origin_splits(df, n_origins=3, test_frac=0.1))
    assert [len(tr) for tr, _ in splits] == [70, 80, 90]
    assert all(tr["ds"].max() < te["ds"].min() for tr, te in splits)
    assert splits[-1][1]["ds"].max() == df["ds"].max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_threshold_sweep_agrees_with_evaluating_each_threshold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(T0, periods=600, freq="5min")
    services = ["cart", "search", "payments"]
    risk = pd.DataFrame({"service": np.repeat(services, len(ds)), "ds": np.tile(ds, 3)})
    risk["risk"] = np.clip(rng.beta(0.6, 6.0, len(risk)) + rng.random(len(risk)) * 0.05, 0, 1)
    starts = [at(m) for m in rng.choice(np.arange(60, 3000, 5), size=8, replace=False)]
    truth = pd.DataFrame({"service": rng.choice([*services, "checkout"], size=8), "start": starts})
    truth["end"] = truth["start"] + pd.to_timedelta(rng.integers(0, 90, 8), unit="min")
    truth["precursor_start"] = truth["start"] - pd.to_timedelta(rng.integers(0, 300, 8), unit="min")
    truth.loc[::3, "precursor_start"] = pd.NaT
    for k, start in enumerate(truth["start"]):  # make some detections happen
        row = (risk["service"] == truth.loc[k, "service"]) & (risk["ds"] == start - pd.Timedelta("20min"))
        risk.loc[row, "risk"] = 0.9
    thresholds = np.quantile(risk["risk"], [0.5, 0.9, 0.99, 0.995, 0.999, 0.9999]).tolist() + [0.95]
    swept = event_f1_sweep(risk, truth, thresholds, "60min", "5min", "10min")
    one_by_one = [
        evaluate_alarms(episodes_frame(risk.assign(alarm=risk["risk"] >= t), "alarm", "10min"), truth, "60min", "5min").f1
        for t in thresholds
    ]
    np.testing.assert_allclose(swept, one_by_one, rtol=0, atol=1e-12)
    assert len(set(np.round(one_by_one, 6))) > 2  # the thresholds really differ in outcome


def test_incidents_all_still_open_are_evaluated() -> None:
    # An ``end`` column holding only None reads as a naive all-NaT column: there is no time in it
    # to be naive about, so the incidents are open ones (it was refused as naive before).
    truth = incidents(("cart", 60)).assign(end=[None])
    result = evaluate_alarms({"cart": [(at(50), at(55))]}, truth, "1h", "5min")
    assert (result.detected, result.false_alarms) == (1, 0)
