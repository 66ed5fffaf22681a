"""Exponential smoothing with optional damped trend and daily/weekly seasonal profiles, in numpy.

Why: Prophet fits one Stan model per series (a fraction of a second to seconds each); these
models run every series of a fleet at once as array operations over a right-aligned
:class:`~models.forecasting.panel.Panel`, so a whole rolling-origin backtest of a 1,600-series
fleet costs about a second. They are the cheap candidates of the per-series champion selection
(:mod:`models.forecasting.selection`).

The model (additive, ETS(A,Ad,N) on a deseasonalised series, in the spirit of MSTL):

- seasonal profiles (``seasonal=True``): the daily profile is the per-phase median, over the
  last ``max_cycles`` days, of the deviations from a centred one-day moving average (so a trend
  does not leak into the shape); the weekly profile is estimated the same way on what the
  daily one leaves, from the last 3-4 weeks (two weeks' "shape" is mostly one week's accidents,
  so it needs three). A profile is only used for a series with enough full cycles.
- level and damped trend: ``l = l' + phi b' + alpha e``, ``b = phi b' + beta (l - l')``, run for
  every parameter combination of a small grid at once over the last ``max(500, 4 seasons)``
  steps; each series keeps the combination with the smallest in-sample absolute error at
  ``lead`` steps ahead (default an eighth of a day, 3 hours: capacity forecasts look hours
  ahead, and a one-step criterion favours chasing noise).
- intervals: normal, from the in-sample one-step error spread, widened with the horizon as an
  exponential-smoothing forecast's variance grows (``1 + (k - 1) alpha^2``). The champion
  selector replaces them with intervals calibrated on its backtest errors.

Missing steps (gaps) keep the previous state: the level and damped trend carry forward.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Self

import numpy as np
import pandas as pd

from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.panel import Panel, forecast_frame, steps_per_day, to_panel
from models.forecasting.smoothing_grid import GridRun, run_grid

LEVEL_ALPHAS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)
TREND_ALPHAS: tuple[float, ...] = (0.05, 0.15, 0.3, 0.6)
TREND_BETAS: tuple[float, ...] = (0.01, 0.05, 0.2)
TREND_PHIS: tuple[float, ...] = (0.9, 0.98)
# The level and trend are smoothed over the last max(500, 4 seasons) steps (see fit_smoothing).
MIN_SMOOTHING_STEPS, SMOOTHING_SEASONS = 500, 4
WEEKLY_MIN_CYCLES, WEEKLY_MAX_CYCLES = 3, 4


@dataclass(frozen=True)
class SmoothingState:
    """Per row: the chosen parameters and final state, enough to forecast any horizon."""

    alpha: np.ndarray
    phi: np.ndarray
    level: np.ndarray
    trend: np.ndarray
    sigma: np.ndarray

    def point(self, h: int) -> np.ndarray:
        """Level plus damped trend for steps 1..h (rows x h)."""
        powers = self.phi[:, None] ** np.arange(1, h + 1)[None, :]
        return self.level[:, None] + np.cumsum(powers, axis=1) * self.trend[:, None]


def parameter_grid(trend: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, phi) per combination: level-only, or the damped-trend grid."""
    if not trend:
        alphas = np.array(LEVEL_ALPHAS)
        return alphas, np.zeros_like(alphas), np.ones_like(alphas)
    grid = np.array([(a, b, p) for a in TREND_ALPHAS for b in TREND_BETAS for p in TREND_PHIS])
    return grid[:, 0], grid[:, 1], grid[:, 2]


def fit_smoothing(values: np.ndarray, trend: bool, lead: int, max_steps: int | None = None) -> SmoothingState:
    """Run the smoothing grid over every row of ``values`` (NaN-padded) and keep each row's best.

    "Best" is the smallest mean absolute in-sample error of the forecast made ``lead`` steps
    earlier. Rows too short to score any lead-step forecast keep a middle-of-the-grid setting.
    Only the last ``max_steps`` steps are smoothed when given: the state forgets older data at
    any alpha of the grid, and the loop's cost grows with the steps.
    """
    if max_steps is not None:
        values = values[:, -max_steps:]
    return fit_smoothing_at(values, trend, lead, [values.shape[1]])[0]


def fit_smoothing_at(values: np.ndarray, trend: bool, lead: int, ends: Sequence[int]) -> list[SmoothingState]:
    """``fit_smoothing(values[:, :end], trend, lead)`` for each of ``ends``, from one pass over the columns."""
    if lead < 1:
        raise ValueError(f"lead must be >= 1, got {lead}")
    alpha, beta, phi = parameter_grid(trend)
    return [_best_state(run, alpha, phi) for run in run_grid(values, alpha, beta, phi, lead, ends)]


def _best_state(run: GridRun, alpha: np.ndarray, phi: np.ndarray) -> SmoothingState:
    """Each row's grid point with the smallest lead-step error, and its state."""
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(run.lead_count > 0, run.lead_err / run.lead_count, np.inf)
        sigma = np.sqrt(np.where(run.sq_count > 0, run.sq_err / run.sq_count, np.nan))
    n, combos = score.shape
    default = combos // 2
    best = np.where(np.isfinite(score).any(axis=1), np.argmin(score, axis=1), default)
    rows = np.arange(n)
    return SmoothingState(
        alpha=alpha[best],
        phi=phi[best],
        level=run.level[rows, best],
        trend=run.slope[rows, best],
        sigma=np.nan_to_num(sigma[rows, best], nan=0.0),
    )


def seasonal_profile(values: np.ndarray, period: int, max_cycles: int, min_cycles: int = 2) -> np.ndarray:
    """Per row, the additive profile (rows x period, mean 0) of the last ``max_cycles`` cycles.

    Classical decomposition: each value's deviation from the centred moving average of one
    period (the local level, so a trend or a level shift does not leak into the shape), then
    the per-phase median of the deviations over the cycles. Column ``p`` is the phase ``p``
    steps after a cycle boundary counted back from the last column (the last column has phase
    ``period - 1``). Rows with fewer than ``min_cycles`` full cycles of history get a zero profile.
    """
    n, width = values.shape
    cycles = min(max_cycles, width // period)
    profile = np.zeros((n, period))
    if cycles < max(2, min_cycles):
        return profile
    observed = np.isfinite(values)
    first = np.where(observed.any(axis=1), observed.argmax(axis=1), width)
    enough = width - first >= max(2, min_cycles) * period
    if not enough.any():
        return profile
    flat = values[enough, width - cycles * period :]
    deviation = flat - centred_moving_average(flat, period)
    # Phases never observed (short rows, gaps, the half-periods without a centred average) give
    # all-NaN slices: they become 0 below.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shape = np.nanmedian(deviation.reshape(-1, cycles, period), axis=1)
        shape = shape - np.nanmean(shape, axis=1, keepdims=True)
    profile[enough] = np.nan_to_num(shape, nan=0.0)
    return profile


def centred_moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Per row, the mean of the ``window`` values centred on each column (NaN-aware; NaN near the ends)."""
    rows, width = values.shape
    present = np.isfinite(values)
    sums = np.concatenate([np.zeros((rows, 1)), np.cumsum(np.where(present, values, 0.0), axis=1)], axis=1)
    counts = np.concatenate([np.zeros((rows, 1)), np.cumsum(present, axis=1)], axis=1)
    starts = np.arange(width) - window // 2
    ends = starts + window
    inside = (starts >= 0) & (ends <= width)
    lo, hi = np.clip(starts, 0, width), np.clip(ends, 0, width)
    total, count = sums[:, hi] - sums[:, lo], counts[:, hi] - counts[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inside[None, :] & (count > 0), total / count, np.nan)


def phase_columns(width: int, period: int) -> np.ndarray:
    """The profile column of each of ``width`` right-aligned columns (see :func:`seasonal_profile`)."""
    return (np.arange(width) - width) % period


@dataclass(frozen=True)
class SeasonalSmoothingFit:
    """Profiles (daily, weekly; zero when unused) and the smoothing state of what they leave."""

    periods: tuple[int, ...]
    profiles: tuple[np.ndarray, ...]
    state: SmoothingState

    def rows(self, rows: np.ndarray) -> SeasonalSmoothingFit:
        """The fit of ``rows`` only (a boolean mask or positions): rows are fitted independently."""
        state = SmoothingState(*(getattr(self.state, f)[rows] for f in SmoothingState.__dataclass_fields__))
        return SeasonalSmoothingFit(self.periods, tuple(p[rows] for p in self.profiles), state)

    def point(self, h: int) -> np.ndarray:
        out = self.state.point(h)
        steps = np.arange(h)
        for period, profile in zip(self.periods, self.profiles, strict=True):
            out = out + profile[:, steps % period]
        return out


def fit_seasonal_smoothing(
    values: np.ndarray, season: int, *, trend: bool, seasonal: bool, weekly: bool, lead: int, max_cycles: int
) -> SeasonalSmoothingFit:
    """Remove the daily (and weekly) profile when asked, then fit the smoothing grid."""
    periods, profiles, rest = deseasonalise(values, season, seasonal=seasonal, weekly=weekly, max_cycles=max_cycles)
    return SeasonalSmoothingFit(periods, profiles, fit_smoothing(rest, trend, lead, smoothing_steps(season)))


def smoothing_steps(season: int) -> int:
    """How many of the last steps the level and trend are smoothed over."""
    return max(MIN_SMOOTHING_STEPS, SMOOTHING_SEASONS * season)


def deseasonalise(
    values: np.ndarray, season: int, *, seasonal: bool, weekly: bool, max_cycles: int
) -> tuple[tuple[int, ...], tuple[np.ndarray, ...], np.ndarray]:
    """(periods, profiles, what they leave of ``values``): none when not ``seasonal``."""
    periods: list[int] = []
    profiles: list[np.ndarray] = []
    rest = values
    if seasonal and season > 1:
        # A weekly shape from two weeks is mostly one week's accidents (a promotion, an
        # incident): it takes WEEKLY_MIN_CYCLES weeks, so short histories get the daily one only.
        plan = [(season, max_cycles, 2)] + (
            [(7 * season, WEEKLY_MAX_CYCLES, WEEKLY_MIN_CYCLES)] if weekly else []
        )
        for period, cycles, least in plan:
            profile = seasonal_profile(rest, period, cycles, least)
            rest = rest - profile[:, phase_columns(rest.shape[1], period)]
            periods.append(period)
            profiles.append(profile)
    return tuple(periods), tuple(profiles), rest


def fit_seasonal_smoothing_at(
    values: np.ndarray, ends: Sequence[int], season: int, *, trend: bool, seasonal: bool, weekly: bool,
    lead: int, max_cycles: int,
) -> list[SeasonalSmoothingFit]:
    """``fit_seasonal_smoothing(values[:, :end], ...)`` for each of ``ends`` (the backtest origins),
    with one smoothing pass instead of one per end; the same fits, bit for bit.

    Where no end has a profile and none is cut to :func:`smoothing_steps`, every fit smooths a
    prefix of ``values``, so one pass snapshots them all. Otherwise each end's deseasonalised tail
    is stacked as extra rows, right-aligned (rows are independent and leading NaN steps change
    no state), and smoothed together: the same work, with the per-step overhead paid once.
    """
    steps = smoothing_steps(season)
    parts = [deseasonalise(values[:, :end], season, seasonal=seasonal, weekly=weekly, max_cycles=max_cycles)
             for end in ends]
    if max(ends, default=0) <= steps and not any(p.any() for _, profiles, _ in parts for p in profiles):
        states = fit_smoothing_at(values, trend, lead, ends)
    else:
        tails = [rest[:, -steps:] if rest.shape[1] else rest for _, _, rest in parts]
        width = max(t.shape[1] for t in tails)
        stacked = np.vstack([np.pad(t, ((0, 0), (width - t.shape[1], 0)), constant_values=np.nan) for t in tails])
        both = fit_smoothing(stacked, trend, lead)
        n = values.shape[0]
        states = [SmoothingState(*(getattr(both, f)[k * n:(k + 1) * n] for f in SmoothingState.__dataclass_fields__))
                  for k in range(len(ends))]
    return [SeasonalSmoothingFit(periods, profiles, state)
            for (periods, profiles, _), state in zip(parts, states, strict=True)]


class ExponentialSmoothing(Forecaster):
    """Vectorised exponential smoothing (see the module docstring); variants set the defaults."""

    name = "exponential_smoothing"

    @classmethod
    def for_selection(cls, season_length: int, horizon: int) -> Self:
        return cls(season_length=season_length)

    def __init__(
        self,
        trend: bool = False,
        seasonal: bool = False,
        weekly: bool = True,
        season_length: int | None = None,
        lead: int | None = None,
        max_cycles: int = 7,
    ) -> None:
        if season_length is not None and season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        if lead is not None and lead < 1:
            raise ValueError(f"lead must be >= 1, got {lead}")
        if max_cycles < 2:
            raise ValueError(f"max_cycles must be >= 2 to estimate a profile, got {max_cycles}")
        super().__init__(
            trend=trend,
            seasonal=seasonal,
            weekly=weekly,
            season_length=season_length,
            lead=lead,
            max_cycles=max_cycles,
        )

    def season_for(self, freq: str) -> int:
        """The daily season in steps: the configured one, else a day at ``freq``."""
        return self.params["season_length"] or steps_per_day(freq)

    def lead_for(self, season: int) -> int:
        """Lead of the in-sample criterion: configured, else an eighth of a season (at least 1)."""
        return self.params["lead"] or max(1, season // 8)

    def forecast_values(self, values: np.ndarray, h: int, season: int) -> np.ndarray:
        """Point forecasts (rows x h) for right-aligned, NaN-padded histories: the pure model."""
        return self._fit_values(values, season).point(h)

    def fit_origins(self, values: np.ndarray, ends: Sequence[int], season: int) -> list[SeasonalSmoothingFit]:
        """The fits behind ``forecast_values(values[:, :end], h, season)`` for each of ``ends``, from one
        smoothing pass (:func:`fit_seasonal_smoothing_at`); ``fit.point(h)`` is the forecast."""
        p = self.params
        return fit_seasonal_smoothing_at(values, ends, season, trend=p["trend"], seasonal=p["seasonal"],
                                         weekly=p["weekly"], lead=self.lead_for(season), max_cycles=p["max_cycles"])

    def _fit_values(self, values: np.ndarray, season: int) -> SeasonalSmoothingFit:
        p = self.params
        return fit_seasonal_smoothing(
            values,
            season,
            trend=p["trend"],
            seasonal=p["seasonal"],
            weekly=p["weekly"],
            lead=self.lead_for(season),
            max_cycles=p["max_cycles"],
        )

    def _fit(self, df: pd.DataFrame) -> None:
        self.panel_ = to_panel(df, self.freq_)
        self.fit_ = self._fit_values(self.panel_.values, self.season_for(self.freq_))
        # The values are only needed to fit; keep the ids and timestamps to forecast from.
        self.panel_ = Panel(
            self.panel_.ids, np.empty((len(self.panel_.ids), 0)), self.panel_.last_ds, self.freq_
        )

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        yhat = self.fit_.point(h)
        state = self.fit_.state
        z = NormalDist().inv_cdf(0.5 + level / 200)
        growth = np.sqrt(1 + np.arange(h)[None, :] * state.alpha[:, None] ** 2)
        half = z * state.sigma[:, None] * growth
        return forecast_frame(self.panel_, yhat, yhat - half, yhat + half)


@FORECASTERS.register("ses")
class SimpleExponentialSmoothing(ExponentialSmoothing):
    """Level only: the forecast is flat at the smoothed level (noisy series without shape)."""

    name = "ses"

    def __init__(self, season_length: int | None = None, lead: int | None = None) -> None:
        super().__init__(trend=False, seasonal=False, season_length=season_length, lead=lead)

    def get_params(self) -> dict[str, Any]:
        return {"season_length": self.params["season_length"], "lead": self.params["lead"]}


@FORECASTERS.register("damped_trend")
class DampedTrend(ExponentialSmoothing):
    """Level plus a damped trend (Gardner & McKenzie): steady growth that flattens out."""

    name = "damped_trend"

    def __init__(self, season_length: int | None = None, lead: int | None = None) -> None:
        super().__init__(trend=True, seasonal=False, season_length=season_length, lead=lead)

    def get_params(self) -> dict[str, Any]:
        return {"season_length": self.params["season_length"], "lead": self.params["lead"]}


@FORECASTERS.register("mstl")
class SeasonalSmoothing(ExponentialSmoothing):
    """Daily and weekly profiles plus a smoothed level: the fast seasonal model."""

    name = "mstl"

    def __init__(
        self,
        season_length: int | None = None,
        lead: int | None = None,
        weekly: bool = True,
        trend: bool = False,
        max_cycles: int = 7,
    ) -> None:
        super().__init__(
            trend=trend,
            seasonal=True,
            weekly=weekly,
            season_length=season_length,
            lead=lead,
            max_cycles=max_cycles,
        )

    def get_params(self) -> dict[str, Any]:
        return {k: self.params[k] for k in ("season_length", "lead", "weekly", "trend", "max_cycles")}
