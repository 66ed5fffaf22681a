"""Conformal interval half-widths from rolling-origin backtest errors, as pure numpy functions.

Input everywhere is an error cube ``errors[series, origin, step]`` (actual minus forecast, NaN
where a series was not forecast at an origin). Errors grow with the step ahead, and a series
has only ``origins x steps`` errors (e.g. 3 x 48), too few to estimate a quantile for every
step on its own. So the width is split in two:

- a fleet-wide *horizon profile* ``g(k)``: the mean absolute error at step ``k`` relative to each
  series' own mean absolute error, made non-decreasing (errors do not shrink further ahead);
- a per-series *scale*: the conformal ``level`` quantile of that series' absolute errors divided
  by ``g(k)`` (all its origins and steps pooled, with the finite-sample correction
  ``ceil((n + 1) level) / n``).

The half-width at step ``k`` is ``scale * g(k)``; beyond the backtest horizon ``H`` the profile
grows as ``g(H) sqrt(k / H)``, the random-walk rate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConformalWidths:
    """Normalised absolute errors per series and the horizon profile; gives widths at any level."""

    normalised: np.ndarray  # series x samples, NaN-padded
    profile: np.ndarray  # backtest steps

    def scales(self, level: int) -> np.ndarray:
        """Per series, the conformal ``level`` % quantile of its normalised absolute errors (0 if none)."""
        if not 0 < level < 100:
            raise ValueError(f"interval level must be within (0, 100), got {level}")
        values = np.sort(self.normalised, axis=1)  # NaN sort last
        count = np.isfinite(values).sum(axis=1)
        rank = np.ceil((count + 1) * level / 100).astype("int64")
        index = np.clip(np.minimum(rank, count) - 1, 0, max(values.shape[1] - 1, 0))
        if values.shape[1] == 0:
            return np.zeros(values.shape[0])
        picked = values[np.arange(values.shape[0]), index]
        return np.where(count > 0, picked, 0.0)

    def steps(self, h: int) -> np.ndarray:
        """The horizon profile for steps 1..h, extended past the backtest horizon by sqrt(k / H)."""
        known = self.profile.size
        k = np.arange(1, h + 1)
        beyond = self.profile[-1] * np.sqrt(k / known)
        return np.where(k <= known, self.profile[np.minimum(k, known) - 1], beyond)

    def half_widths(self, h: int, level: int) -> np.ndarray:
        """Interval half-widths (series x h) at ``level`` %."""
        return self.scales(level)[:, None] * self.steps(h)[None, :]


def horizon_profile(errors: np.ndarray) -> np.ndarray:
    """Fleet-wide relative mean absolute error per step (mean 1 over steps), non-decreasing."""
    absolute = np.abs(errors)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_series = np.nanmean(absolute, axis=(1, 2))
        relative = absolute / per_series[:, None, None]
        relative[~np.isfinite(relative)] = np.nan
        profile = np.nanmean(relative, axis=(0, 1))
    if not np.isfinite(profile).any():
        return np.ones(errors.shape[2])
    profile = np.where(np.isfinite(profile), profile, np.nanmax(profile))
    profile = np.maximum.accumulate(profile)
    return profile / profile.mean() if profile.mean() > 0 else np.ones_like(profile)


def conformal_widths(errors: np.ndarray) -> ConformalWidths:
    """Fit the profile and per-series normalised errors from an error cube (see the module docstring)."""
    if errors.ndim != 3:
        raise ValueError(f"errors must be a (series, origin, step) cube, got shape {errors.shape}")
    profile = horizon_profile(errors)
    normalised = (np.abs(errors) / profile[None, None, :]).reshape(errors.shape[0], -1)
    return ConformalWidths(normalised, profile)


def cross_origin_scores(errors: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Honest per-series interval coverage and pinball loss of conformal intervals.

    Each origin's errors are judged against widths calibrated on the *other* origins only (the
    intervals of a fitted model come from all of them, so this is how they hold up on data they
    were not calibrated on). NaN for series with fewer than two scored origins.
    Returns (coverage, pinball), each per series; pinball is the mean of the lower and upper
    quantiles' losses.
    """
    n, n_origins, steps = errors.shape
    tau = (1 - level / 100) / 2
    hits, counts, loss = np.zeros(n), np.zeros(n), np.zeros(n)
    for o in range(n_origins):
        others = np.delete(errors, o, axis=1)
        half = conformal_widths(others).half_widths(steps, level)
        rows = np.isfinite(others).any(axis=(1, 2))
        e = errors[:, o, :]
        scored = np.isfinite(e) & rows[:, None]
        inside = np.abs(e) <= half
        hits += np.where(scored, inside, False).sum(axis=1)
        counts += scored.sum(axis=1)
        low, high = e + half, e - half  # actual minus the lower / upper bound
        losses = (_pinball(low, tau) + _pinball(high, 1 - tau)) / 2
        loss += np.where(scored, losses, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan), np.where(counts > 0, loss / counts, np.nan)


def _pinball(diff: np.ndarray, tau: float) -> np.ndarray:
    return np.maximum(tau * diff, (tau - 1) * diff)
