"""The candidates per-series selection (``auto``) chooses among: their names, how each is built, and which are cheap.

A *cheap* candidate forecasts a whole right-aligned panel as one array call
(``forecast_values(values, h, season)``: seasonal naive, exponential smoothing variants); any
other :class:`~models.forecasting.base.Forecaster` is *expensive* and is fitted on frames (Prophet,
LightGBM), so selection spends it only where it could win.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Protocol, cast

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.ensemble import MeanEnsemble

# Prophet is not a default: in selection it is backtested at one origin on the series the cheap
# candidates forecast worst, where it won rarely and cost most of the time (docs/forecasting.md,
# *Speed*); name it in ``candidates`` (the forecast flow's ``forecast.models`` does) to offer it.
DEFAULT_CANDIDATES: tuple[str, ...] = ("seasonal_naive", "ses", "damped_trend", "mstl", "ensemble")
FALLBACK = "seasonal_naive"


def build_candidate(name: str, season: int, horizon: int) -> Forecaster:
    """The registered forecaster ``name`` as selection runs it, for a daily season of ``season``
    steps and backtests of ``horizon`` steps (its :meth:`~models.forecasting.base.Forecaster.for_selection`);
    an unknown name raises, listing the choices."""
    return FORECASTERS.get(name).for_selection(season, horizon)


class PanelModel(Protocol):
    """A cheap candidate: point forecasts for a whole right-aligned panel as one array call."""

    def forecast_values(self, values: np.ndarray, h: int, season: int) -> np.ndarray: ...


def is_cheap(model: Forecaster) -> bool:
    """Whether ``model`` forecasts a whole panel as arrays (``forecast_values``)."""
    return callable(getattr(model, "forecast_values", None))


def as_panel_model(model: Forecaster) -> PanelModel:
    if not is_cheap(model):
        raise TypeError(f"{model.name} has no forecast_values(values, h, season)")
    return cast(PanelModel, model)


class OriginFit(Protocol):
    """A cheap candidate's fit at one history end: its point forecasts for any horizon, by row."""

    def point(self, h: int) -> np.ndarray: ...

    def rows(self, rows: np.ndarray) -> OriginFit: ...


def shared_origin_fits(
    models: Mapping[str, Forecaster], values: np.ndarray, ends: Sequence[int], season: int
) -> dict[tuple[str, int], OriginFit]:
    """(name, history end) -> fit on ``values[:, :end]``, for the models that fit every backtest
    origin in one pass (``fit_origins``, e.g. exponential smoothing). The others, or any that
    raises here, are left to be forecast origin by origin, where a failure is recorded."""
    out: dict[tuple[str, int], OriginFit] = {}
    for name, model in models.items():
        shared = getattr(model, "fit_origins", None)
        if not ends or shared is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fits = shared(values, ends, season)
        except Exception:  # noqa: BLE001 - retried origin by origin, where the failure is recorded
            continue
        out.update({(name, end): fit for end, fit in zip(ends, fits, strict=True)})
    return out


def final_point(
    model: Forecaster, name: str, fits: Mapping[str, OriginFit], candidates: Mapping[str, Forecaster],
    rows: np.ndarray, h: int,
) -> np.ndarray | None:
    """``model``'s forecast of ``rows`` from the final fits the backtest pass made (an ensemble's,
    the mean of its members' when they are the selector's own ``candidates``); None without them."""
    if name in fits:
        return fits[name].rows(rows).point(h)
    members = model._members() if isinstance(model, MeanEnsemble) else []
    if members and all(
        m.name in fits and type(candidates.get(m.name)) is type(m) and candidates[m.name].get_params() == m.get_params()
        for m in members
    ):
        return np.asarray(np.mean([fits[m.name].rows(rows).point(h) for m in members], axis=0))
    return None


def forecast_each_series(
    model: Forecaster, train: pd.DataFrame, h: int, freq: str, batch_error: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Forecast ``train``'s series one at a time with fresh clones of ``model`` (after a fleet fit
    failed with ``batch_error``); the forecasts, and per series that failed alone, why."""
    parts, reasons = [], {}
    for uid, series in train.groupby(ID_COL, sort=True, observed=True):
        try:
            parts.append(model.clone().fit(series, freq=freq).predict(h, 80))
        except Exception as exc:  # noqa: BLE001 - this series is out for this candidate
            reasons[str(uid)] = f"{type(exc).__name__}: {exc} (fleet fit failed: {batch_error})"
    empty = pd.DataFrame(
        {
            ID_COL: pd.Series(dtype="string"),
            TIME_COL: pd.Series(dtype="datetime64[us, UTC]"),
            "yhat": pd.Series(dtype="float64"),
        }
    )
    return (pd.concat(parts, ignore_index=True) if parts else empty), reasons


def fit_each_series(
    model: Forecaster, train: pd.DataFrame, freq: str
) -> tuple[list[Forecaster], dict[str, str]]:
    """Fit a clone of ``model`` on all of ``train``; when that raises, one clone per series, so one
    bad series does not take the others with it. The fits, and per series that failed alone, why."""
    try:
        return [model.clone().fit(train, freq=freq)], {}
    except Exception as exc:  # noqa: BLE001 - retry series by series
        fits, failed = [], {}
        for uid, series in train.groupby(ID_COL, sort=True, observed=True):
            try:
                fits.append(model.clone().fit(series, freq=freq))
            except Exception as one:  # noqa: BLE001 - this series falls back
                failed[str(uid)] = (
                    f"{type(one).__name__}: {one} (fleet fit failed: {type(exc).__name__}: {exc})"
                )
        return fits, failed
