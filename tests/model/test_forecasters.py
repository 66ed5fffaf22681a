"""Behavioural checks of the capacity forecasters, the backtest and the features they rely on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from features.lags import history_features, history_windows, lag_features, rolling_features
from features.resample import GapWarning, resample
from foresight.plugins import UnknownPluginError
from models.forecasting import LGBMGlobalForecaster, ProphetForecaster, SeasonalNaive
from models.forecasting.backtest import backtest
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.lgbm_global import InsufficientHistoryError

START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday


def fleet(n_series: int = 6, days: int = 21, seed: int = 0, noise: float = 0.05) -> pd.DataFrame:
    """Hourly series of different scales: daily cycle, weekend dip, linear trend, Gaussian noise."""
    rng = np.random.default_rng(seed)
    n = days * 24
    t = np.arange(n)
    ds = pd.date_range(START, periods=n, freq="h").as_unit("us")
    weekend = np.where(ds.day_of_week >= 5, 0.9, 1.0)
    frames = []
    for i in range(n_series):
        level = rng.uniform(20, 200)
        amp, trend = rng.uniform(0.2, 0.4) * level, rng.uniform(0.5, 2.0) * level / n
        phase = rng.integers(24)
        y = (level + trend * t + amp * np.sin(2 * np.pi * (t + phase) / 24)) * weekend
        y = y + rng.normal(0, noise * level, n)
        frames.append(pd.DataFrame({"unique_id": f"svc/i-{i}/cpu_pct", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def small_models() -> list[Forecaster]:
    """Each forecaster in a configuration fast enough for per-test fits."""
    return [
        SeasonalNaive(24),
        LGBMGlobalForecaster(lags=(1, 2, 24), windows=(24,), n_estimators=40, calibration_horizon=24),
        ProphetForecaster(uncertainty_samples=50),
    ]


@pytest.fixture(scope="module")
def trending_fleet() -> pd.DataFrame:
    return fleet()


@pytest.fixture(scope="module")
def backtests(trending_fleet: pd.DataFrame) -> dict[str, object]:
    """One 3-origin, day-ahead backtest per model on the trending fleet (shared: ~5 s in all)."""
    models = [SeasonalNaive(24), LGBMGlobalForecaster(), ProphetForecaster()]
    return {m.name: backtest(m, trending_fleet, h=24, n_origins=3, level=80) for m in models}


# -- seasonal naive ------------------------------------------------------------------------------
def test_seasonal_naive_is_exact_on_a_purely_periodic_series() -> None:
    period = np.array([3.0, 5.0, 9.0, 4.0] * 6)  # season 24, repeated 4 days
    ds = pd.date_range(START, periods=96, freq="h").as_unit("us")
    df = pd.DataFrame({"unique_id": "p", "ds": ds, "y": np.tile(period, 4)})
    out = SeasonalNaive(24).fit(df).predict(48, level=90)
    np.testing.assert_array_equal(out["yhat"].to_numpy(), np.tile(period, 2))
    np.testing.assert_array_equal(out["yhat_lower"].to_numpy(), out["yhat_upper"].to_numpy())  # no error seen


def test_seasonal_naive_falls_back_to_naive_for_a_series_shorter_than_a_season() -> None:
    ds = pd.date_range(START, periods=5, freq="h").as_unit("us")
    df = pd.DataFrame({"unique_id": "short", "ds": ds, "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = SeasonalNaive(24).fit(df).predict(3, level=80)
    assert out["yhat"].tolist() == [5.0, 5.0, 5.0]
    # Naive errors are all 1, so the half-width grows as sqrt(step).
    np.testing.assert_allclose(out["yhat_upper"] - out["yhat"], np.sqrt([1, 2, 3]))


# -- every forecaster ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", small_models(), ids=lambda m: m.name)
def test_forecast_shape_interval_order_and_future_timestamps(model: Forecaster) -> None:
    df = fleet(n_series=3, days=8, seed=1)
    # A series ending earlier than the others must continue from its own last timestamp.
    df = df[~((df["unique_id"] == "svc/i-2/cpu_pct") & (df["ds"] > df["ds"].max() - pd.Timedelta(hours=5)))]
    h = 12
    out = model.fit(df).predict(h, level=80)
    assert list(out.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert out.groupby("unique_id").size().to_dict() == dict.fromkeys(df["unique_id"].unique(), h)
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    assert np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    last = df.groupby("unique_id")["ds"].max()
    for uid, group in out.groupby("unique_id"):
        expected = pd.date_range(last[uid] + pd.Timedelta(hours=1), periods=h, freq="h")
        assert (group["ds"].to_numpy() == expected.to_numpy()).all(), uid
    assert str(out["ds"].dtype) == "datetime64[us, UTC]"


def test_wider_level_gives_wider_intervals() -> None:
    model = LGBMGlobalForecaster(lags=(1, 2, 24), windows=(24,), n_estimators=40, calibration_horizon=24)
    model.fit(fleet(n_series=3, days=8, seed=2))
    narrow, wide = model.predict(24, level=50), model.predict(24, level=95)
    assert ((wide["yhat_upper"] - wide["yhat_lower"]) >= (narrow["yhat_upper"] - narrow["yhat_lower"])).all()
    assert ((wide["yhat_upper"] - wide["yhat_lower"]) > (narrow["yhat_upper"] - narrow["yhat_lower"])).any()


def test_forecasters_are_registered_by_name() -> None:
    assert {"seasonal_naive", "prophet", "lgbm_global"} <= set(FORECASTERS.names())
    assert FORECASTERS.get("lgbm_global") is LGBMGlobalForecaster
    with pytest.raises(UnknownPluginError, match="seasonal_naive"):
        FORECASTERS.get("arima")


def test_lgbm_is_deterministic_for_a_seed() -> None:
    df = fleet(n_series=3, days=8, seed=3)
    params = {"lags": (1, 24), "windows": (24,), "n_estimators": 30, "calibration_horizon": 24}
    a = LGBMGlobalForecaster(**params).fit(df).predict(24)
    b = LGBMGlobalForecaster(**params).fit(df).predict(24)
    pd.testing.assert_frame_equal(a, b)


def test_lgbm_reports_which_features_it_relies_on() -> None:
    model = LGBMGlobalForecaster(lags=(1, 24), windows=(24,), n_estimators=30, calibration_horizon=24)
    importance = model.fit(fleet(n_series=3, days=8, seed=3)).feature_importance()
    assert set(importance.index) == set(model.feature_names_)
    assert importance.is_monotonic_decreasing and importance.iloc[0] > 0


def test_prophet_falls_back_per_series_without_stopping_the_batch() -> None:
    df = fleet(n_series=2, days=4, seed=4)
    # Prophet refuses a series with fewer than two rows.
    lonely = pd.DataFrame({"unique_id": ["lonely"], "ds": [df["ds"].max()], "y": [1.0]})
    model = ProphetForecaster(uncertainty_samples=20).fit(pd.concat([df, lonely], ignore_index=True))
    assert list(model.fallbacks_) == ["lonely"]
    out = model.predict(6)
    expected = dict.fromkeys(["lonely", "svc/i-0/cpu_pct", "svc/i-1/cpu_pct"], 6)
    assert out.groupby("unique_id").size().to_dict() == expected
    assert (out.loc[out["unique_id"] == "lonely", "yhat"] == 1.0).all()


def test_lgbm_sends_too_short_series_to_seasonal_naive_and_refuses_when_all_are() -> None:
    df = fleet(n_series=3, days=6, seed=7)
    short = df[(df["unique_id"] != "svc/i-2/cpu_pct") | (df["ds"] >= df["ds"].max() - pd.Timedelta(hours=30))]
    params = {"lags": (1, 24), "windows": (24,), "n_estimators": 30, "calibration_horizon": 24}
    model = LGBMGlobalForecaster(**params).fit(short)
    assert list(model.fallbacks_) == ["svc/i-2/cpu_pct"]  # 31 steps < 2 x 24
    out = model.predict(6)
    assert out.groupby("unique_id").size().to_dict() == dict.fromkeys(sorted(df["unique_id"].unique()), 6)
    with pytest.raises(InsufficientHistoryError, match="fewer than 48 steps"):
        LGBMGlobalForecaster(**params).fit(short[short["unique_id"] == "svc/i-2/cpu_pct"])


# -- backtest ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lgbm_global", "prophet"])
def test_models_beat_seasonal_naive_on_trending_daily_series(backtests, name: str) -> None:
    assert backtests[name].overall["mase"] < backtests["seasonal_naive"].overall["mase"]


def test_lgbm_80pct_intervals_cover_held_out_noise_sanely(backtests) -> None:
    assert 0.6 <= backtests["lgbm_global"].overall["coverage"] <= 0.95


def test_backtest_origins_and_output_shape(backtests, trending_fleet: pd.DataFrame) -> None:
    result = backtests["seasonal_naive"]
    fc = result.forecasts
    assert list(fc.columns) == ["unique_id", "ds", "cutoff", "y", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(fc) == 6 * 3 * 24 and fc["cutoff"].nunique() == 3
    last = trending_fleet["ds"].max()
    # The last origin leaves exactly h points; earlier ones step back by h.
    assert sorted(fc["cutoff"].unique()) == [last - pd.Timedelta(hours=24 * k) for k in (3, 2, 1)]
    assert (fc["ds"] > fc["cutoff"]).all() and (fc["ds"] <= fc["cutoff"] + pd.Timedelta(hours=24)).all()
    assert list(result.per_series.columns) == ["unique_id", "mase", "smape", "coverage", "pinball"]
    assert result.overall["n_series"] == 6 and result.fallbacks == 0


class _BreaksOnOneSeries(SeasonalNaive):
    """A model whose fit raises whenever a given series is in the batch."""

    name = "breaks_on_one"

    def _fit(self, df: pd.DataFrame) -> None:
        if (df["unique_id"] == "svc/i-1/cpu_pct").any():
            raise RuntimeError("cannot model svc/i-1/cpu_pct")
        super()._fit(df)


def test_backtest_falls_back_for_the_failing_series_and_goes_on() -> None:
    df = fleet(n_series=3, days=6, seed=5)
    result = backtest(_BreaksOnOneSeries(24), df, h=12, n_origins=2)
    assert result.fallbacks == 2  # one series at each of two origins
    assert set(result.failures["unique_id"]) == {"svc/i-1/cpu_pct"}
    assert result.failures["reason"].str.contains("cannot model").all()
    by_model = result.forecasts.groupby("unique_id")["model"].unique().map(list).to_dict()
    assert by_model == {
        "svc/i-0/cpu_pct": ["breaks_on_one"],
        "svc/i-1/cpu_pct": ["seasonal_naive"],
        "svc/i-2/cpu_pct": ["breaks_on_one"],
    }
    assert result.overall["fallbacks"] == 2 and result.overall["n_series"] == 3


def test_backtest_refuses_series_too_short_for_the_origins() -> None:
    with pytest.raises(ValueError, match="points"):
        backtest(SeasonalNaive(24), fleet(n_series=1, days=1), h=24, n_origins=2)


# -- features the forecasters rely on ------------------------------------------------------------
def test_recursive_history_features_match_training_frame_features() -> None:
    df = fleet(n_series=2, days=3, seed=6)
    df.loc[df.index[[10, 11, 40]], "y"] = np.nan  # gaps on the grid
    lags, windows = (1, 2, 24), (6, 24)
    frame = pd.concat([lag_features(df, lags), rolling_features(df, windows)], axis=1).to_numpy()
    sizes = df.groupby("unique_id").size().to_numpy()
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows = np.arange(len(df))
    arrays = history_features(history_windows(df["y"].to_numpy(), starts, rows, 24), lags, windows)
    np.testing.assert_allclose(arrays, frame, equal_nan=True)


def test_resample_aggregates_interpolates_short_gaps_and_drops_long_ones() -> None:
    ds = pd.date_range(START, periods=12 * 10, freq="5min").as_unit("us")  # 10 hours of 5-min samples
    y = np.repeat(np.arange(10, dtype=float), 12)  # hour i has value i
    raw = pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})
    hour = raw["ds"].dt.hour - START.hour
    raw = raw[~hour.isin([2, 5, 6, 7, 8])]  # a 1-hour gap and a 4-hour gap
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = resample(raw, "1h", how="mean", max_gap=2)
    assert [type(w.message) for w in caught] == [GapWarning]
    assert caught[0].message.gaps == {"a": 4}
    assert out["y"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 9.0]  # hour 2 interpolated, 5-8 left out
    assert str(out["ds"].dtype) == "datetime64[us, UTC]"


def test_score_compares_a_forecast_with_what_followed() -> None:
    from models.forecasting.seasonal_naive import SeasonalNaive

    rng = np.random.default_rng(0)
    ds = pd.date_range("2026-03-02", periods=24 * 15, freq="h", tz="UTC")
    daily = 50 + 10 * np.sin(2 * np.pi * np.arange(ds.size) / 24) + rng.normal(0, 1, ds.size)
    train = pd.DataFrame({"unique_id": "s", "ds": ds, "y": daily})
    model = SeasonalNaive(season_length=24).fit(train)
    future = model.predict(48, 80)[["unique_id", "ds", "yhat"]].rename(columns={"yhat": "y"})
    perfect = model.score(future)
    assert perfect["mase"] == pytest.approx(0.0, abs=1e-9) and perfect["coverage"] == 1.0
    shifted = model.score(future.assign(y=future["y"] + 10))
    scale = np.mean(np.abs(daily[24:] - daily[:-24]))
    assert shifted["mase"] == pytest.approx(10 / scale) and shifted["smape"] > 0.0


def test_prophet_learns_known_events_from_their_holiday_regressors() -> None:
    """A promotion that lifted load on past event days lifts the forecast on the next one, and only
    when the event calendar is given."""
    from foresight.settings_sections import ForecastEvent
    from models.forecasting.prophet_model import event_holidays

    ds = pd.date_range("2026-01-05", periods=42 * 24, freq="h", tz="UTC")  # six weeks, hourly
    rng = np.random.default_rng(3)
    y = 50 + 10 * np.sin(2 * np.pi * ds.hour.to_numpy() / 24) + rng.normal(0, 1, ds.size)
    promo_days = pd.to_datetime(["2026-01-12", "2026-01-22", "2026-02-02", "2026-02-09"], utc=True)
    future_promo = pd.Timestamp("2026-02-17", tz="UTC")  # the day after the history ends
    y = y + np.where(ds.normalize().isin(promo_days), 30.0, 0.0)
    df = pd.DataFrame({"unique_id": "shop/i-1/cpu_pct", "ds": ds, "y": y})
    events = [ForecastEvent(name="promotion", start=d, end=d + pd.Timedelta(hours=23)) for d in
              [*promo_days, future_promo]]
    assert event_holidays(events)[0] == {"holiday": "promotion", "ds": "2026-01-12", "lower_window": 0,
                                         "upper_window": 0}

    def promo_day_mean(model: ProphetForecaster) -> float:
        fc = model.fit(df).predict(48, 80)
        return float(fc.loc[fc["ds"].dt.normalize() == future_promo, "yhat"].mean())

    with_events = promo_day_mean(ProphetForecaster(uncertainty_samples=0, holidays=event_holidays(events)))
    without = promo_day_mean(ProphetForecaster(uncertainty_samples=0))
    assert with_events - without > 20, (with_events, without)
    with pytest.raises(ValueError, match="ends .* before it starts"):
        event_holidays([{"name": "bad", "start": "2026-02-02", "end": "2026-02-01"}])
