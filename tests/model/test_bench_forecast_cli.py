"""``foresight bench forecast`` and ``forecast-score`` end to end on a small generated file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from foresight.cli import app

START = pd.Timestamp("2025-01-06", tz="UTC")


def write_fleet(path: Path, n_series: int = 4, points: int = 300) -> pd.DataFrame:
    """Five-minute series of different lengths (one ends earlier), written as a gzipped CSV."""
    rng = np.random.default_rng(0)
    parts = []
    for i in range(n_series):
        n = points - 7 * i
        t = np.arange(n)
        y = 40 + 10 * np.sin(2 * np.pi * t / 72) + rng.normal(0, 1, n)
        ds = pd.date_range(START, periods=n, freq="5min")
        parts.append(
            pd.DataFrame({"unique_id": f"gcd:vm_{i}:cpu", "ds": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "y": y})
        )
    df = pd.concat(parts, ignore_index=True)
    df.to_csv(path, index=False)
    return df


def test_bench_forecast_writes_h_rows_per_series_with_the_exact_columns(tmp_path: Path) -> None:
    data, out = tmp_path / "train.csv.gz", tmp_path / "forecasts.csv"
    df = write_fleet(data)
    result = CliRunner().invoke(
        app, ["bench", "forecast", "--data", str(data), "--horizon", "36", "--level", "80", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wall time" in result.output and "peak resident memory" in result.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert fc.groupby("unique_id").size().to_dict() == dict.fromkeys(df["unique_id"].unique(), 36)
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    last = pd.to_datetime(df.groupby("unique_id")["ds"].max(), utc=True)
    first = pd.to_datetime(fc.groupby("unique_id")["ds"].min(), utc=True)
    assert ((first - last) == pd.Timedelta(minutes=5)).all()
    assert fc["ds"].str.endswith("Z").all()


def test_bench_forecast_names_a_bad_input_file(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    pd.DataFrame({"series": ["a"], "ds": ["2025-01-06T00:00:00Z"], "y": [1.0]}).to_csv(data, index=False)
    result = CliRunner().invoke(
        app, ["bench", "forecast", "--data", str(data), "--horizon", "4", "--out", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 1 and "unique_id" in result.output


def test_bench_forecast_score_compares_methods_in_one_run(tmp_path: Path) -> None:
    data, scores = tmp_path / "train.csv", tmp_path / "scores.csv"
    write_fleet(data, n_series=3)
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "forecast-score",
            "--data",
            str(data),
            "--methods",
            "foresight,seasonal_naive",
            "--per-series",
            str(scores),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "foresight" in result.output and "seasonal_naive" in result.output
    per_series = pd.read_csv(scores)
    assert per_series.groupby("method").size().to_dict() == {"foresight": 3, "seasonal_naive": 3}
    assert set(per_series["n"]) == {48}


def test_forecast_score_scores_a_forecast_file_against_held_out_actuals(tmp_path: Path) -> None:
    from bench.forecast import score_file

    rng = np.random.default_rng(1)
    t = np.arange(4 * 288)  # four days at five minutes, a daily shape
    df = pd.concat([pd.DataFrame({"unique_id": f"vm_{i}", "ds": pd.date_range(START, periods=t.size, freq="5min"),
                                  "y": 50 + 20 * np.sin(2 * np.pi * t / 288 + i) + rng.normal(0, 2, t.size)})
                    for i in range(3)], ignore_index=True)
    df["ds"] = df["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ds = pd.to_datetime(df["ds"], utc=True)
    last = ds.groupby(df["unique_id"]).transform("max")
    held = ds > last - pd.Timedelta(minutes=5 * 48)  # the protocol's h = 48 below 2,016 points
    train, actuals = tmp_path / "train.csv", tmp_path / "actuals.csv"
    df[~held].to_csv(train, index=False)
    df[held].to_csv(actuals, index=False)
    out = tmp_path / "forecasts.csv"
    runner = CliRunner()
    made = runner.invoke(app, ["bench", "forecast", "--data", str(train), "--horizon", "48", "--out", str(out)])
    assert made.exit_code == 0, made.output
    scored = runner.invoke(app, ["bench", "forecast-score", "--data", str(train), "--forecasts", str(out),
                                 "--actuals", str(actuals), "--per-series", str(tmp_path / "per_series.csv")])
    assert scored.exit_code == 0, scored.output
    summary, per_series = score_file(train, actuals, out)
    assert f"mean MASE {summary['mase']:.3f}" in scored.output
    assert f"by lead: 1h: coverage {summary['coverage_lead_1h']:.3f}" in " ".join(scored.output.split())
    assert len(per_series) == df["unique_id"].nunique() and 0.5 < summary["coverage"] <= 1.0
    flat = pd.read_csv(out).assign(yhat=50.0, yhat_lower=30.0, yhat_upper=70.0)  # the daily mean, no shape
    flat.to_csv(tmp_path / "flat.csv", index=False)
    assert summary["mase"] < score_file(train, actuals, tmp_path / "flat.csv")[0]["mase"], \
        "the daily shape is forecast better than a flat line"

    broken = pd.read_csv(out).iloc[5:]  # a forecast missing held-out points is refused, not scored low
    broken.to_csv(tmp_path / "broken.csv", index=False)
    refused = runner.invoke(app, ["bench", "forecast-score", "--data", str(train), "--forecasts",
                                  str(tmp_path / "broken.csv"), "--actuals", str(actuals)])
    assert refused.exit_code == 1 and "no finite forecast" in refused.output
