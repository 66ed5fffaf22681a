"""Per-series champion selection: backtest every candidate, forecast each series with its winner.

Why: no single model wins across a fleet. Short, noisy VM traces are best forecast by a smoothed
level or a combination; long cluster traces by a daily/weekly profile or yesterday's values; a
few by Prophet where it is offered (not by default). :class:`ChampionSelector` (registered as ``auto``) runs a rolling-origin
backtest of every candidate (``n_origins`` windows of ``horizon`` steps at the end of each
series), picks per series the candidate with the lowest mean MASE (:func:`pick_champions`: a
series leaves the fleet-wide best candidate only for a win by ``switch_margin``, since a few
origins rank noisily), forecasts each series with its pick and calibrates the intervals on the
pick's own backtest errors (:mod:`models.forecasting.calibration`), scaled per lead-time bucket
(first hour, first day, first week) by a fleet-wide factor measured on a held-out origin
(:meth:`ChampionSelector.lead_factors`).

Cost is the engineering point. *Cheap* candidates (:mod:`models.forecasting.selection_candidates`)
are backtested on the whole fleet at once as numpy over a right-aligned panel (timings:
docs/forecasting.md). *Expensive* ones (Prophet, LightGBM) are spent only where they could win:
on series with at least ``expensive_min_seasons`` seasons of history (Prophet cannot learn a
daily profile from less than two days), whose best cheap backtest MASE is at least
``screen_mase`` (a cheap model that already beats the in-sample seasonal-naive error leaves
little to win), at most ``expensive_budget`` series (the worst first), only at the last
``expensive_origins`` origins, where they are compared with the cheap candidates' scores at the
same origins, and on the last ``expensive_max_seasons`` days of history (Prophet's fit time grows
with the points; two weeks hold two weekly cycles).

Failures are isolated: a candidate that raises (for the fleet or one series), or returns a
non-finite forecast, is out of the running for that series at that origin and the reason is
kept in ``failures_``; when no candidate scores for a series, or its champion fails at the final
fit, the series is forecast by seasonal naive (``fallback``), recorded in ``fallbacks_``.

``predict`` adds a ``model_name`` column: the model that made each series' forecast.

After ``fit``: ``choices_`` (one row per series: chosen model, why, its backtest MASE, sMAPE,
coverage and pinball, and every candidate's MASE), ``backtest_`` (one row per series and
candidate), ``failures_`` and ``fallbacks_``.

Scoring, the per-series choice and the calibration's held-out split (pure) live in
:mod:`models.forecasting.selection_scoring`; this module holds the selector's steps.
Longer than 400 lines because those steps (backtest, choose, calibrate, fit the expensive
champions, predict) share the fitted state; what is pure already lives in the two modules above.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.ensemble import MeanEnsemble
from models.forecasting.lead_buckets import step_buckets
from models.forecasting.panel import Panel, forecast_frame, seasonal_scales, steps_per_day, to_panel
from models.forecasting.selection_candidates import (
    DEFAULT_CANDIDATES,
    FALLBACK,
    as_panel_model,
    build_candidate,
    final_point,
    fit_each_series,
    forecast_each_series,
    is_cheap,
    shared_origin_fits,
)
from models.forecasting.selection_scoring import (
    Backtest,
    calibration_split,
    choice_tables,
    fitted_holdouts,
    holdout_lead_factors,
    lead_half_widths,
    pick_champions,
    score_origin,
    screen_expensive,
)

log = logging.getLogger(__name__)


@FORECASTERS.register("auto")
class ChampionSelector(Forecaster):
    """Per-series champion among candidate forecasters, chosen by rolling-origin backtest MASE."""

    name = "auto"

    def __init__(
        self,
        candidates: Sequence[str | Forecaster] = DEFAULT_CANDIDATES,
        horizon: int | None = None,
        n_origins: int = 3,
        season_length: int | None = None,
        screen_mase: float = 1.0,
        expensive_budget: int = 50,
        expensive_origins: int = 1,
        expensive_min_seasons: float = 2.0,
        max_history_seasons: int = 28,
        switch_margin: float = 0.1,
        expensive_max_seasons: int = 14,
    ) -> None:
        if not candidates:
            raise ValueError("candidates must name at least one forecaster")
        if horizon is not None and horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if n_origins < 1 or expensive_origins < 1:
            raise ValueError(
                f"n_origins and expensive_origins must be >= 1, got {n_origins}, {expensive_origins}"
            )
        if season_length is not None and season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        if not 0.0 <= switch_margin < 1.0:
            raise ValueError(f"switch_margin must be within [0, 1), got {switch_margin}")
        if expensive_max_seasons < 1:
            raise ValueError(f"expensive_max_seasons must be >= 1, got {expensive_max_seasons}")
        if expensive_budget < 0:
            raise ValueError(f"expensive_budget must be >= 0, got {expensive_budget}")
        names = [c if isinstance(c, str) else c.name for c in candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique, got {names}")
        for c in candidates:
            if isinstance(c, str):
                FORECASTERS.get(c)  # an unknown name raises, listing the choices
        super().__init__(
            candidates=tuple(candidates),
            horizon=horizon,
            n_origins=n_origins,
            season_length=season_length,
            screen_mase=screen_mase,
            expensive_budget=expensive_budget,
            expensive_origins=expensive_origins,
            expensive_min_seasons=expensive_min_seasons,
            max_history_seasons=max_history_seasons,
            switch_margin=switch_margin,
            expensive_max_seasons=expensive_max_seasons,
        )

    def serving_distributions(self) -> tuple[str, ...]:
        """Those of every candidate: any of them may serve some series."""
        built = [FORECASTERS.get(c)() if isinstance(c, str) else c for c in self.params["candidates"]]
        return tuple(sorted({d for model in built for d in model.serving_distributions()}))

    # -- fit -----------------------------------------------------------------------------------
    def _fit(self, df: pd.DataFrame) -> None:
        p = self.params
        self.season_ = int(p["season_length"] or steps_per_day(self.freq_))
        self.horizon_ = int(p["horizon"] or self.season_)
        self.models_ = {
            (c if isinstance(c, str) else c.name): (
                build_candidate(c, self.season_, self.horizon_) if isinstance(c, str) else c.clone()
            )
            for c in p["candidates"]
        }
        panel = to_panel(df, self.freq_)
        keep = min(panel.values.shape[1], max(p["max_history_seasons"] * self.season_, 4 * self.horizon_))
        # History older than a few weeks hardly changes these models' forecasts; it costs time.
        self.panel_ = Panel(panel.ids, panel.values[:, -keep:], panel.last_ds, self.freq_)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq_))
        df = df[df[TIME_COL] > df[ID_COL].map(panel.last_ds) - keep * step]
        self.failures_: list[dict[str, Any]] = []
        bt = self._backtest(df)
        self._choose(bt)
        self._calibrate(bt)
        self._fit_expensive_champions(df)

    def _origins(self) -> list[int]:
        """Offsets (steps held back after the test window) of each origin, oldest first."""
        return [k * self.horizon_ for k in range(self.params["n_origins"] - 1, -1, -1)]

    def _backtest(self, df: pd.DataFrame) -> Backtest:
        names = list(self.models_)
        values, h = self.panel_.values, self.horizon_
        n, width = values.shape
        origins = self._origins()
        mase = np.full((len(names), len(origins), n), np.nan)
        smape = np.full_like(mase, np.nan)
        errors = {name: np.full((n, len(origins), h), np.nan) for name in names}
        cheap = [i for i, name in enumerate(names) if is_cheap(self.models_[name])]
        expensive = [i for i in range(len(names)) if i not in cheap]
        scales, actuals = [], []
        # Candidates that fit every origin in one pass (exponential smoothing) do so up front, and
        # the final fit on the whole history comes with it (``_predict`` uses it).
        ends = [width - offset - h for offset in origins if width - offset - h >= 2]
        cheap_models = {names[c]: self.models_[names[c]] for c in cheap}
        self._origin_runs = shared_origin_fits(cheap_models, values, [*ends, width], self.season_)
        self._final_fits = {name: fit for (name, end), fit in self._origin_runs.items() if end == width}
        for o, offset in enumerate(origins):
            end = width - offset - h
            if end < 2:
                scales.append(np.full(n, np.nan))
                actuals.append(np.full((n, h), np.nan))
                continue
            history, actual = values[:, :end], values[:, end : end + h]
            scale = seasonal_scales(history, self.season_)
            # Rows needing at least two observed points and a full test window to be scored.
            usable = (np.isfinite(history).sum(axis=1) >= 2) & np.isfinite(actual).any(axis=1)
            scales.append(scale)
            actuals.append(np.where(usable[:, None], actual, np.nan))
            self._origin_forecasts: dict[str, np.ndarray] = {}
            for c in cheap:
                forecast = self._cheap_forecast(names[c], history, o)
                self._origin_forecasts[names[c]] = forecast
                score_origin(c, o, forecast, actuals[o], scale, mase, smape, errors[names[c]])
        self._origin_forecasts, self._origin_runs = {}, {}  # only needed here; keep the fitted model small
        if expensive:
            self._backtest_expensive(df, names, expensive, origins, scales, actuals, mase, smape, errors)
        return Backtest(mase, smape, errors)

    def _cheap_forecast(self, name: str, history: np.ndarray, origin: int) -> np.ndarray:
        h = self.horizon_
        model = self.models_[name]
        members = getattr(model, "params", {}).get("members", ()) if isinstance(model, MeanEnsemble) else ()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if members and all(m in self._origin_forecasts for m in members):
                    # The members were backtested already at this origin: average, do not refit.
                    forecast = np.mean([self._origin_forecasts[m] for m in members], axis=0)
                elif (name, history.shape[1]) in self._origin_runs:
                    forecast = self._origin_runs[(name, history.shape[1])].point(h)
                else:
                    forecast = np.asarray(as_panel_model(model).forecast_values(history, h, self.season_))
            if forecast.shape != (history.shape[0], h):
                raise ValueError(f"forecast has shape {forecast.shape}, expected {(history.shape[0], h)}")
        except Exception as exc:  # noqa: BLE001 - isolate: this candidate is out at this origin
            self._record_failure(self.panel_.ids, name, origin, f"{type(exc).__name__}: {exc}")
            return np.full((history.shape[0], h), np.nan)
        bad = ~np.isfinite(forecast).all(axis=1) & np.isfinite(history).any(axis=1)
        if bad.any():
            self._record_failure(self.panel_.ids[bad], name, origin, "non-finite forecast")
            forecast[bad] = np.nan
        return forecast

    def _backtest_expensive(
        self,
        df: pd.DataFrame,
        names: list[str],
        expensive: list[int],
        origins: list[int],
        scales: list[np.ndarray],
        actuals: list[np.ndarray],
        mase: np.ndarray,
        smape: np.ndarray,
        errors: dict[str, np.ndarray],
    ) -> None:
        """Backtest expensive candidates on the screened series at the last origins only."""
        p = self.params
        cheap = [i for i in range(len(names)) if i not in expensive]
        eligible = screen_expensive(
            mase[cheap],
            self.panel_.lengths,
            min_length=p["expensive_min_seasons"] * self.season_ + self.horizon_,
            screen_mase=p["screen_mase"],
            budget=p["expensive_budget"],
        )
        self.screened_ = self.panel_.ids[np.sort(eligible)]
        if eligible.size == 0:
            return
        ids = self.panel_.ids[eligible]
        subset = df[df[ID_COL].isin(ids)]
        from_end = subset.groupby(ID_COL, sort=False, observed=True).cumcount(ascending=False).to_numpy()
        rows = pd.Series(np.arange(len(self.panel_.ids)), index=self.panel_.ids)
        last = len(origins) - min(p["expensive_origins"], len(origins))
        cap = p["expensive_max_seasons"] * self.season_
        for o in range(last, len(origins)):
            start = origins[o] + self.horizon_
            train = subset[(from_end >= start) & (from_end < start + cap)]
            for c in expensive:
                forecast = self._expensive_forecast(names[c], train, o, rows)
                score_origin(c, o, forecast, actuals[o], scales[o], mase, smape, errors[names[c]])

    def _expensive_forecast(self, name: str, train: pd.DataFrame, origin: int, rows: pd.Series) -> np.ndarray:
        """Forecast ``train``'s series with a fresh clone; failures (batch or per series) are recorded."""
        h, n = self.horizon_, len(self.panel_.ids)
        out = np.full((n, h), np.nan)
        model = self.models_[name]
        try:
            fitted = model.clone().fit(train, freq=self.freq_)
            fc = fitted.predict(h, 80)
            internal = dict(getattr(fitted, "fallbacks_", {}) or {})
        except Exception as exc:  # noqa: BLE001 - isolate: retry series by series
            fc, internal = forecast_each_series(model, train, h, self.freq_, f"{type(exc).__name__}: {exc}")
        for uid, reason in internal.items():
            self._record_failure(pd.Index([uid]), name, origin, reason)
        fc = fc[~fc[ID_COL].astype(str).isin(internal)]
        if fc.empty:
            return out
        fc = fc.assign(step=fc.groupby(ID_COL, sort=False, observed=True).cumcount())
        fc = fc[fc["step"] < h]
        out[rows.loc[fc[ID_COL].astype(str)].to_numpy(), fc["step"].to_numpy()] = fc["yhat"].to_numpy()
        tried = rows.loc[train[ID_COL].astype(str).unique()].to_numpy()
        bad = tried[~np.isfinite(out[tried]).all(axis=1)]
        bad = bad[[self.panel_.ids[b] not in internal for b in bad]]
        if bad.size:
            self._record_failure(self.panel_.ids[bad], name, origin, "non-finite or missing forecast")
            out[bad] = np.nan
        return out

    def _record_failure(self, ids: pd.Index, name: str, origin: int, reason: str) -> None:
        self.failures_.extend(
            {ID_COL: str(u), "model": name, "origin": origin, "reason": reason} for u in ids
        )

    # -- choose and calibrate ---------------------------------------------------------------------
    def _choose(self, bt: Backtest) -> None:
        """Per series, the candidate with the lowest mean MASE over the origins all its contenders share."""
        names = list(self.models_)
        best, has_winner = pick_champions(bt.mase, self.params["switch_margin"])
        self.choice_ = np.where(has_winner, np.array(names, dtype=object)[best], FALLBACK)
        self.fallbacks_: dict[str, str] = {
            str(uid): "no candidate could be backtested (history too short or every candidate failed)"
            for uid in self.panel_.ids[~has_winner]
        }
        self.backtest_, self.choices_ = choice_tables(
            bt,
            names,
            self.panel_.ids,
            self.choice_,
            best,
            has_winner,
            self.fallbacks_,
            self.params["switch_margin"],
        )

    def _calibrate(self, bt: Backtest) -> None:
        """Conformal widths per lead bucket from each series' champion's backtest errors, and the
        held-out origin that measures how much too narrow they are (see :func:`calibration_split`)."""
        self.widths_, self.holdouts_ = calibration_split(
            bt, list(self.models_), self.choice_, self.params["switch_margin"],
            step_buckets(self.horizon_, self.freq_),
        )

    def lead_factors(self, level: int) -> dict[str, float]:
        """Per lead bucket measured, the fleet-wide width multiplier: the conformal ``level``
        quantile of held-out |error| / width there (in [1, 3]). Empty with ``n_origins=1``."""
        return holdout_lead_factors(fitted_holdouts(self), step_buckets(self.horizon_, self.freq_), level)

    def _fit_expensive_champions(self, df: pd.DataFrame) -> None:
        """Refit each expensive champion on the full history of the series that chose it.

        When the fit over all of them raises, each series is fitted alone, so one bad series
        falls back to seasonal naive without taking the others with it.
        """
        self.expensive_fits_: dict[str, list[Forecaster]] = {}
        for name, model in self.models_.items():
            chosen = self.panel_.ids[self.choice_ == name]
            if is_cheap(model) or chosen.empty:
                continue
            subset = df[df[ID_COL].isin(chosen)]
            cap = self.params["expensive_max_seasons"] * self.season_
            subset = subset[subset.groupby(ID_COL, sort=False, observed=True).cumcount(ascending=False) < cap]
            fits, failed = fit_each_series(model, subset, self.freq_)
            for uid, reason in failed.items():
                self._fall_back(pd.Index([uid]), f"{name} failed at the final fit: {reason}")
            self.expensive_fits_[name] = fits
            internal = {uid for fit in fits for uid in (getattr(fit, "fallbacks_", {}) or {})}
            if internal:
                self._fall_back(pd.Index(sorted(internal)), f"{name} fell back internally at the final fit")

    def _fall_back(self, ids: pd.Index, reason: str) -> None:
        mask = self.panel_.ids.isin(ids)
        self.choice_ = np.where(mask, FALLBACK, self.choice_)
        for uid in ids:
            self.fallbacks_[str(uid)] = reason
        self.choices_.loc[self.choices_[ID_COL].isin(ids.astype(str)), ["model", "reason"]] = [
            FALLBACK,
            f"fallback: {reason}",
        ]
        log.warning("auto: %d series fell back to %s: %s", len(ids), FALLBACK, reason)

    # -- predict ---------------------------------------------------------------------------------
    def _predict(self, h: int, level: int) -> pd.DataFrame:
        n = len(self.panel_.ids)
        yhat = np.full((n, h), np.nan)
        for name in dict.fromkeys(self.choice_.tolist()):
            rows = self.choice_ == name
            model = self.models_.get(name) or build_candidate(name, self.season_, self.horizon_)
            if is_cheap(model):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cached = final_point(model, name, getattr(self, "_final_fits", {}), self.models_, rows, h)
                    yhat[rows] = cached if cached is not None else as_panel_model(model).forecast_values(
                        self.panel_.values[rows], h, self.season_
                    )
            else:
                fc = pd.concat(
                    [fit.predict(h, level) for fit in self.expensive_fits_[name]], ignore_index=True
                )
                wide = fc.assign(step=fc.groupby(ID_COL, sort=False, observed=True).cumcount()).pivot(
                    index=ID_COL, columns="step", values="yhat"
                )
                yhat[rows] = wide.reindex(self.panel_.ids[rows].astype(str)).to_numpy()
        # Anything still missing (a model returning NaN for a series) gets seasonal naive.
        missing = ~np.isfinite(yhat).all(axis=1)
        made_by = np.where(missing, FALLBACK, self.choice_)
        if missing.any():
            naive = build_candidate(FALLBACK, self.season_, self.horizon_)
            yhat[missing] = as_panel_model(naive).forecast_values(
                self.panel_.values[missing], h, self.season_
            )
        half = lead_half_widths(self.widths_, fitted_holdouts(self), self.horizon_, self.freq_, h, level)
        out = forecast_frame(self.panel_, yhat, yhat - half, yhat + half)
        # Which model made each series (h rows each, in panel order): the store keeps it per row.
        return out.assign(model_name=np.repeat(made_by.astype(str), h))

    def __getstate__(self) -> dict[str, Any]:
        # The final fits only spare ``_predict`` a refit; a pickled model refits instead of carrying them.
        return {k: v for k, v in self.__dict__.items() if k != "_final_fits"}

    def choice_counts(self) -> pd.Series:
        """How many series each model forecasts."""
        self._require_fitted()
        return self.choices_["model"].value_counts()
