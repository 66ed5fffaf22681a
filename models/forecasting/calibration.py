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

One profile and one scale per series get the pooled coverage right but not every lead: how
errors grow with the lead differs between series, so the pooled band can over-cover the first
hour and under-cover the first day. :func:`lead_factors` measures, per lead-time bucket
(:mod:`models.forecasting.lead_buckets`), the fleet-wide factor that brings widths fitted on
earlier origins to the wanted coverage on a later, held-out origin; :func:`factor_steps` lays
those factors out over the steps of a forecast.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.forecasting.lead_buckets import BUCKETS

# The held-out factor corrects the optimism of widths fitted on the errors of chosen models, which
# only ever makes them too narrow; below 1 it would bet that the future stays as calm as one
# held-out origin happened to be (on the simulator such a factor of 0.56 left the next window's
# band at 44 %). Above 3 it would trust one rough origin too far.
FACTOR_RANGE = (1.0, 3.0)


MIN_FACTOR_POINTS = 200  # fewer held-out points in a bucket: the factor over all of them serves it
MIN_BUCKET_SAMPLES = 20  # fewer errors of a series in a lead bucket: its pooled scale serves there


@dataclass(frozen=True)
class ConformalWidths:
    """Normalised absolute errors per series and the horizon profile; gives widths at any level.

    With ``buckets`` (the lead bucket of each backtest step) a series' scale is fitted per
    bucket, from its errors at those steps only, where it has at least
    :data:`MIN_BUCKET_SAMPLES` of them (else its pooled scale serves that bucket).
    """

    normalised: np.ndarray  # series x samples (origin-major: sample j is step j % steps), NaN-padded
    profile: np.ndarray  # backtest steps
    buckets: np.ndarray | None = None  # lead bucket of each backtest step

    def scales(self, level: int, bucket: str | None = None) -> np.ndarray:
        """Per series, the conformal ``level`` % quantile of its normalised absolute errors (0 if
        none); in ``bucket`` only, when given and the series has enough errors there."""
        if not 0 < level < 100:
            raise ValueError(f"interval level must be within (0, 100), got {level}")
        pooled = _row_quantiles(self.normalised, level)
        if bucket is None or self.buckets is None:
            return pooled
        columns = self.buckets[np.arange(self.normalised.shape[1]) % self.profile.size] == bucket
        part = self.normalised[:, columns]
        enough = np.isfinite(part).sum(axis=1) >= MIN_BUCKET_SAMPLES
        return np.where(enough, _row_quantiles(part, level), pooled)

    def steps(self, h: int) -> np.ndarray:
        """The horizon profile for steps 1..h, extended past the backtest horizon by sqrt(k / H)."""
        known = self.profile.size
        k = np.arange(1, h + 1)
        beyond = self.profile[-1] * np.sqrt(k / known)
        return np.where(k <= known, self.profile[np.minimum(k, known) - 1], beyond)

    def half_widths(self, h: int, level: int, buckets: np.ndarray | None = None) -> np.ndarray:
        """Interval half-widths (series x h) at ``level`` %; ``buckets`` (the lead bucket of each of
        the h steps) selects per-bucket scales when fitted (a bucket past the backtest horizon
        takes the nearest measured one's, see :func:`nearest_measured`)."""
        if buckets is None or self.buckets is None:
            return self.scales(level)[:, None] * self.steps(h)[None, :]
        served = nearest_measured(list(dict.fromkeys(self.buckets.tolist())), buckets)
        scale = {b: self.scales(level, b) for b in dict.fromkeys(served.tolist())}
        return np.stack([scale[b] for b in served], axis=1) * self.steps(h)[None, :]


def _row_quantiles(values: np.ndarray, level: int) -> np.ndarray:
    """Per row, the conformal ``level`` % quantile of its finite values (0 for a row with none)."""
    if values.shape[1] == 0:
        return np.zeros(values.shape[0])
    ordered = np.sort(values, axis=1)  # NaN sort last
    count = np.isfinite(ordered).sum(axis=1)
    rank = np.ceil((count + 1) * level / 100).astype("int64")
    index = np.clip(np.minimum(rank, count) - 1, 0, ordered.shape[1] - 1)
    picked = ordered[np.arange(ordered.shape[0]), index]
    return np.where(count > 0, picked, 0.0)


def nearest_measured(measured: list[str], buckets: np.ndarray) -> np.ndarray:
    """For each of ``buckets``, itself when measured, else the nearest measured bucket before it in
    :data:`~models.forecasting.lead_buckets.BUCKETS` order (after it, for a lead shorter than any
    measured)."""
    if not measured:
        raise ValueError("no measured lead bucket to serve from")
    order = [b for b in BUCKETS if b in measured]
    out = {}
    for b in BUCKETS:
        earlier = [m for m in order if BUCKETS.index(m) <= BUCKETS.index(b)]
        out[b] = earlier[-1] if earlier else order[0]
    return np.array([out[str(b)] for b in buckets], dtype=object)


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


def conformal_widths(errors: np.ndarray, buckets: np.ndarray | None = None) -> ConformalWidths:
    """Fit the profile and per-series normalised errors from an error cube (see the module
    docstring); ``buckets`` (the lead bucket of each step) fits the scales per bucket."""
    if errors.ndim != 3:
        raise ValueError(f"errors must be a (series, origin, step) cube, got shape {errors.shape}")
    if buckets is not None and buckets.size != errors.shape[2]:
        raise ValueError(f"{buckets.size} step buckets for {errors.shape[2]} steps")
    profile = horizon_profile(errors)
    normalised = (np.abs(errors) / profile[None, None, :]).reshape(errors.shape[0], -1)
    return ConformalWidths(normalised, profile, buckets)


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


def conformal_quantile(values: np.ndarray, level: int) -> float:
    """The ``level`` % conformal quantile of the ``n`` non-NaN ``values``: the ``ceil((n + 1) level / 100)``-th
    smallest (the finite-sample correction), the largest when that rank exceeds ``n``; NaN if none."""
    kept = np.sort(values[~np.isnan(values)])
    if kept.size == 0:
        return float("nan")
    rank = int(np.ceil((kept.size + 1) * level / 100))
    return float(kept[min(rank, kept.size) - 1])


def lead_factors(errors: np.ndarray, half: np.ndarray, buckets: np.ndarray, level: int) -> dict[str, float]:
    """Per lead bucket, the width multiplier that makes held-out ``errors`` (series x steps) fall
    within ``factor * half`` at ``level`` %: the conformal quantile of ``|error| / half`` over the
    bucket's points (over all points for a bucket with fewer than :data:`MIN_FACTOR_POINTS`:
    one step of a few series says little), clipped to :data:`FACTOR_RANGE`. ``buckets`` names
    each step's bucket; buckets without a finite held-out error are left out."""
    if errors.shape != half.shape or errors.shape[1] != buckets.size:
        raise ValueError(f"errors {errors.shape}, half-widths {half.shape} and {buckets.size} step buckets disagree")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(half > 0, np.abs(errors) / half, np.where(np.abs(errors) > 0, np.inf, 0.0))
    ratio = np.where(np.isfinite(errors), ratio, np.nan)
    overall = conformal_quantile(ratio.ravel(), level)  # inf: a zero width missed
    factors = {}
    for name in dict.fromkeys(buckets.tolist()):
        points = ratio[:, buckets == name].ravel()
        if np.isnan(points).all():
            continue
        few = (~np.isnan(points)).sum() < MIN_FACTOR_POINTS
        picked = overall if few else conformal_quantile(points, level)
        factors[str(name)] = float(np.clip(picked, *FACTOR_RANGE))
    return factors


def factor_steps(factors: Mapping[str, float], buckets: np.ndarray) -> np.ndarray:
    """The multiplier of each step whose bucket is ``buckets[k]``: its bucket's factor, or for a
    bucket not measured (a lead past the backtest horizon) that of :func:`nearest_measured`;
    1 with no factors at all."""
    if not factors:
        return np.ones(buckets.size)
    return np.array([factors[b] for b in nearest_measured(list(factors), buckets)], dtype="float64")
