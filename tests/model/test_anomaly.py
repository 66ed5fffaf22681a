"""Behavioural checks of the anomaly detectors (models.anomaly.base) on seeded synthetic telemetry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from foresight.plugins import UnknownPluginError
from models.anomaly.base import DETECTORS
from models.anomaly.robust_seasonal import RobustSeasonalDetector
from models.anomaly.rolling_zscore import RollingZScoreDetector

DAY = 288  # 5-minute steps per day
T0 = pd.Timestamp("2026-02-02", tz="UTC")


def telemetry(series: dict[str, np.ndarray]) -> pd.DataFrame:
    ds = pd.date_range(T0, periods=len(next(iter(series.values()))), freq="5min").astype("datetime64[us, UTC]")
    return pd.concat(
        [pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(y, float)}) for uid, y in series.items()],
        ignore_index=True,
    )


def daily_cycle(n: int, rng: np.random.Generator, amplitude: float = 30.0, noise: float = 2.0) -> np.ndarray:
    """A strong daily cycle (peak at 06:00 UTC) plus noise."""
    t = np.arange(n)
    return 50.0 + amplitude * np.sin(2 * np.pi * t / DAY) + rng.normal(0.0, noise, n)


def scores_by_series(out: pd.DataFrame) -> dict[str, np.ndarray]:
    return {uid: g["score"].to_numpy() for uid, g in out.groupby("unique_id")}


@pytest.fixture(scope="module")
def scenario() -> dict[str, object]:
    """14 days of a daily cycle; anomalies injected on day 11 only (days 0-9 are for fit)."""
    rng = np.random.default_rng(7)
    n, day11 = 14 * DAY, 11 * DAY
    plain = daily_cycle(n, rng)
    spike = daily_cycle(n, rng)
    spike[day11 + 100] += 15.0  # 7.5 sigma, one sample
    shift = daily_cycle(n, rng)
    shift[day11 + 150 :] += 10.0  # 5 sigma step that stays
    leak = daily_cycle(n, rng)
    leak[day11 + 50 :] += np.minimum(0.1 * np.arange(n - day11 - 50), 40.0)  # slow ramp, 1.2/hour
    df = telemetry({"plain": plain, "spike": spike, "shift": shift, "leak": leak})
    cut = T0 + pd.Timedelta(days=10)
    return {"df": df, "train": df[df["ds"] < cut], "test": df[df["ds"] >= cut], "offset": DAY}


@pytest.mark.parametrize("name", ["robust_seasonal", "rolling_zscore"])
def test_scores_are_causal_prefix_invariant(scenario: dict, name: str) -> None:
    detector = DETECTORS.get(name)().fit(scenario["train"])
    test = scenario["test"].sample(frac=0.97, random_state=1)  # gaps too
    full = detector.predict(test)
    prefix = detector.predict(test[test["ds"] < T0 + pd.Timedelta(days=11, hours=12)])
    joined = full.merge(prefix, on=["unique_id", "ds"], suffixes=("_full", "_prefix"))
    assert len(joined) == len(prefix) > 0
    np.testing.assert_array_equal(joined["score_full"].to_numpy(), joined["score_prefix"].to_numpy())
    # Changing the future must not change the past either.
    future = test.assign(y=np.where(test["ds"] >= T0 + pd.Timedelta(days=12), 1e6, test["y"]))
    altered = detector.predict(future)
    past = full["ds"] < T0 + pd.Timedelta(days=12)
    np.testing.assert_array_equal(altered.loc[past, "score"].to_numpy(), full.loc[past, "score"].to_numpy())


def test_scoring_a_recent_window_matches_scoring_the_whole_history(scenario: dict) -> None:
    """Context kept from fit lets a window right after training score like a long backtest."""
    detector = RobustSeasonalDetector().fit(scenario["train"])
    assert detector.context_length >= pd.Timedelta(days=7)
    whole = detector.predict(scenario["df"])
    recent = detector.predict(scenario["test"])
    joined = recent.merge(whole, on=["unique_id", "ds"], suffixes=("_recent", "_whole"))
    assert len(joined) == len(recent) == len(scenario["test"])
    np.testing.assert_allclose(joined["score_recent"], joined["score_whole"], rtol=0, atol=1e-9)


def test_predict_returns_one_bounded_score_per_row_in_sorted_order(scenario: dict) -> None:
    detector = RobustSeasonalDetector().fit(scenario["train"])
    shuffled = scenario["test"].sample(frac=1.0, random_state=3)
    out = detector.predict(shuffled)
    assert list(out.columns) == ["unique_id", "ds", "y", "score"]
    assert len(out) == len(shuffled)
    assert out["score"].between(0.0, 1.0).all() and out["score"].notna().all()
    expected = shuffled.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(out[["unique_id", "ds", "y"]], expected.astype({"unique_id": "string"}))


@pytest.mark.parametrize("seed", [11, 12])
def test_calibration_on_pure_noise(seed: int) -> None:
    """A score of 0.99 means 'more extreme than 99 % of normal history'."""
    rng = np.random.default_rng(seed)
    df = telemetry({f"noise-{i}": rng.normal(10.0, 1.0, 20 * DAY) for i in range(8)})
    cut = T0 + pd.Timedelta(days=10)
    out = RobustSeasonalDetector().fit(df[df["ds"] < cut]).predict(df[df["ds"] >= cut])
    share = float((out["score"] > 0.99).mean())
    assert 0.005 <= share <= 0.02, share
    assert 0.07 <= float((out["score"] > 0.9).mean()) <= 0.13


def test_spike_level_shift_and_leak_are_alerted(scenario: dict) -> None:
    detector = RobustSeasonalDetector().fit(scenario["train"])
    s = scores_by_series(detector.predict(scenario["test"]))
    o = scenario["offset"]
    assert s["spike"][o + 100] > 0.99
    assert s["shift"][o + 150 : o + 156].max() > 0.99  # within 30 minutes of the step
    assert (s["shift"][o + 152 : o + 170] > 0.99).mean() > 0.8  # and it stays alerted a while
    first_leak_alert = int(np.argmax(s["leak"][o + 50 :] > 0.99))
    assert s["leak"][o + 50 :].max() > 0.99
    assert first_leak_alert <= 6 * 12  # within six hours of the leak's start (offset < 4 sigma)


def test_normal_daily_peak_is_not_alerted(scenario: dict) -> None:
    """The daily peak is high in absolute terms but normal for its hour: no alert."""
    detector = RobustSeasonalDetector().fit(scenario["train"])
    plain = scores_by_series(detector.predict(scenario["test"]))["plain"]
    peaks = np.concatenate([np.arange(DAY // 4 - 24, DAY // 4 + 24) + k * DAY for k in range(4)])
    assert plain[peaks].max() < 0.99
    assert detector.calibration_["plain"].seasonal  # the seasonal baseline was chosen for it
    # The baseline detector, which knows no seasons, does flag normal peaks or slopes.
    zscore = scores_by_series(RollingZScoreDetector().fit(scenario["train"]).predict(scenario["test"]))["plain"]
    assert (zscore > 0.99).mean() > (plain > 0.99).mean()


def event_set(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two services x two series with a daily cycle; one spike, shift or leak per incident."""
    rng = np.random.default_rng(seed)
    n = 16 * DAY
    series, catalogue, truth = {}, [], []
    kinds = ["spike", "shift", "leak"]
    for s_idx, service in enumerate(["cart", "search"]):
        for metric in ["cpu_pct", "mem_pct"]:
            uid = f"{service}/i-1/{metric}"
            series[uid] = daily_cycle(n, rng)
            catalogue.append({"unique_id": uid, "service": service, "metric": metric})
        for k in range(5):  # days 10..15, one incident every ~1.2 days, at varying hours
            start = 10 * DAY + k * 345 + 40 * s_idx + 30
            uid = f"{service}/i-1/{'mem_pct' if k % 2 else 'cpu_pct'}"
            kind = kinds[(k + s_idx) % 3]
            y = series[uid]
            if kind == "spike":
                y[start : start + 2] += 16.0
            elif kind == "shift":
                y[start : start + 36] += 9.0
            else:
                y[start : start + 72] += 0.15 * np.arange(72)
            truth.append({"service": service, "start": T0 + pd.Timedelta(minutes=5 * start)})
    return telemetry(series), pd.DataFrame(catalogue), pd.DataFrame(truth)


def test_robust_seasonal_beats_rolling_zscore_on_event_f1() -> None:
    df, catalogue, truth = event_set(seed=3)
    cut = T0 + pd.Timedelta(days=10)
    results = {
        name: DETECTORS.get(name)().fit(df[df["ds"] < cut]).score(
            df[df["ds"] >= cut], truth, catalogue, threshold=0.99, horizon="30min", grace="2h"
        )
        for name in ("robust_seasonal", "rolling_zscore")
    }
    robust, zscore = results["robust_seasonal"], results["rolling_zscore"]
    assert robust["incidents"] == 10
    assert robust["recall"] >= 0.9, robust
    assert robust["f1"] > zscore["f1"] + 0.2, results


def test_detectors_are_found_by_name_and_unknown_names_list_choices() -> None:
    assert DETECTORS.get("robust_seasonal") is RobustSeasonalDetector
    assert DETECTORS.get("rolling_zscore") is RollingZScoreDetector
    with pytest.raises(UnknownPluginError, match="robust_seasonal"):
        DETECTORS.get("isolation_forest")


def test_predict_before_fit_and_bad_frames_raise() -> None:
    from foresight.schemas import SchemaError
    from models.base import NotFittedError

    df = telemetry({"a": np.ones(10)})
    with pytest.raises(NotFittedError):
        RobustSeasonalDetector().predict(df)
    with pytest.raises(SchemaError, match="non-finite"):
        RobustSeasonalDetector().fit(df.assign(y=np.nan))


def test_clone_keeps_configuration() -> None:
    detector = RobustSeasonalDetector(n_seasons=3, level_window="1h")
    twin = detector.clone()
    assert twin.get_params() == detector.get_params() and not twin.is_fitted


def test_a_series_too_short_to_calibrate_uses_the_pooled_calibration(scenario: dict) -> None:
    short = telemetry({"newcomer": np.random.default_rng(0).normal(5.0, 1.0, 40)})
    detector = RobustSeasonalDetector().fit(pd.concat([scenario["train"], short], ignore_index=True))
    assert "newcomer" not in detector.calibration_
    out = detector.predict(short.assign(y=np.r_[short["y"].to_numpy()[:-1], 50.0]))
    assert out["score"].iloc[-1] > 0.99  # a jump of 45 sigma is still flagged
    with pytest.raises(ValueError, match="not enough history"):
        RobustSeasonalDetector().fit(short)
