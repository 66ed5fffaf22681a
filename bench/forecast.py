"""Capacity-forecast benchmark: fit on long ``unique_id, ds, y`` data, forecast, score by the protocol.

The protocol (shared/data/README.md, capacity-dev): per series hold out the last ``h`` points
(``h = 288`` when the series has at least 2,016 points, else 48), train on the rest, forecast
``h`` steps with an 80 % interval. MASE is scaled by the in-sample MAE of the seasonal-naive
forecast with season 288 (season 1 when the training part has fewer than 576 points); reported
are the mean MASE over series, the mean sMAPE over series and the share of held-out points
inside the interval, and coverage and pinball loss per lead-time bucket (first hour, first day;
:mod:`models.forecasting.lead_buckets`), lead measured from each series' last training point.

Pure functions (:func:`protocol_split`, :func:`score_forecasts`, :func:`summarise`,
:func:`series_group`) are separate from the runners (:func:`forecast_file`, :func:`compare`)
that read files, fit models and time them.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, validate_telemetry
from models.forecasting.base import infer_freq, series_scales
from models.forecasting.bounds import clip_forecast, points_outside, series_bounds
from models.forecasting.lead_buckets import lead_metrics, scores_by_lead
from models.forecasting.panel import steps_per_day
from models.forecasting.prophet_model import ProphetForecaster
from models.forecasting.seasonal_naive import SeasonalNaive
from models.forecasting.selection import ChampionSelector

LONG_SERIES_POINTS = 2016  # a week of 5-minute steps
LONG_HORIZON, SHORT_HORIZON = 288, 48
SCALE_SEASON = 288
SHORT_TRAIN_POINTS = 576  # below two days of training data, MASE uses the one-step naive scale
FORECAST_OUTPUT_COLUMNS: tuple[str, ...] = (ID_COL, TIME_COL, "yhat", "yhat_lower", "yhat_upper")

Forecast = Callable[[pd.DataFrame, int, int], pd.DataFrame]
"""``(train, h, level) -> unique_id, ds, yhat, yhat_lower, yhat_upper`` for h steps per series."""


def read_series(path: str | Path) -> pd.DataFrame:
    """A long ``unique_id, ds, y`` CSV (optionally gzipped) as validated telemetry."""
    frame = pd.read_csv(path)
    missing = [c for c in (ID_COL, TIME_COL, TARGET_COL) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected unique_id, ds, y")
    frame[TIME_COL] = pd.to_datetime(frame[TIME_COL], utc=True)
    frame[TARGET_COL] = pd.to_numeric(frame[TARGET_COL], errors="raise").astype("float64")
    return validate_telemetry(frame)


def protocol_horizon(n_points: int) -> int:
    """Held-out steps for a series of ``n_points``: a day when it has a week of data, else 4 hours."""
    return LONG_HORIZON if n_points >= LONG_SERIES_POINTS else SHORT_HORIZON


def protocol_split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(train, held-out test, horizon per unique_id) following the protocol.

    Series not longer than their horizon cannot be split and raise a ``ValueError`` naming them.
    """
    df = validate_telemetry(df)
    sizes = df.groupby(ID_COL, sort=True, observed=True).size()
    horizons = sizes.map(protocol_horizon).astype("int64")
    too_short = sizes[sizes <= horizons]
    if len(too_short):
        raise ValueError(
            f"{len(too_short)} series are not longer than their horizon, e.g. {too_short.head(3).to_dict()}"
        )
    from_end = df.groupby(ID_COL, sort=False, observed=True).cumcount(ascending=False).to_numpy()
    held_out = from_end < df[ID_COL].map(horizons).to_numpy()
    return df[~held_out].reset_index(drop=True), df[held_out].reset_index(drop=True), horizons


def scale_season(n_train: int) -> int:
    """MASE's seasonal period for a training part of ``n_train`` points."""
    return SCALE_SEASON if n_train >= SHORT_TRAIN_POINTS else 1


def series_group(unique_id: str) -> str:
    """``gcd`` for the short VM traces (``gcd:`` prefix), ``long`` for the longer cluster traces."""
    return "gcd" if str(unique_id).startswith("gcd:") else "long"


def score_forecasts(
    train: pd.DataFrame, test: pd.DataFrame, forecasts: pd.DataFrame, level: int = 80
) -> pd.DataFrame:
    """Per series: mase, smape, coverage, pinball (mean of the two interval quantiles' losses), n.

    Raises when a held-out point has no forecast: a benchmark must not silently score less.
    """
    scored = test.merge(forecasts, on=[ID_COL, TIME_COL], how="left")
    missing = scored["yhat"].isna() | scored["yhat_lower"].isna() | scored["yhat_upper"].isna()
    if missing.any():
        sample = scored.loc[missing, [ID_COL, TIME_COL]].head(3).to_dict("records")
        raise ValueError(f"{int(missing.sum())} held-out points have no finite forecast, e.g. {sample}")
    # Array operations over all series at once (a per-series loop took seconds on 1,600 series).
    scored = scored.sort_values([ID_COL, TIME_COL], kind="stable")
    sizes = scored.groupby(ID_COL, sort=True, observed=True).size()
    ids, n = sizes.index.astype(str), sizes.to_numpy()
    codes = np.repeat(np.arange(len(n)), n)
    train_sizes = train.groupby(ID_COL, sort=True, observed=True).size()
    train_sizes.index = train_sizes.index.astype(str)
    scales = series_scales(train, np.array([scale_season(int(k)) for k in train_sizes.to_numpy()]))
    scale = pd.Series(scales.to_numpy(), index=train_sizes.index).reindex(ids).to_numpy()
    y, yhat = scored[TARGET_COL].to_numpy(dtype="float64"), scored["yhat"].to_numpy(dtype="float64")
    lo, hi = scored["yhat_lower"].to_numpy(dtype="float64"), scored["yhat_upper"].to_numpy(dtype="float64")
    tau = (1 - level / 100) / 2

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=len(n)) / n

    denom = np.abs(y) + np.abs(yhat)
    ratio = np.where(denom == 0.0, 0.0, 200.0 * np.abs(y - yhat) / np.where(denom == 0.0, 1.0, denom))
    below, above = y - lo, y - hi
    loss = (np.maximum(tau * below, (tau - 1) * below) + np.maximum((1 - tau) * above, -tau * above)) / 2
    mae = mean(np.abs(y - yhat))
    with np.errstate(invalid="ignore", divide="ignore"):
        mase = np.where(np.isfinite(scale) & (scale > 0), mae / scale, np.nan)
    return pd.DataFrame({
        ID_COL: list(ids),
        "group": [series_group(u) for u in ids],
        "mase": mase,
        "smape": mean(ratio),
        "coverage": mean(((y >= lo) & (y <= hi)).astype("float64")),
        "pinball": mean(loss),
        "n": n.astype(int),
    })


def score_by_lead(train: pd.DataFrame, test: pd.DataFrame, forecasts: pd.DataFrame, level: int = 80) -> pd.DataFrame:
    """Coverage and pinball loss of the held-out points per lead bucket (lead: time after the
    series' last training point); see :func:`models.forecasting.lead_buckets.scores_by_lead`."""
    scored = test.merge(forecasts, on=[ID_COL, TIME_COL], how="inner")
    cutoff = scored[ID_COL].map(train.groupby(ID_COL, sort=False, observed=True)[TIME_COL].max())
    return scores_by_lead(scored[TARGET_COL], scored["yhat_lower"], scored["yhat_upper"],
                          scored[TIME_COL] - cutoff, level)


def summarise(per_series: pd.DataFrame) -> dict[str, float]:
    """Mean MASE (overall and per group), mean sMAPE, pooled coverage, mean pinball, series count."""
    out = {
        "mase": float(per_series["mase"].mean()),
        "smape": float(per_series["smape"].mean()),
        "coverage": float(np.average(per_series["coverage"], weights=per_series["n"])),
        "pinball": float(per_series["pinball"].mean()),
        "n_series": float(len(per_series)),
    }
    for group, part in per_series.groupby("group", sort=True):
        out[f"mase_{group}"] = float(part["mase"].mean())
        out[f"smape_{group}"] = float(part["smape"].mean())
        out[f"coverage_{group}"] = float(np.average(part["coverage"], weights=part["n"]))
    return out


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- runners ---------------------------------------------------------------------------------------
def backtest_horizon(n_points: int, h: int, n_origins: int = 3) -> int:
    """The selection's backtest window for a series of ``n_points``: ``h`` when the history holds
    ``n_origins`` windows of ``h`` plus two more to train on, else ``h`` halved until it does."""
    hb = h
    while hb > 1 and n_points < (n_origins + 2) * hb:
        hb //= 2
    return max(1, hb)


def forecast_foresight(train: pd.DataFrame, h: int, level: int, **params: Any) -> pd.DataFrame:
    """Foresight's per-series champion selection, fitted on ``train``, ``h`` steps ahead.

    Series are grouped by the backtest window their history allows (:func:`backtest_horizon`),
    so a file mixing day-long and month-long traces backtests each at its own scale instead of
    sending the short ones to the seasonal-naive fallback. The forecast is clipped to what each
    series' history allows (never negative if it never was), as the forecast flow serves it.
    """
    n_origins = int(params.pop("n_origins", 3))
    sizes = train.groupby(ID_COL, sort=True, observed=True).size()
    windows = sizes.map(lambda n: backtest_horizon(int(n), h, n_origins))
    parts = []
    for hb, ids in windows.groupby(windows, sort=True).groups.items():
        subset = train[train[ID_COL].isin(list(ids))]
        model = ChampionSelector(horizon=int(hb), n_origins=n_origins, **params).fit(subset)
        parts.append(model.predict(h, level))
    served = clip_forecast(pd.concat(parts, ignore_index=True), series_bounds(train))
    return served.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)


def forecast_prophet(train: pd.DataFrame, h: int, level: int) -> pd.DataFrame:
    """Prophet alone, one model per series (daily and weekly seasonality), as the reference."""
    freq = infer_freq(train)
    return (
        ProphetForecaster(fallback_season_length=steps_per_day(freq)).fit(train, freq=freq).predict(h, level)
    )


def forecast_seasonal_naive(train: pd.DataFrame, h: int, level: int) -> pd.DataFrame:
    """Seasonal naive with a daily season, the baseline."""
    freq = infer_freq(train)
    return SeasonalNaive(steps_per_day(freq)).fit(train, freq=freq).predict(h, level)


@dataclass
class MethodResult:
    """One method's benchmark: per-series scores, their summary, wall time and peak memory."""

    name: str
    per_series: pd.DataFrame
    summary: dict[str, float]
    seconds: float
    peak_mib: float
    forecasts: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def run_protocol(
    name: str,
    forecast: Forecast,
    train: pd.DataFrame,
    test: pd.DataFrame,
    horizons: pd.Series,
    level: int = 80,
    processes: int = 1,
) -> MethodResult:
    """Fit and forecast each horizon group (series sharing a protocol ``h``) with one method; score it.

    With ``processes`` > 1 the series are dealt round-robin into that many shards, each forecast
    in a worker process (:func:`forecast_in_processes`); every method of a comparison gets the
    same count, so the speed ratio compares like with like.
    Wall time covers everything the method does (its backtests and selection included, and the
    workers' start-up). Peak memory is the process's high-water mark after the method ran
    (methods run in the order called, so compare it with care: it never goes down; workers'
    memory is not in it). The summary's ``outside_bounds`` counts forecast values outside what
    each series' training history allows (``bounds.series_bounds``).
    """
    started = time.perf_counter()
    if processes > 1:
        forecasts = forecast_in_processes(forecast, train, horizons, level, processes)
    else:
        forecasts = forecast_by_horizon(forecast, train, horizons, level)
    seconds = time.perf_counter() - started
    per_series = score_forecasts(train, test, forecasts, level)
    summary = summarise(per_series) | lead_metrics(score_by_lead(train, test, forecasts, level))
    summary |= {"outside_bounds": float(points_outside(forecasts, series_bounds(train)))}
    return MethodResult(name, per_series, summary, seconds, peak_memory_mib(), forecasts)


def forecast_by_horizon(forecast: Forecast, train: pd.DataFrame, horizons: pd.Series, level: int) -> pd.DataFrame:
    """One method's forecasts of every series in ``train``, each horizon group with its own ``h``."""
    parts = []
    for h, ids in horizons.groupby(horizons, sort=True).groups.items():
        subset = train[train[ID_COL].isin(list(ids))]
        if len(subset):
            parts.append(forecast(subset, int(h), level))
    return pd.concat(parts, ignore_index=True)


def forecast_in_processes(
    forecast: Forecast, train: pd.DataFrame, horizons: pd.Series, level: int, processes: int
) -> pd.DataFrame:
    """:func:`forecast_by_horizon` over ``processes`` shards of the series, one worker process each.

    Workers are forked where the platform can (they inherit the imported libraries instead of
    importing them again); the shards are dealt round-robin over the sorted ids so long and
    short series spread evenly.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    ids = np.array(sorted(horizons.index.astype(str)))
    shards = [set(ids[k::processes]) for k in range(processes) if len(ids[k::processes])]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=len(shards), mp_context=context) as pool:
        futures = [
            pool.submit(
                forecast_by_horizon,
                forecast,
                train[train[ID_COL].astype(str).isin(shard)],
                horizons[horizons.index.astype(str).isin(shard)],
                level,
            )
            for shard in shards
        ]
        parts = [f.result() for f in futures]
    return pd.concat(parts, ignore_index=True).sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)


METHODS: dict[str, Forecast] = {
    "foresight": forecast_foresight,
    "prophet": forecast_prophet,
    "seasonal_naive": forecast_seasonal_naive,
}


def compare(
    df: pd.DataFrame, methods: list[str] | None = None, level: int = 80, processes: int = 1
) -> list[MethodResult]:
    """Run every method in ``methods`` (default: all of :data:`METHODS`) on the protocol split of
    ``df``, each in ``processes`` processes."""
    names = methods or list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    train, test, horizons = protocol_split(df)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    return [run_protocol(n, METHODS[n], train, test, horizons, level, processes) for n in names]


def forecast_file(data: str | Path, horizon: int, level: int, out: str | Path) -> tuple[pd.DataFrame, float]:
    """Fit Foresight on every series of ``data``, forecast ``horizon`` steps, write ``out`` (CSV).

    Returns the forecast and the wall time in seconds (reading and writing included).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    started = time.perf_counter()
    train = read_series(data)
    fc = forecast_foresight(train, horizon, level)[list(FORECAST_OUTPUT_COLUMNS)]
    written = fc.assign(**{TIME_COL: fc[TIME_COL].dt.strftime("%Y-%m-%dT%H:%M:%SZ")})
    written.to_csv(out, index=False)
    return fc, time.perf_counter() - started


def score_file(
    train_path: str | Path, actuals_path: str | Path, forecasts_path: str | Path, level: int = 80
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score a forecast file (``unique_id, ds, yhat, yhat_lower, yhat_upper``) against held-out
    actuals with the protocol: MASE scaled by the training part's seasonal-naive error."""
    train, actuals = read_series(train_path), read_series(actuals_path)
    forecasts = pd.read_csv(forecasts_path)
    missing = [c for c in FORECAST_OUTPUT_COLUMNS if c not in forecasts.columns]
    if missing:
        raise ValueError(f"{forecasts_path}: missing column(s) {missing}; expected {list(FORECAST_OUTPUT_COLUMNS)}")
    forecasts[TIME_COL] = pd.to_datetime(forecasts[TIME_COL], utc=True).astype(actuals[TIME_COL].dtype)
    forecasts[ID_COL] = forecasts[ID_COL].astype(str)
    unknown = sorted(set(actuals[ID_COL].astype(str)) - set(train[ID_COL].astype(str)))
    if unknown:
        raise ValueError(f"{len(unknown)} series have actuals but no training history, e.g. {unknown[:3]}")
    actuals = actuals.assign(**{ID_COL: actuals[ID_COL].astype(str)})
    per_series = score_forecasts(train, actuals, forecasts, level)
    train = train.assign(**{ID_COL: train[ID_COL].astype(str)})
    return summarise(per_series) | lead_metrics(score_by_lead(train, actuals, forecasts, level)), per_series

