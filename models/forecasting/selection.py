"""Per-series champion selection: backtest every candidate, forecast each series with its winner.

Why: no single model wins across a fleet. Short, noisy VM traces are best forecast by a smoothed
level or a combination; long cluster traces by a daily/weekly profile or yesterday's values; a
few by Prophet. :class:`ChampionSelector` (registered as ``auto``) runs a rolling-origin
backtest of every candidate (``n_origins`` windows of ``horizon`` steps at the end of each
series), picks per series the candidate with the lowest mean MASE (:func:`pick_champions`: a
series leaves the fleet-wide best candidate only for a win by ``switch_margin``, since a few
origins rank noisily), forecasts each series with its pick and calibrates the intervals on the
pick's own backtest errors (:mod:`models.forecasting.calibration`), scaled by a fleet-wide
factor measured on a held-out origin (:meth:`ChampionSelector.interval_factor`).

Cost is the engineering point. Candidates come in two kinds:

- *cheap* ones have ``forecast_values(values, h, season)`` and run on the whole fleet at once
  as numpy over a right-aligned :class:`~models.forecasting.panel.Panel` (seasonal naive,
  exponential smoothing variants), so backtesting them on a whole fleet is cheap (timings:
  docs/forecasting.md).
- *expensive* ones are ordinary :class:`~models.forecasting.base.Forecaster` s fitted on frames (Prophet,
  LightGBM). They are spent only where they could win: on series with at least
  ``expensive_min_seasons`` seasons of history (Prophet cannot learn a daily profile from less
  than two days), whose best cheap backtest MASE is at least ``screen_mase`` (a cheap model that
  already beats the in-sample seasonal-naive error leaves little to win), at most
  ``expensive_budget`` series (the worst first), only at the last ``expensive_origins``
  origins, where they are compared with the cheap candidates' scores at the same origins, and
  on the last ``expensive_max_seasons`` days of history (Prophet's fit time grows with the
  points; two weeks hold two weekly cycles).

Failures are isolated: a candidate that raises (for the fleet or one series), or returns a
non-finite forecast, is out of the running for that series at that origin and the reason is
kept in ``failures_``; when no candidate scores for a series, or its champion fails at the final
fit, the series is forecast by seasonal naive (``fallback``), recorded in ``fallbacks_``.

After ``fit``: ``choices_`` (one row per series: chosen model, why, its backtest MASE, sMAPE,
coverage and pinball, and every candidate's MASE), ``backtest_`` (one row per series and
candidate), ``failures_`` and ``fallbacks_``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.calibration import ConformalWidths, conformal_widths, cross_origin_scores
from models.forecasting.ensemble import MeanEnsemble
from models.forecasting.panel import Panel, forecast_frame, seasonal_scales, steps_per_day, to_panel

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES: tuple[str, ...] = ("seasonal_naive", "ses", "damped_trend", "mstl", "ensemble", "prophet")
FALLBACK = "seasonal_naive"
CHOICE_COLUMNS: tuple[str, ...] = (
    ID_COL,
    "model",
    "reason",
    "mase",
    "smape",
    "coverage",
    "pinball",
    "n_origins",
)
BACKTEST_COLUMNS: tuple[str, ...] = (ID_COL, "model", "mase", "smape", "coverage", "pinball", "n_origins")
FAILURE_COLUMNS: tuple[str, ...] = (ID_COL, "model", "origin", "reason")


def build_candidate(name: str, season: int, horizon: int) -> Forecaster:
    """The registered forecaster ``name`` as selection runs it, for a daily season of ``season``
    steps and backtests of ``horizon`` steps (its :meth:`~models.forecasting.base.Forecaster.for_selection`);
    an unknown name raises, listing the choices."""
    return FORECASTERS.get(name).for_selection(season, horizon)


def pick_champions(mase: np.ndarray, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per series, the index of the chosen candidate, and whether any candidate scored.

    ``mase`` is (candidates x origins x series), NaN where a candidate was not scored.

    1. Candidates scored at all of a series' origins compete on their mean MASE over them.
       The *fleet default* is the one with the lowest mean over series of its MASE relative to
       the series' mean over those candidates. A series keeps the fleet default unless its own
       best beats the default's mean by the relative ``margin``: with a few origins per series
       the per-series ranking is noisy, and switching only on a clear win keeps that noise out
       (as the registry gate's ``min_improvement`` does for versions). Ties go to the candidate listed first.
    2. A candidate scored at fewer origins (an expensive one, backtested at the last origins
       only) then replaces the choice only if it beats the choice's mean over exactly the
       origins it was scored at, by the same margin.
    """
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be within [0, 1), got {margin}")
    scored = np.isfinite(mase)
    counts = scored.sum(axis=1)  # c x n
    full = (counts == counts.max(axis=0)) & (counts > 0)
    columns = np.arange(mase.shape[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.where(full, np.nanmean(mase, axis=1), np.inf)
        best = np.argmin(score, axis=0)
        has_winner = np.isfinite(score.min(axis=0))
        finite = np.where(np.isfinite(score), score, np.nan)
        relative = finite / np.nanmean(finite, axis=0, keepdims=True)
        fleet_means = np.nanmean(relative, axis=1)
        if margin > 0 and np.isfinite(fleet_means).any():
            default = int(np.nanargmin(fleet_means))
            keep_default = np.isfinite(score[default]) & (
                score[best, columns] >= (1 - margin) * score[default]
            )
            best = np.where(keep_default, default, best)
        for c in range(mase.shape[0]):
            partial = ~full[c] & (counts[c] > 0)
            if not partial.any():
                continue
            shared = scored[c] & scored[best, :, columns].T  # o x n
            mine = np.nanmean(np.where(shared, mase[c], np.nan), axis=0)
            theirs = np.nanmean(np.where(shared, mase[best, :, columns].T, np.nan), axis=0)
            switch = partial & np.isfinite(mine) & (~has_winner | (mine < (1 - margin) * theirs))
            best = np.where(switch, c, best)
            has_winner |= switch
    return best, has_winner


class PanelModel(Protocol):
    """A cheap candidate: point forecasts for a whole right-aligned panel as one array call."""

    def forecast_values(self, values: np.ndarray, h: int, season: int) -> np.ndarray: ...


def is_cheap(model: Forecaster) -> bool:
    """Whether ``model`` forecasts a whole panel as arrays (``forecast_values``)."""
    return callable(getattr(model, "forecast_values", None))


def _as_panel_model(model: Forecaster) -> PanelModel:
    if not is_cheap(model):
        raise TypeError(f"{model.name} has no forecast_values(values, h, season)")
    return cast(PanelModel, model)


def _champion_errors(errors: dict[str, np.ndarray], names: list[str], choice: np.ndarray) -> np.ndarray:
    """The (series x origins x steps) backtest errors of each series' chosen model (NaN: none)."""
    cube = np.full_like(next(iter(errors.values())), np.nan)
    for name in names:
        rows = choice == name
        cube[rows] = errors[name][rows]
    return cube


@dataclass
class _Backtest:
    """Per candidate: per-origin MASE / sMAPE (candidates x origins x series) and errors."""

    mase: np.ndarray
    smape: np.ndarray
    errors: dict[str, np.ndarray]  # name -> series x origins x steps


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

    def _backtest(self, df: pd.DataFrame) -> _Backtest:
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
                self._score(c, o, forecast, actuals[o], scale, mase, smape, errors[names[c]])
        self._origin_forecasts = {}  # only needed within an origin; keep the fitted model small
        if expensive:
            self._backtest_expensive(df, names, expensive, origins, scales, actuals, mase, smape, errors)
        return _Backtest(mase, smape, errors)

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
                else:
                    forecast = np.asarray(_as_panel_model(model).forecast_values(history, h, self.season_))
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

    @staticmethod
    def _score(
        c: int,
        o: int,
        forecast: np.ndarray,
        actual: np.ndarray,
        scale: np.ndarray,
        mase: np.ndarray,
        smape: np.ndarray,
        errors: np.ndarray,
    ) -> None:
        err = actual - forecast
        errors[:, o, :] = err
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mae = np.nanmean(np.abs(err), axis=1)
            # A flat history has no scale: rank it by MAE relative to its level instead.
            fallback_scale = np.nanmean(np.abs(actual), axis=1) + 1e-9
            safe = np.where(np.isfinite(scale) & (scale > 0), scale, fallback_scale)
            mase[c, o] = mae / safe
            denom = np.abs(actual) + np.abs(forecast)
            ratio = np.where(denom == 0, 0.0, 200 * np.abs(err) / np.where(denom == 0, 1.0, denom))
            smape[c, o] = np.nanmean(np.where(np.isfinite(err), ratio, np.nan), axis=1)

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            best_cheap = (
                np.nanmin(np.nanmean(mase[cheap], axis=1), axis=0)
                if cheap
                else np.full(mase.shape[2], np.inf)
            )
        best_cheap = np.where(np.isfinite(best_cheap), best_cheap, np.inf)
        long_enough = self.panel_.lengths >= p["expensive_min_seasons"] * self.season_ + self.horizon_
        eligible = np.flatnonzero(long_enough & (best_cheap >= p["screen_mase"]))
        eligible = eligible[np.argsort(-best_cheap[eligible], kind="stable")][: p["expensive_budget"]]
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
                self._score(c, o, forecast, actuals[o], scales[o], mase, smape, errors[names[c]])

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
            fc, internal = self._forecast_each(model, train, h, f"{type(exc).__name__}: {exc}")
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

    def _forecast_each(
        self, model: Forecaster, train: pd.DataFrame, h: int, batch_error: str
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        parts, reasons = [], {}
        for uid, series in train.groupby(ID_COL, sort=True, observed=True):
            try:
                parts.append(model.clone().fit(series, freq=self.freq_).predict(h, 80))
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

    def _record_failure(self, ids: pd.Index, name: str, origin: int, reason: str) -> None:
        self.failures_.extend(
            {ID_COL: str(u), "model": name, "origin": origin, "reason": reason} for u in ids
        )

    # -- choose and calibrate ---------------------------------------------------------------------
    def _choose(self, bt: _Backtest) -> None:
        """Per series, the candidate with the lowest mean MASE over the origins all its contenders share."""
        names = list(self.models_)
        scored = np.isfinite(bt.mase)  # c x o x n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_mase, mean_smape = np.nanmean(bt.mase, axis=1), np.nanmean(bt.smape, axis=1)
        best, has_winner = pick_champions(bt.mase, self.params["switch_margin"])
        self.choice_ = np.where(has_winner, np.array(names, dtype=object)[best], FALLBACK)
        self.fallbacks_: dict[str, str] = {
            str(uid): "no candidate could be backtested (history too short or every candidate failed)"
            for uid in self.panel_.ids[~has_winner]
        }
        coverage, pinball = {}, {}
        for name in names:
            coverage[name], pinball[name] = cross_origin_scores(bt.errors[name], 80)
        n_origins = scored.sum(axis=1)
        rows = []
        for c, name in enumerate(names):
            rows.append(
                pd.DataFrame(
                    {
                        ID_COL: self.panel_.ids.astype(str),
                        "model": name,
                        "mase": mean_mase[c],
                        "smape": mean_smape[c],
                        "coverage": coverage[name],
                        "pinball": pinball[name],
                        "n_origins": n_origins[c],
                    }
                )
            )
        self.backtest_ = pd.concat(rows, ignore_index=True)[list(BACKTEST_COLUMNS)]
        chosen = self.backtest_.merge(
            pd.DataFrame({ID_COL: self.panel_.ids.astype(str), "model": self.choice_}),
            on=[ID_COL, "model"],
            how="right",
        )
        chosen.insert(
            2,
            "reason",
            np.where(
                has_winner,
                np.where(
                    best == pick_champions(bt.mase)[0],
                    "lowest backtest MASE",
                    f"fleet default: no candidate beat it by {self.params['switch_margin']:.0%}",
                ),
                "fallback: "
                + np.array([self.fallbacks_.get(str(u), "") for u in self.panel_.ids], dtype=object),
            ),
        )
        wide = self.backtest_.pivot(index=ID_COL, columns="model", values="mase")[names].add_prefix("mase_")
        self.choices_ = chosen[list(CHOICE_COLUMNS)].merge(wide, left_on=ID_COL, right_index=True, how="left")

    def _calibrate(self, bt: _Backtest) -> None:
        """Conformal widths from each series' champion's backtest errors, plus a held-out correction.

        Widths calibrated on the errors of the model a series was *chosen* for are too narrow
        (the choice favours models whose backtest errors happened to be small) and the future
        can be rougher than the backtest. To measure that, the choice and the widths are
        repeated without the last origin, and the fleet-wide factor that brings those widths to
        the wanted coverage on the last origin's errors is kept (see :meth:`interval_factor`).
        """
        names = list(self.models_)
        self.widths_: ConformalWidths = conformal_widths(_champion_errors(bt.errors, names, self.choice_))
        self.holdout_errors_: np.ndarray | None = None
        if self.params["n_origins"] < 2:
            return
        best, has_winner = pick_champions(bt.mase[:, :-1, :], self.params["switch_margin"])
        early_choice = np.asarray(np.where(has_winner, np.array(names, dtype=object)[best], None))
        cube = _champion_errors(bt.errors, names, early_choice)
        self.holdout_widths_ = conformal_widths(cube[:, :-1, :])
        self.holdout_errors_ = cube[:, -1, :]

    def interval_factor(self, level: int) -> float:
        """Fleet-wide width multiplier: the ``level`` quantile of held-out |error| / width (in [0.5, 3]).

        1 when there is no held-out origin to measure it on (``n_origins=1``).
        """
        errors = self.holdout_errors_
        if errors is None or not np.isfinite(errors).any():
            return 1.0
        half = self.holdout_widths_.half_widths(errors.shape[1], level)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(half > 0, np.abs(errors) / half, np.where(np.abs(errors) > 0, np.inf, 0.0))
        ratio = ratio[np.isfinite(errors)]
        factor = float(np.quantile(ratio, level / 100)) if ratio.size else 1.0
        return float(np.clip(factor, 0.5, 3.0)) if np.isfinite(factor) else 3.0

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
            try:
                fits = [model.clone().fit(subset, freq=self.freq_)]
            except Exception as exc:  # noqa: BLE001 - retry series by series
                fits, failed = [], {}
                for uid, series in subset.groupby(ID_COL, sort=True, observed=True):
                    try:
                        fits.append(model.clone().fit(series, freq=self.freq_))
                    except Exception as one:  # noqa: BLE001 - this series falls back
                        failed[str(uid)] = (
                            f"{type(one).__name__}: {one} (fleet fit failed: {type(exc).__name__}: {exc})"
                        )
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
                    yhat[rows] = _as_panel_model(model).forecast_values(
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
        if missing.any():
            naive = build_candidate(FALLBACK, self.season_, self.horizon_)
            yhat[missing] = _as_panel_model(naive).forecast_values(
                self.panel_.values[missing], h, self.season_
            )
        half = self.widths_.half_widths(h, level) * self.interval_factor(level)
        return forecast_frame(self.panel_, yhat, yhat - half, yhat + half)

    def choice_counts(self) -> pd.Series:
        """How many series each model forecasts."""
        self._require_fitted()
        return self.choices_["model"].value_counts()
