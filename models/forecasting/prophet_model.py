"""Prophet, one model per series, with per-series fallback to seasonal naive.

Prophet fixes ``interval_width`` when a model is built, but Foresight asks for the interval
level at ``predict`` time. Instead of refitting, ``predict`` draws ``uncertainty_samples``
posterior-predictive paths per series (trend-change and observation-noise uncertainty, as
Prophet's own intervals do) and takes their central ``level`` % quantiles; the point forecast is
Prophet's deterministic ``yhat``. Draws are seeded, so forecasts are reproducible. ``uncertainty_samples=0`` skips the draws and
returns point forecasts with zero-width intervals, for callers that calibrate intervals
themselves (the champion selector); it also spares the sampling's cost.

A series Prophet cannot fit (too short, degenerate) does not stop the batch: it is forecast by
:class:`SeasonalNaive` instead and recorded in ``fallbacks_`` (unique_id -> error).

``holidays`` (records ``holiday, ds, lower_window, upper_window``, see :func:`event_holidays`)
are Prophet's holiday regressors: known calendar events (promotions, sales, public holidays)
whose effect each series learns from the past occurrences and applies to the future ones.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd

from features.calendar import future_grid
from foresight.schemas import ID_COL, TARGET_COL, TIME_COL
from foresight.timeutil import utc_timestamp
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.seasonal_naive import FORECAST_COLUMNS, SeasonalNaive

log = logging.getLogger(__name__)


def _import_prophet() -> tuple[Any, Any]:
    """Prophet and a context manager silencing cmdstanpy; says what to install when missing."""
    # Prophet logs "Importing plotly failed" (plots only, irrelevant here) at import.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    try:
        import cmdstanpy  # lazy: Prophet takes ~1 s
        from prophet import Prophet  # lazy: Prophet takes ~1 s
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the 'prophet' forecaster needs the prophet package: pip install 'prophet>=1.1.5'"
        ) from exc
    return Prophet, cmdstanpy.disable_logging


@FORECASTERS.register("prophet")
class ProphetForecaster(Forecaster):
    """One Prophet model per series; level-agnostic sampled intervals; seasonal-naive fallback."""

    name = "prophet"
    pip_extras = ("prophet",)

    def __init__(
        self,
        daily_seasonality: bool = True,
        weekly_seasonality: bool = True,
        yearly_seasonality: bool = False,
        changepoint_prior_scale: float = 0.05,
        seasonality_mode: str = "additive",
        uncertainty_samples: int = 200,
        fallback_season_length: int = 24,
        seed: int = 0,
        holidays: list[dict[str, Any]] | None = None,
    ) -> None:
        if holidays:
            missing = [k for k in ("holiday", "ds") if any(k not in h for h in holidays)]
            if missing:
                raise ValueError(f"every holiday needs 'holiday' and 'ds'; missing {sorted(set(missing))}")
        if uncertainty_samples != 0 and uncertainty_samples < 10:
            raise ValueError(
                f"uncertainty_samples must be 0 (point forecasts only) or >= 10 to estimate quantiles, "
                f"got {uncertainty_samples}"
            )
        super().__init__(
            daily_seasonality=daily_seasonality,
            weekly_seasonality=weekly_seasonality,
            yearly_seasonality=yearly_seasonality,
            changepoint_prior_scale=changepoint_prior_scale,
            seasonality_mode=seasonality_mode,
            uncertainty_samples=uncertainty_samples,
            fallback_season_length=fallback_season_length,
            seed=seed,
            holidays=list(holidays) if holidays else None,
        )

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        """Point forecasts only (the selector calibrates intervals on backtest errors)."""
        return cls(uncertainty_samples=0, fallback_season_length=season_length)

    def _fit(self, df: pd.DataFrame) -> None:
        Prophet, quiet_stan = _import_prophet()
        options = {k: v for k, v in self.params.items() if k not in ("fallback_season_length", "seed", "holidays")}
        if self.params["holidays"]:
            options["holidays"] = pd.DataFrame(self.params["holidays"]).assign(
                ds=lambda h: pd.to_datetime(h["ds"], utc=True).dt.tz_convert(None).dt.normalize())
        self.models_: dict[str, Any] = {}
        self.fallbacks_: dict[str, str] = {}
        self.last_ds_ = df.groupby(ID_COL, sort=True, observed=True)[TIME_COL].max()
        # cmdstanpy logs two INFO lines per optimisation: noise across hundreds of series.
        with quiet_stan():
            for uid, series in df.groupby(ID_COL, sort=True, observed=True):
                frame = pd.DataFrame({"ds": series[TIME_COL].dt.tz_convert(None), "y": series[TARGET_COL]})
                try:
                    self.models_[str(uid)] = Prophet(**options).fit(frame)
                except Exception as exc:  # noqa: BLE001 - any per-series failure falls back
                    self.fallbacks_[str(uid)] = f"{type(exc).__name__}: {exc}"
        self.fallback_model_: SeasonalNaive | None = None
        if self.fallbacks_:
            log.warning(
                "prophet: %d series fell back to seasonal naive: %s", len(self.fallbacks_), self.fallbacks_
            )
            failed = df[df[ID_COL].isin(list(self.fallbacks_))]
            naive = SeasonalNaive(self.params["fallback_season_length"])
            self.fallback_model_ = naive.fit(failed, freq=self.freq_)

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        parts = [self._predict_series(uid, model, h, level) for uid, model in self.models_.items()]
        if self.fallback_model_ is not None:
            parts.append(self.fallback_model_.predict(h, level))
        out = pd.concat(parts, ignore_index=True)
        out = out.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)
        return out[list(FORECAST_COLUMNS)]

    def _predict_series(self, uid: str, model: Any, h: int, level: int) -> pd.DataFrame:
        """Point forecast and sampled central ``level`` % interval for one series."""
        out = future_grid(self.last_ds_.loc[[uid]], h, self.freq_)
        future = pd.DataFrame({"ds": out[TIME_COL].dt.tz_convert(None)})
        samples_wanted = model.uncertainty_samples
        model.uncertainty_samples = 0  # the point forecast needs no sampling
        try:
            yhat = model.predict(future)["yhat"].to_numpy()
        finally:
            model.uncertainty_samples = samples_wanted
        out["yhat"] = yhat
        if samples_wanted == 0:  # point forecasts only: the caller calibrates its own intervals
            out["yhat_lower"] = out["yhat_upper"] = yhat
            return out
        draws = self._seeded_draws(model, future)
        alpha = (1 - level / 100) / 2
        lower, upper = np.quantile(draws, [alpha, 1 - alpha], axis=1)
        out["yhat_lower"] = np.minimum(lower, yhat)
        out["yhat_upper"] = np.maximum(upper, yhat)
        return out

    def _seeded_draws(self, model: Any, future: pd.DataFrame) -> np.ndarray:
        """Posterior-predictive paths (h x samples); Prophet samples from numpy's global RNG."""
        state = np.random.get_state()
        np.random.seed(self.params["seed"])
        try:
            return np.asarray(model.predictive_samples(future)["yhat"])
        finally:
            np.random.set_state(state)


def event_holidays(events: list[Any]) -> list[dict[str, Any]]:
    """Prophet holiday records from calendar events (objects or dicts with ``name``, ``start``,
    ``end``): one record per UTC day each event touches, named after the event."""
    records = []
    for event in events:
        get = event.get if isinstance(event, dict) else lambda key, e=event: getattr(e, key)
        start = utc_timestamp(get("start"), f"event {get('name')!r} start")
        end = utc_timestamp(get("end"), f"event {get('name')!r} end")
        if end < start:
            raise ValueError(f"event {get('name')!r} ends ({end}) before it starts ({start})")
        for day in pd.date_range(start.normalize(), end.normalize(), freq="D"):
            records.append({"holiday": str(get("name")), "ds": day.strftime("%Y-%m-%d"),
                            "lower_window": 0, "upper_window": 0})
    return records

