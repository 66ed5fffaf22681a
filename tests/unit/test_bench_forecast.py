"""The capacity-forecast benchmark's protocol (split, MASE scale, metrics) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.forecast import (
    MethodResult,
    backtest_horizon,
    forecast_in_processes,
    forecast_seasonal_naive,
    protocol_horizon,
    protocol_split,
    run_protocol,
    scale_season,
    score_forecasts,
    series_group,
    summarise,
)
from foresight.cli.bench_forecast import goal_lines

START = pd.Timestamp("2025-01-06", tz="UTC")


def series(uid: str, y: np.ndarray | list[float]) -> pd.DataFrame:
    values = np.asarray(y, dtype="float64")
    ds = pd.date_range(START, periods=values.size, freq="5min").as_unit("us")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": values})


def test_horizon_and_scale_season_follow_the_protocol_thresholds() -> None:
    assert protocol_horizon(2016) == 288 and protocol_horizon(2015) == 48
    assert scale_season(576) == 288 and scale_season(575) == 1
    assert series_group("gcd:vm_1:cpu") == "gcd" and series_group("google2019:avg_cpu") == "long"


def test_backtest_window_shrinks_until_the_history_holds_five_of_them() -> None:
    assert backtest_horizon(240, 48) == 48  # a gcd trace's training part: 5 x 48 points
    assert backtest_horizon(1955, 288) == 288
    assert backtest_horizon(288, 288) == 36  # 288 -> 144 -> 72 -> 36, the first with 5 x 36 <= 288
    assert backtest_horizon(4, 48) == 1


def test_split_holds_out_288_points_of_a_week_long_series_and_48_of_a_shorter_one() -> None:
    df = pd.concat([series("long", np.arange(2016.0)), series("gcd:a", np.arange(300.0))], ignore_index=True)
    train, test, horizons = protocol_split(df)
    assert horizons.to_dict() == {"gcd:a": 48, "long": 288}
    assert test.groupby("unique_id").size().to_dict() == {"gcd:a": 48, "long": 288}
    assert train.groupby("unique_id")["y"].max().to_dict() == {"gcd:a": 251.0, "long": 1727.0}
    assert test.groupby("unique_id")["y"].min().to_dict() == {"gcd:a": 252.0, "long": 1728.0}


def test_split_refuses_series_not_longer_than_their_horizon() -> None:
    with pytest.raises(ValueError, match="not longer than their horizon"):
        protocol_split(series("tiny", np.arange(48.0)))


def test_score_of_a_short_series_uses_the_one_step_naive_scale() -> None:
    train = series("gcd:x", [1.0, 2.0, 3.0, 4.0])  # one-step naive MAE = 1
    test = series("gcd:x", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).iloc[4:]
    fc = test[["unique_id", "ds"]].assign(yhat=[5.0, 8.0], yhat_lower=[4.0, 7.0], yhat_upper=[6.0, 9.0])
    row = score_forecasts(train, test, fc, level=80).iloc[0]
    assert row["mase"] == pytest.approx(1.0)  # MAE (0 + 2) / 2 over scale 1
    assert row["smape"] == pytest.approx((0.0 + 200 * 2 / 14) / 2)
    assert row["coverage"] == pytest.approx(0.5)  # 5 in [4, 6]; 6 not in [7, 9]
    # pinball at 0.1 / 0.9: lower bounds 4 and 7 -> (0.1 * 1 + 0.9 * 1) / 2; upper 6 and 9 -> (0.1 * 1 + 0.1 * 3) / 2
    assert row["pinball"] == pytest.approx(((0.1 + 0.9) / 2 + (0.1 + 0.3) / 2) / 2)


def test_score_of_a_long_series_uses_the_daily_seasonal_scale() -> None:
    y = np.arange(600.0 + 2)  # a ramp: the lag-288 in-sample error is 288 everywhere
    train, test = series("long", y[:600]), series("long", y).iloc[600:]
    fc = test[["unique_id", "ds"]].assign(yhat=test["y"].to_numpy() + 288.0, yhat_lower=0.0, yhat_upper=1e6)
    row = score_forecasts(train, test, fc).iloc[0]
    assert row["mase"] == pytest.approx(1.0) and row["coverage"] == 1.0


def test_score_refuses_a_forecast_missing_held_out_points() -> None:
    train, test = series("a", [1.0, 2.0, 3.0]), series("a", [1.0, 2.0, 3.0, 4.0, 5.0]).iloc[3:]
    fc = test.iloc[:1][["unique_id", "ds"]].assign(yhat=4.0, yhat_lower=3.0, yhat_upper=5.0)
    with pytest.raises(ValueError, match="1 held-out points have no finite forecast"):
        score_forecasts(train, test, fc)


def test_summary_means_over_series_and_pools_coverage_over_points() -> None:
    per_series = pd.DataFrame(
        {
            "unique_id": ["gcd:a", "gcd:b", "long"],
            "group": ["gcd", "gcd", "long"],
            "mase": [1.0, 3.0, 0.5],
            "smape": [10.0, 20.0, 30.0],
            "coverage": [1.0, 0.5, 0.0],
            "pinball": [1.0, 1.0, 4.0],
            "n": [48, 48, 288],
        }
    )
    s = summarise(per_series)
    assert s["mase"] == pytest.approx(1.5) and s["mase_gcd"] == pytest.approx(2.0) and s["mase_long"] == 0.5
    assert s["coverage"] == pytest.approx((48 + 24) / 384) and s["smape"] == pytest.approx(20.0)


def test_each_horizon_group_is_forecast_with_its_own_horizon() -> None:
    df = pd.concat([series("long", np.arange(2016.0)), series("gcd:a", np.arange(300.0))], ignore_index=True)
    train, test, horizons = protocol_split(df)
    calls: list[tuple[int, list[str]]] = []

    def last_value(part: pd.DataFrame, h: int, level: int) -> pd.DataFrame:
        calls.append((h, sorted(part["unique_id"].unique())))
        last = part.groupby("unique_id").tail(1)
        rows = [
            pd.DataFrame(
                {
                    "unique_id": r.unique_id,
                    "ds": r.ds + pd.Timedelta(minutes=5) * np.arange(1, h + 1),
                    "yhat": r.y,
                    "yhat_lower": r.y - 1,
                    "yhat_upper": r.y + 1,
                }
            )
            for r in last.itertuples()
        ]
        return pd.concat(rows, ignore_index=True)

    result = run_protocol("last", last_value, train, test, horizons)
    assert calls == [(48, ["gcd:a"]), (288, ["long"])]
    assert result.per_series.set_index("unique_id")["n"].to_dict() == {"gcd:a": 48, "long": 288}
    assert result.seconds > 0 and result.peak_mib > 0
    # By lead: the one-step-ahead point is the only one inside a +-1 band on a unit slope;
    # a day-long horizon has no week-ahead point, so that bucket is absent, not 0.
    assert result.summary["coverage_lead_1h"] == pytest.approx(2 / 24)
    assert result.summary["coverage_lead_1d"] == 0.0 and result.summary["points_lead_1d"] == 36 + 276
    assert "coverage_lead_7d" not in result.summary


def test_every_method_can_forecast_its_shards_in_worker_processes() -> None:
    rng = np.random.default_rng(4)
    df = pd.concat([series(f"gcd:{i}", 20 + rng.normal(0, 1, 400)) for i in range(5)]
                   + [series("long", 20 + rng.normal(0, 1, 2100))], ignore_index=True)
    train, test, horizons = protocol_split(df)
    here = run_protocol("naive", forecast_seasonal_naive, train, test, horizons)
    forked = run_protocol("naive", forecast_seasonal_naive, train, test, horizons, processes=2)
    pd.testing.assert_frame_equal(
        forked.forecasts, here.forecasts.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    )
    assert forked.summary == here.summary
    with pytest.raises(ValueError, match="processes must be >= 1"):
        forecast_in_processes(forecast_seasonal_naive, train, horizons, 80, 0)


def test_the_goal_lines_give_the_speed_ratio_of_this_run_with_its_process_count() -> None:
    def result(name: str, mase: float, seconds: float) -> MethodResult:
        summary = {"mase": mase, "mase_gcd": mase, "mase_long": mase / 2}
        return MethodResult(name, pd.DataFrame(), summary, seconds, 0.0)

    lines = goal_lines({"foresight": result("foresight", 0.7, 2.0), "prophet": result("prophet", 1.0, 50.0),
                        "seasonal_naive": result("seasonal_naive", 1.4, 0.1)}, processes=2)
    assert "Foresight MASE / prophet MASE: overall 0.70, gcd 0.70, long 0.70" in lines[0]
    assert "seasonal_naive MASE: overall 0.50, gcd 0.50, long 0.50 (goal < 1" in lines[1]
    assert lines[2].startswith("in this run, 2 process(es) per method: Foresight 2.0 s, per-series Prophet 50.0 s")
    assert "25.0x faster" in lines[2]
    assert goal_lines({"prophet": result("prophet", 1.0, 50.0)}, processes=1) == []


def test_scores_equal_the_per_series_metric_functions() -> None:
    from models.forecasting.metrics import coverage, pinball, seasonal_scale, smape

    rng = np.random.default_rng(7)
    df = pd.concat([series("long", 50 + rng.normal(0, 5, 2100).cumsum() / 10),
                    series("gcd:a", rng.normal(10, 3, 300)), series("gcd:b", np.r_[np.zeros(250), rng.normal(0, 1, 50)])],
                   ignore_index=True)
    train, test, _ = protocol_split(df)
    noise = rng.normal(0, 2, len(test))
    forecasts = test.assign(yhat=test["y"] + noise, yhat_lower=test["y"] + noise - 2, yhat_upper=test["y"] + noise + 2)
    forecasts.loc[forecasts.index[:5], "yhat"] = 0.0
    got = score_forecasts(train, test, forecasts.drop(columns="y")).set_index("unique_id")
    for uid, g in forecasts.groupby("unique_id"):
        y, history = g["y"].to_numpy(), train.loc[train["unique_id"] == uid, "y"].to_numpy()
        expected_mase = np.mean(np.abs(y - g["yhat"])) / seasonal_scale(history, scale_season(history.size))
        assert got.loc[uid, "mase"] == pytest.approx(expected_mase, rel=1e-12)
        assert got.loc[uid, "smape"] == pytest.approx(smape(y, g["yhat"]), rel=1e-12)
        assert got.loc[uid, "coverage"] == pytest.approx(coverage(y, g["yhat_lower"], g["yhat_upper"]))
        both = (pinball(y, g["yhat_lower"], 0.1) + pinball(y, g["yhat_upper"], 0.9)) / 2
        assert got.loc[uid, "pinball"] == pytest.approx(both, rel=1e-12)
        assert got.loc[uid, "n"] == len(g) and got.loc[uid, "group"] == series_group(str(uid))
