"""Behavioural checks of per-series champion selection, the fast models and interval calibration."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from models.forecasting import ChampionSelector, DampedTrend, SeasonalNaive, SeasonalSmoothing
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.calibration import conformal_widths, horizon_profile
from models.forecasting.panel import to_panel
from models.forecasting.selection_scoring import pick_champions

START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
FAST = ("seasonal_naive", "ses", "damped_trend", "mstl")


def frame(series: dict[str, np.ndarray], freq: str = "h") -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {"unique_id": uid, "ds": pd.date_range(START, periods=len(y), freq=freq).as_unit("us"), "y": y}
        )
        for uid, y in series.items()
    ]
    return pd.concat(parts, ignore_index=True)


def seasonal_and_trending(days: int = 14, seed: int = 0) -> dict[str, np.ndarray]:
    """A flat series with a strong daily cycle and a steadily growing one without any cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    return {
        "seasonal": 50 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, t.size),
        "trending": 10 + 0.5 * t + rng.normal(0, 1, t.size),
    }


def test_selection_picks_the_model_that_matches_each_series() -> None:
    truth = seasonal_and_trending()
    model = ChampionSelector(candidates=FAST, horizon=24).fit(frame(truth))
    choice = model.choices_.set_index("unique_id")["model"]
    assert choice["seasonal"] in ("mstl", "seasonal_naive")
    assert choice["trending"] == "damped_trend"
    # The table carries every candidate's backtest MASE and the pick is the smallest.
    row = model.choices_.set_index("unique_id").loc["trending"]
    assert row["mase"] == pytest.approx(min(row[f"mase_{c}"] for c in FAST))
    assert set(model.backtest_["model"]) == set(FAST)
    assert model.backtest_.groupby("model").size().to_dict() == dict.fromkeys(FAST, 2)
    # The forecast names the model that made each series (the store keeps it as model_name).
    made = model.predict(24).groupby("unique_id")["model_name"].agg(set)
    assert made.to_dict() == {uid: {choice[uid]} for uid in ("seasonal", "trending")}


def test_selected_forecast_beats_every_single_model_on_a_mixed_fleet() -> None:
    truth = seasonal_and_trending(days=16, seed=1)
    df = frame(truth)
    cut = df["ds"].max() - pd.Timedelta(hours=24)
    train, test = df[df["ds"] <= cut], df[df["ds"] > cut]

    def mae(forecaster: Forecaster) -> float:
        fc = forecaster.fit(train).predict(24).merge(test, on=["unique_id", "ds"])
        return float(np.mean(np.abs(fc["y"] - fc["yhat"])))

    auto = mae(ChampionSelector(candidates=FAST, horizon=24))
    for single in (SeasonalNaive(24), DampedTrend(season_length=24), SeasonalSmoothing(season_length=24)):
        assert auto < mae(single), single.name


class FailsForOneSeries(Forecaster):
    """An expensive (frame) candidate that raises whenever the series ``bad`` is in its data."""

    name = "fails_for_bad"
    seen: ClassVar[list[str]] = []

    def _fit(self, df: pd.DataFrame) -> None:
        if (df["unique_id"] == "bad").any():
            raise RuntimeError("cannot model series bad")
        self.naive_ = SeasonalNaive(24).fit(df, freq=self.freq_)

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        return self.naive_.predict(h, level).assign(yhat=lambda f: f["yhat"] * 0 + 1.0)


def test_a_candidate_failing_for_one_series_is_reported_and_the_run_goes_on() -> None:
    truth = seasonal_and_trending()
    truth["bad"] = truth["seasonal"] + 5
    model = ChampionSelector(
        candidates=("seasonal_naive", FailsForOneSeries()),
        horizon=24,
        screen_mase=0.0,
        expensive_min_seasons=0,
    ).fit(frame(truth))
    failures = pd.DataFrame(model.failures_)
    assert set(failures["unique_id"]) == {"bad"}
    assert failures["reason"].str.contains("cannot model series bad").all()
    assert (failures["model"] == "fails_for_bad").all()
    scored = model.backtest_.set_index(["unique_id", "model"])["n_origins"]
    assert scored[("bad", "fails_for_bad")] == 0 and scored[("trending", "fails_for_bad")] == 1
    out = model.predict(12)
    assert out.groupby("unique_id").size().to_dict() == {"bad": 12, "seasonal": 12, "trending": 12}
    assert np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()


def test_series_no_candidate_can_forecast_fall_back_to_seasonal_naive() -> None:
    truth = seasonal_and_trending()
    truth["bad"] = truth["seasonal"] + 5
    model = ChampionSelector(
        candidates=(FailsForOneSeries(),), horizon=24, screen_mase=0.0, expensive_min_seasons=0
    ).fit(frame(truth))
    assert list(model.fallbacks_) == ["bad"]
    choice = model.choices_.set_index("unique_id")
    assert choice.loc["bad", "model"] == "seasonal_naive" and choice.loc["bad", "reason"].startswith(
        "fallback"
    )
    assert choice.loc["trending", "model"] == "fails_for_bad"
    out = model.predict(24).set_index("unique_id")
    expected = SeasonalNaive(24).fit(frame({"bad": truth["bad"]})).predict(24)
    np.testing.assert_allclose(out.loc["bad", "yhat"].to_numpy(), expected["yhat"].to_numpy())
    assert (out.loc["trending", "yhat"] == 1.0).all()
    assert set(out.loc["bad", "model_name"]) == {"seasonal_naive"}
    assert set(out.loc["trending", "model_name"]) == {"fails_for_bad"}


def test_expensive_candidates_run_only_on_screened_series_and_recent_history() -> None:
    class Counting(FailsForOneSeries):
        name = "counting"
        rows: ClassVar[dict[str, int]] = {}

        def _fit(self, df: pd.DataFrame) -> None:
            Counting.rows.update(df.groupby("unique_id").size().to_dict())
            super()._fit(df)

    truth = seasonal_and_trending()
    cheap = ("seasonal_naive", "damped_trend")

    def fit(screen_mase: float) -> ChampionSelector:
        Counting.rows = {}
        candidates = (*cheap, Counting())
        return ChampionSelector(
            candidates=candidates, horizon=24, screen_mase=screen_mase, expensive_max_seasons=3
        ).fit(frame(truth))

    everything = fit(screen_mase=0.0)
    assert list(everything.screened_) == ["seasonal", "trending"]
    best_cheap = (
        everything.backtest_[everything.backtest_["model"].isin(cheap)].groupby("unique_id")["mase"].min()
    )
    weaker = str(best_cheap.idxmax())
    # Only the series the cheap candidates forecast worse is worth an expensive fit.
    model = fit(screen_mase=float(best_cheap.mean()))
    assert list(model.screened_) == [weaker]
    assert Counting.rows == {weaker: 3 * 24}  # and it is fitted on its last three days only
    scored = model.backtest_.set_index(["unique_id", "model"])["n_origins"]
    assert scored[(weaker, "counting")] == 1 and scored[(str(best_cheap.idxmin()), "counting")] == 0


def test_pick_champions_compares_a_partially_scored_candidate_on_its_origins_only() -> None:
    # candidates x origins x series. B leads on the mean over all origins (0.8 vs A's 1.0);
    # C ran at the last origin only, so it is judged against B there (1.4), not against B's mean.
    mase = np.array([[[1.0], [1.0], [1.0]], [[0.5], [0.5], [1.4]], [[np.nan], [np.nan], [1.2]]])
    best, has_winner = pick_champions(mase)
    assert best.tolist() == [2] and has_winner.tolist() == [True]
    mase[2, 2, 0] = 1.5
    assert pick_champions(mase)[0].tolist() == [1]
    assert pick_champions(np.full((2, 3, 1), np.nan))[1].tolist() == [False]


def test_a_series_leaves_the_fleet_default_only_on_a_clear_win() -> None:
    # Two candidates, one origin, three series: A is the fleet default (better on average).
    mase = np.array([[[1.0, 1.0, 1.0]], [[0.95, 0.5, 3.0]]])
    assert pick_champions(mase, margin=0.1)[0].tolist() == [0, 1, 0]  # 5 % is not enough, 50 % is
    assert pick_champions(mase, margin=0.0)[0].tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="margin"):
        pick_champions(mase, margin=1.0)


def test_unknown_candidate_names_list_the_choices() -> None:
    with pytest.raises(Exception, match="seasonal_naive"):
        ChampionSelector(candidates=("arima",))
    assert FORECASTERS.get("auto") is ChampionSelector


# -- calibration ---------------------------------------------------------------------------------
def test_conformal_widths_recover_gaussian_quantiles_per_series() -> None:
    rng = np.random.default_rng(3)
    sigma = np.array([1.0, 5.0, 20.0])
    errors = rng.normal(0, 1, (3, 40, 24)) * sigma[:, None, None]
    widths = conformal_widths(errors)
    half = widths.half_widths(24, 80)
    np.testing.assert_allclose(half.mean(axis=1) / sigma, 1.2816, rtol=0.12)
    assert (widths.half_widths(24, 95) > half).all()
    assert np.all(np.diff(widths.steps(48)) >= 0)


def test_horizon_profile_grows_with_the_step_when_errors_do() -> None:
    rng = np.random.default_rng(4)
    errors = rng.normal(0, 1, (50, 3, 12)) * np.sqrt(np.arange(1, 13))[None, None, :]
    profile = horizon_profile(errors)
    assert profile[-1] > 2 * profile[0] and np.all(np.diff(profile) >= 0)


def test_intervals_cover_about_the_level_on_a_synthetic_fleet() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(16 * 24)
    fleet = {
        f"s{i}": rng.uniform(20, 80)
        + rng.uniform(0, 15) * np.sin(2 * np.pi * (t + i) / 24)
        + np.cumsum(rng.normal(0, rng.uniform(0.2, 1.0), t.size)) * 0.3
        + rng.normal(0, rng.uniform(0.5, 3), t.size)
        for i in range(40)
    }
    df = frame(fleet)
    cut = df["ds"].max() - pd.Timedelta(hours=24)
    train, test = df[df["ds"] <= cut], df[df["ds"] > cut]
    out = ChampionSelector(candidates=FAST, horizon=24).fit(train).predict(24, level=80).merge(test)
    inside = ((out["y"] >= out["yhat_lower"]) & (out["y"] <= out["yhat_upper"])).mean()
    assert 0.70 <= inside <= 0.90


# -- fast models and the panel ---------------------------------------------------------------------
def test_panel_aligns_series_on_their_last_step_and_keeps_gaps() -> None:
    df = frame({"a": np.arange(5.0), "b": np.arange(3.0)})
    df = df[~((df["unique_id"] == "a") & (df["y"] == 2.0))]
    panel = to_panel(df, "h")
    np.testing.assert_array_equal(panel.values[0], [0.0, 1.0, np.nan, 3.0, 4.0])
    np.testing.assert_array_equal(panel.values[1], [np.nan, np.nan, 0.0, 1.0, 2.0])
    assert panel.lengths.tolist() == [5, 3]


@pytest.mark.parametrize(
    ("model", "series", "tolerance"),
    [
        (DampedTrend(season_length=24), lambda t: 5 + 0.3 * t, 1.0),
        (SeasonalSmoothing(season_length=24), lambda t: 30 + 10 * np.sin(2 * np.pi * t / 24), 0.5),
    ],
    ids=["damped_trend", "mstl"],
)
def test_fast_models_follow_the_shape_they_are_built_for(model: Forecaster, series, tolerance: float) -> None:
    t = np.arange(14 * 24 + 12)
    y = series(t)
    out = model.fit(frame({"x": y[:-12]})).predict(12)
    assert np.max(np.abs(out["yhat"].to_numpy() - y[-12:])) < tolerance
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_backtest_reports_pinball_loss_of_the_interval_bounds_per_series_and_overall() -> None:
    from models.forecasting.backtest import backtest
    from models.forecasting.metrics import pinball

    result = backtest(SeasonalNaive(24), frame(seasonal_and_trending()), h=24, n_origins=2, level=80)
    fc = result.forecasts[result.forecasts["unique_id"] == "trending"]
    expected = (pinball(fc["y"], fc["yhat_lower"], 0.1) + pinball(fc["y"], fc["yhat_upper"], 0.9)) / 2
    per_series = result.per_series.set_index("unique_id")
    assert per_series.loc["trending", "pinball"] == pytest.approx(expected)
    assert result.overall["pinball"] == pytest.approx(per_series["pinball"].mean())


def test_the_fitted_selection_serves_through_the_pyfunc_and_survives_pickling() -> None:
    import pickle

    from foresight.pyfunc import ForesightPyfunc, forecast_input

    model = ChampionSelector(candidates=FAST, horizon=24).fit(frame(seasonal_and_trending()))
    restored = pickle.loads(pickle.dumps(ForesightPyfunc(model)))
    served = restored.predict(None, forecast_input(12, 90))
    pd.testing.assert_frame_equal(served, model.predict(12, 90))
    assert restored.unwrap().choices_.equals(model.choices_)


def test_backtesting_every_origin_in_one_pass_changes_no_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The selector's shared multi-origin pass and the final fits it keeps (a speed-up) give the
    choices, scores and forecasts of fitting one origin at a time and refitting to predict, exactly."""
    import models.forecasting.selection as selection

    rng = np.random.default_rng(2)
    series = (seasonal_and_trending(days=9)
              | {f"short_{i}": y[-60:] for i, y in enumerate(seasonal_and_trending(days=4, seed=1).values())}
              | {f"noisy_{i}": 30 + np.cumsum(rng.normal(0, 0.3, 150)) + rng.normal(0, 3, 150) for i in range(6)})
    train = frame(series)

    def fitted() -> ChampionSelector:
        return ChampionSelector(candidates=(*FAST, "ensemble"), horizon=12, switch_margin=0.0).fit(train)

    shared = fitted()
    assert {"ensemble", "ses", "damped_trend", "mstl"} <= set(shared.choices_["model"])
    monkeypatch.setattr(selection, "shared_origin_fits", lambda *args: {})
    one_at_a_time = fitted()
    pd.testing.assert_frame_equal(shared.backtest_, one_at_a_time.backtest_, check_exact=True)
    pd.testing.assert_frame_equal(shared.choices_, one_at_a_time.choices_, check_exact=True)
    pd.testing.assert_frame_equal(shared.predict(30, 80), one_at_a_time.predict(30, 80), check_exact=True)
