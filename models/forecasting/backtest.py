"""Rolling-origin backtests of a forecaster, with per-series fallback to seasonal naive.

Origins are positions counted from each series' end: the last origin leaves exactly ``h``
points after it, earlier ones step back by ``step`` (default ``h``, so test windows tile without
overlap). At each origin a fresh clone of the model is fitted on the data before the origin and
forecasts ``h`` steps, scored against what happened. A series the model cannot forecast (its fit
or predict raises, it is missing from the output, or its forecast is not finite) is forecast by
:class:`SeasonalNaive` instead, counted and explained in ``BacktestResult.failures``; the run
goes on. Model-internal fallbacks (``fallbacks_``, e.g. Prophet's) are counted the same way.
Every origin's forecast is clipped to its series' feasible range (``models.forecasting.bounds``:
the unit when ``units`` names it, else what that origin's training history rules out), so the
scores are those of the forecast as served. Coverage and pinball loss are also reported per
lead-time bucket (:mod:`models.forecasting.lead_buckets`: first hour, first day, first week).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, validate_telemetry
from models.forecasting.base import Forecaster, infer_freq
from models.forecasting.bounds import clip_forecast, series_bounds
from models.forecasting.lead_buckets import lead_metrics, scores_by_lead
from models.forecasting.metrics import coverage, mase, smape
from models.forecasting.seasonal_naive import FORECAST_COLUMNS, SeasonalNaive

FORECAST_RESULT_COLUMNS: tuple[str, ...] = (
    ID_COL, TIME_COL, "cutoff", TARGET_COL, "yhat", "yhat_lower", "yhat_upper", "model",
)
FAILURE_COLUMNS: tuple[str, ...] = (ID_COL, "cutoff", "reason")


@dataclass
class BacktestResult:
    """What a backtest produced.

    - ``forecasts``: unique_id, ds, cutoff (last training timestamp), y, yhat, yhat_lower,
      yhat_upper, model (the model that produced the row: the one tested or ``seasonal_naive``)
    - ``per_series``: unique_id, mase (mean over origins), smape (0-200), coverage, pinball (mean
      pinball loss of the interval's two bounds as the (1 - level) / 2 and (1 + level) / 2
      quantiles)
    - ``overall``: mase, smape and pinball (means over series, NaN MASE ignored), coverage (over
      all points), level, n_series, n_origins, fallbacks, and per lead bucket present
      ``coverage_lead_<bucket>``, ``pinball_lead_<bucket>``, ``points_lead_<bucket>``
    - ``by_lead``: bucket, n, coverage, pinball (pooled over points; empty buckets absent)
    - ``failures``: unique_id, cutoff, reason for every (series, origin) that fell back
    """

    forecasts: pd.DataFrame
    per_series: pd.DataFrame
    overall: dict[str, float]
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FAILURE_COLUMNS)))
    by_lead: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def fallbacks(self) -> int:
        """(series, origin) forecasts that came from the seasonal-naive fallback."""
        return len(self.failures)


def backtest(
    model: Forecaster,
    df: pd.DataFrame,
    h: int,
    n_origins: int = 3,
    level: int = 80,
    season: int = 24,
    step: int | None = None,
    freq: str | None = None,
    units: Mapping[str, str] | None = None,
) -> BacktestResult:
    """Rolling-origin evaluation of ``model`` on long telemetry ``df`` (MASE, sMAPE, coverage).

    ``season`` is MASE's seasonal period and the fallback's season length; ``freq`` defaults to
    the most common step in ``df`` and is passed to every fit, so all origins share one grid.
    ``units`` (unique_id -> catalogue unit) bounds the forecasts scored; see the module docstring.
    """
    if h < 1 or n_origins < 1:
        raise ValueError(f"h and n_origins must be >= 1, got h={h}, n_origins={n_origins}")
    step = h if step is None else step
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    df = validate_telemetry(df)
    freq = freq or infer_freq(df)
    from_end = df.groupby(ID_COL, sort=False, observed=True).cumcount(ascending=False).to_numpy()
    forecasts, failures, scores = [], [], []
    for offset in (np.arange(n_origins)[::-1] * step).tolist():
        train = df[from_end >= offset + h]
        actual = df[(from_end >= offset) & (from_end < offset + h)]
        if train.empty:
            continue
        fc, failed = _forecast_origin(model, train, h, level, season, freq)
        fc = clip_forecast(fc, series_bounds(train, units))
        cutoff = train.groupby(ID_COL, sort=True, observed=True)[TIME_COL].max().rename("cutoff")
        fc = fc.merge(actual, on=[ID_COL, TIME_COL], how="inner").merge(cutoff, on=ID_COL)
        forecasts.append(fc)
        failures.append(failed.merge(cutoff, on=ID_COL))
        scores.append(_score_origin(fc, train, season))
    if not forecasts or all(f.empty for f in forecasts):
        raise ValueError(
            f"no series has more than h + (n_origins - 1) * step = {h + (n_origins - 1) * step} "
            "points; shorten the horizon or use fewer origins"
        )
    all_fc = pd.concat(forecasts, ignore_index=True)[list(FORECAST_RESULT_COLUMNS)]
    all_failures = pd.concat(failures, ignore_index=True)[list(FAILURE_COLUMNS)]
    per_series = _per_series(pd.concat(scores, ignore_index=True), all_fc, level)
    by_lead = scores_by_lead(
        all_fc[TARGET_COL], all_fc["yhat_lower"], all_fc["yhat_upper"], all_fc[TIME_COL] - all_fc["cutoff"], level
    )
    overall = {
        "mase": float(np.nanmean(per_series["mase"])) if per_series["mase"].notna().any() else float("nan"),
        "smape": float(per_series["smape"].mean()),
        "pinball": float(per_series["pinball"].mean()),
        "coverage": coverage(all_fc[TARGET_COL], all_fc["yhat_lower"], all_fc["yhat_upper"]),
        "level": float(level),
        "n_series": int(per_series[ID_COL].nunique()),
        "n_origins": int(all_fc["cutoff"].nunique()),
        "fallbacks": int(len(all_failures)),
        **lead_metrics(by_lead),
    }
    return BacktestResult(all_fc, per_series, overall, all_failures, by_lead)


def _forecast_origin(
    model: Forecaster, train: pd.DataFrame, h: int, level: int, season: int, freq: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts of every series in ``train`` and the (unique_id, reason) of those that fell back."""
    ids = train[ID_COL].unique()
    reasons: dict[str, str] = {}
    try:
        fitted = model.clone().fit(train, freq=freq)
        fc = fitted.predict(h, level)
        reasons.update(getattr(fitted, "fallbacks_", {}) or {})
    except Exception as exc:  # noqa: BLE001 - isolate: retry series by series
        fc, per_series_reasons = _forecast_each(model, train, h, level, freq, f"{type(exc).__name__}: {exc}")
        reasons.update(per_series_reasons)
    fc = fc[list(FORECAST_COLUMNS)].assign(model=model.name)
    finite = np.isfinite(fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all(axis=1)
    bad = set(fc.loc[~finite, ID_COL].astype(str))
    reasons.update({uid: "non-finite forecast" for uid in bad if uid not in reasons})
    missing = set(map(str, ids)) - set(fc[ID_COL].astype(str)) - set(reasons)
    reasons.update({uid: "missing from the model's forecast" for uid in missing})
    if reasons:
        fc = fc[~fc[ID_COL].astype(str).isin(reasons)]
        subset = train[train[ID_COL].astype(str).isin(reasons)]
        naive = SeasonalNaive(season).fit(subset, freq=freq).predict(h, level)
        naive = naive.assign(model=SeasonalNaive.name)
        fc = naive if fc.empty else pd.concat([fc, naive], ignore_index=True)
    failed = pd.DataFrame({ID_COL: list(reasons), "reason": list(reasons.values())})
    return fc, failed.astype({ID_COL: "string"})


def _forecast_each(
    model: Forecaster, train: pd.DataFrame, h: int, level: int, freq: str, batch_error: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Fit the model on each series alone (after the batch failed); collect per-series errors."""
    parts, reasons = [], {}
    for uid, series in train.groupby(ID_COL, sort=True, observed=True):
        try:
            parts.append(model.clone().fit(series, freq=freq).predict(h, level))
        except Exception as exc:  # noqa: BLE001 - this series falls back
            reasons[str(uid)] = f"{type(exc).__name__}: {exc} (batch fit failed: {batch_error})"
    empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in FORECAST_COLUMNS})
    return (pd.concat(parts, ignore_index=True) if parts else empty), reasons


def _score_origin(fc: pd.DataFrame, train: pd.DataFrame, season: int) -> pd.DataFrame:
    """MASE and sMAPE per series for one origin (MASE scaled by that origin's training data)."""
    by_series = train.groupby(ID_COL, sort=False, observed=True)[TARGET_COL]
    history = {str(uid): values.to_numpy() for uid, values in by_series}
    rows = [
        (uid, mase(g[TARGET_COL], g["yhat"], history[str(uid)], season), smape(g[TARGET_COL], g["yhat"]))
        for uid, g in fc.groupby(ID_COL, sort=True, observed=True)
    ]
    return pd.DataFrame(rows, columns=[ID_COL, "mase", "smape"])


def _per_series(scores: pd.DataFrame, fc: pd.DataFrame, level: int) -> pd.DataFrame:
    """Mean MASE / sMAPE over origins, pooled interval coverage and pinball loss, per series."""
    inside = (fc[TARGET_COL] >= fc["yhat_lower"]) & (fc[TARGET_COL] <= fc["yhat_upper"])
    cov = inside.groupby(fc[ID_COL], observed=True).mean().rename("coverage")
    tau = (1 - level / 100) / 2
    below, above = fc[TARGET_COL] - fc["yhat_lower"], fc[TARGET_COL] - fc["yhat_upper"]
    loss = (np.maximum(tau * below, (tau - 1) * below) + np.maximum((1 - tau) * above, -tau * above)) / 2
    pin = loss.groupby(fc[ID_COL], observed=True).mean().rename("pinball")
    means = scores.groupby(ID_COL, sort=True, observed=True)[["mase", "smape"]].mean()
    return means.join(cov).join(pin).reset_index()[[ID_COL, "mase", "smape", "coverage", "pinball"]]
