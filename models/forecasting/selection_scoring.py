"""Scoring in per-series selection (``auto``): each candidate's backtest at each origin, and the per-series choice.

Pure numpy / pandas: :func:`score_origin` fills per-origin MASE and sMAPE, :func:`pick_champions`
chooses per series (a series leaves the fleet-wide best candidate only for a clear win),
:func:`champion_errors` gathers the chosen models' errors for calibration,
:func:`choice_tables` lays the outcome out as the selector's ``backtest_`` and ``choices_``, and
:func:`calibration_split` / :func:`holdout_lead_factors` fit the interval widths per lead bucket
(from :func:`width_choice`'s models) and measure them on a held-out origin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL
from models.forecasting.calibration import (
    ConformalWidths,
    conformal_widths,
    cross_origin_scores,
    factor_steps,
    lead_factors,
)
from models.forecasting.lead_buckets import step_buckets

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


@dataclass
class Backtest:
    """Per candidate: per-origin MASE / sMAPE (candidates x origins x series) and errors."""

    mase: np.ndarray
    smape: np.ndarray
    errors: dict[str, np.ndarray]  # name -> series x origins x steps


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


def champion_errors(errors: dict[str, np.ndarray], names: list[str], choice: np.ndarray) -> np.ndarray:
    """The (series x origins x steps) backtest errors of each series' chosen model (NaN: none)."""
    cube = np.full_like(next(iter(errors.values())), np.nan)
    for name in names:
        rows = choice == name
        cube[rows] = errors[name][rows]
    return cube


def score_origin(
    c: int,
    o: int,
    forecast: np.ndarray,
    actual: np.ndarray,
    scale: np.ndarray,
    mase: np.ndarray,
    smape: np.ndarray,
    errors: np.ndarray,
) -> None:
    """Score candidate ``c``'s ``forecast`` at origin ``o``: its errors, MASE and sMAPE per series, in place."""
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


def choice_tables(
    bt: Backtest,
    names: list[str],
    ids: pd.Index,
    choice: np.ndarray,
    best: np.ndarray,
    has_winner: np.ndarray,
    fallbacks: dict[str, str],
    margin: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selector's ``backtest_`` (one row per series and candidate) and ``choices_`` (one row per
    series: the chosen model, why, its scores, and every candidate's MASE as ``mase_<name>``).

    ``best`` / ``has_winner`` are :func:`pick_champions` with ``margin``; a series whose pick is
    not the plain lowest MASE kept the fleet default.
    """
    scored = np.isfinite(bt.mase)  # c x o x n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_mase, mean_smape = np.nanmean(bt.mase, axis=1), np.nanmean(bt.smape, axis=1)
    coverage, pinball = {}, {}
    for name in names:
        coverage[name], pinball[name] = cross_origin_scores(bt.errors[name], 80)
    n_origins = scored.sum(axis=1)
    rows = []
    for c, name in enumerate(names):
        rows.append(
            pd.DataFrame(
                {
                    ID_COL: ids.astype(str),
                    "model": name,
                    "mase": mean_mase[c],
                    "smape": mean_smape[c],
                    "coverage": coverage[name],
                    "pinball": pinball[name],
                    "n_origins": n_origins[c],
                }
            )
        )
    backtest = pd.concat(rows, ignore_index=True)[list(BACKTEST_COLUMNS)]
    chosen = backtest.merge(
        pd.DataFrame({ID_COL: ids.astype(str), "model": choice}),
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
                f"fleet default: no candidate beat it by {margin:.0%}",
            ),
            "fallback: " + np.array([fallbacks.get(str(u), "") for u in ids], dtype=object),
        ),
    )
    wide = backtest.pivot(index=ID_COL, columns="model", values="mase")[names].add_prefix("mase_")
    choices = chosen[list(CHOICE_COLUMNS)].merge(wide, left_on=ID_COL, right_index=True, how="left")
    return backtest, choices


def screen_expensive(
    cheap_mase: np.ndarray, lengths: np.ndarray, *, min_length: float, screen_mase: float, budget: int
) -> np.ndarray:
    """Row indices of the series an expensive candidate is backtested on, worst cheap score first.

    ``cheap_mase`` is the cheap candidates' (candidates x origins x series) MASE. A series
    qualifies with at least ``min_length`` points and a best cheap mean MASE of at least
    ``screen_mase`` (none scored counts as infinitely bad); at most ``budget`` of them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best_cheap = (
            np.nanmin(np.nanmean(cheap_mase, axis=1), axis=0)
            if cheap_mase.shape[0]
            else np.full(cheap_mase.shape[2], np.inf)
        )
    best_cheap = np.where(np.isfinite(best_cheap), best_cheap, np.inf)
    eligible = np.flatnonzero((lengths >= min_length) & (best_cheap >= screen_mase))
    return eligible[np.argsort(-best_cheap[eligible], kind="stable")][:budget]


@dataclass(frozen=True)
class Holdout:
    """One held-out origin: widths fitted without it (choice included) and its errors (series x steps)."""

    widths: ConformalWidths
    errors: np.ndarray


def width_choice(mase: np.ndarray, names: list[str], choice: np.ndarray, margin: float) -> np.ndarray:
    """The model whose backtest errors set each series' interval widths: its champion, unless the
    champion was backtested at fewer origins than the series' other candidates (an expensive
    one, scored at the last origin only); then the pick among those scored at all of them.

    A champion picked on one origin for doing well there has one origin of errors, all of them
    small by selection, and no held-out origin to correct them: on the simulator such Prophet
    picks held 11-45 % of the next window in their 80 % band.
    """
    counts = np.isfinite(mase).sum(axis=1)  # c x n
    index = {name: c for c, name in enumerate(names)}
    chosen = np.array([index.get(str(name), -1) for name in choice])
    columns = np.arange(mase.shape[2])
    partial = (chosen >= 0) & (counts[np.maximum(chosen, 0), columns] < counts.max(axis=0))
    if not partial.any():
        return choice
    full_only = np.where((counts == counts.max(axis=0))[:, None, :], mase, np.nan)
    best, has_winner = pick_champions(full_only, margin)
    fallback = np.where(has_winner, np.array(names, dtype=object)[best], choice)
    return np.where(partial, fallback, choice)


def calibration_split(
    bt: Backtest, names: list[str], choice: np.ndarray, margin: float, buckets: np.ndarray | None = None
) -> tuple[ConformalWidths, list[Holdout]]:
    """Conformal widths from each series' champion's backtest errors, and the held-out check of them.

    Widths calibrated on the errors of the model a series was *chosen* for are too narrow (the
    choice favours models whose backtest errors happened to be small) and the future can be
    rougher than the backtest. To measure that, the choice and the widths are repeated without
    the last origin, kept with that origin's errors of the early choice (no holdout with a
    single origin). ``buckets`` (each backtest step's lead bucket) fits the scales per bucket.

    Only the last origin is held out: holding out each origin in turn (later origins judging
    earlier ones) widened capacity-dev's first-day band to 0.85 on the next window, since one
    rough origin set every width; the last origin is the nearest to the future being forecast.
    """
    widths = conformal_widths(champion_errors(bt.errors, names, width_choice(bt.mase, names, choice, margin)), buckets)
    if bt.mase.shape[1] < 2:
        return widths, []
    best, has_winner = pick_champions(bt.mase[:, :-1, :], margin)
    early_choice = np.asarray(np.where(has_winner, np.array(names, dtype=object)[best], None))
    cube = champion_errors(bt.errors, names, early_choice)
    if not np.isfinite(cube[:, -1, :]).any():
        return widths, []
    return widths, [Holdout(conformal_widths(cube[:, :-1, :], buckets), cube[:, -1, :])]


def fitted_holdouts(selector: object) -> list[Holdout]:
    """A fitted selector's held-out origins; one pickled before they were kept as a list has its
    single holdout as ``holdout_widths_`` / ``holdout_errors_``."""
    holdouts = getattr(selector, "holdouts_", None)
    if holdouts is not None:
        return list(holdouts)
    widths, errors = getattr(selector, "holdout_widths_", None), getattr(selector, "holdout_errors_", None)
    return [] if widths is None or errors is None else [Holdout(widths, errors)]


def holdout_lead_factors(holdouts: list[Holdout], buckets: np.ndarray, level: int) -> dict[str, float]:
    """Fleet-wide width multipliers per lead bucket, measured on the held-out origins together
    (:func:`models.forecasting.calibration.lead_factors`); ``buckets`` names each backtest step's
    bucket. Empty when there is no held-out origin to measure them on (every factor is then 1)."""
    if not holdouts:
        return {}
    steps = holdouts[0].errors.shape[1]
    errors = np.concatenate([h.errors for h in holdouts], axis=0)
    half = np.concatenate([h.widths.half_widths(steps, level, buckets) for h in holdouts], axis=0)
    return lead_factors(errors, half, buckets, level)


def lead_half_widths(
    widths: ConformalWidths, holdouts: list[Holdout], backtest_steps: int, freq: str, h: int, level: int
) -> np.ndarray:
    """Interval half-widths (series x h) as served: per-bucket scales times the held-out factor of
    each step's lead bucket (a bucket past the backtest horizon takes the longest measured one's)."""
    factors = holdout_lead_factors(holdouts, step_buckets(backtest_steps, freq), level)
    buckets = step_buckets(h, freq)
    return widths.half_widths(h, level, buckets) * factor_steps(factors, buckets)[None, :]
