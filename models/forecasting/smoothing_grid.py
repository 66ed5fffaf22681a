"""The exponential-smoothing recursion over a parameter grid, for every row of a panel at once.

Why a module of its own: this loop is the hot path of per-series selection (every cheap
candidate but seasonal naive runs it at every backtest origin), so it is written for speed:

- one pass over the columns serves several *snapshots* (``ends``): the accumulators at the end of
  each prefix ``values[:, :end]`` are exactly those a separate run on that prefix would reach,
  so the backtest origins of a series and its final fit share one run;
- the common step, where every row is observed and every state has started, takes a fast path
  of in-place array operations; any other step (a gap, a row not started yet) takes the general
  one. Both compute the same floating-point operations in the same order, so the result is
  bit-for-bit that of the plain recursion (tests/unit/test_smoothing_grid.py checks it against
  a step-by-step reference).

The recursion (see :mod:`models.forecasting.smoothing`): ``l = l' + phi b' + alpha e``,
``b = phi b' + beta (l - l')``; the score of a grid point is its mean absolute error ``lead``
steps ahead, its ``sigma`` the root mean squared one-step error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridRun:
    """Accumulators of one snapshot (rows x grid points): state, lead-step and one-step errors."""

    level: np.ndarray
    slope: np.ndarray
    lead_err: np.ndarray
    lead_count: np.ndarray
    sq_err: np.ndarray
    sq_count: np.ndarray


def run_grid(
    values: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    phi: np.ndarray,
    lead: int,
    ends: Sequence[int],
) -> list[GridRun]:
    """Run the smoothing recursion for every (row, grid point) over ``values`` (rows x columns,
    NaN where unobserved); the accumulators after column ``end - 1`` for each of ``ends``.

    ``ends`` are column counts in ``[0, columns]``; a snapshot equals a run on ``values[:, :end]``.
    """
    n, width = values.shape
    if any(not 0 <= e <= width for e in ends):
        raise ValueError(f"ends must be within [0, {width}], got {list(ends)}")
    combos = alpha.size
    level = np.full((n, combos), np.nan)
    slope = np.zeros((n, combos))
    lead_err, lead_count = np.zeros((n, combos)), np.zeros((n, combos))
    sq_err, sq_count = np.zeros((n, combos)), np.zeros((n, combos))
    ring = np.full((lead, n, combos), np.nan)
    damp_lead = np.cumsum(phi[None, :] ** np.arange(1, lead + 1)[:, None], axis=0)[-1]
    keep_slope = (1 - beta) * phi  # as the plain recursion groups it: ((1 - beta) * phi) * slope
    # Fast-path buffers; steps taken there add 1 to both counts, added at each snapshot.
    pred, err, tmp, new_level = (np.empty((n, combos)) for _ in range(4))
    fast_steps = 0
    observed_cols = np.flatnonzero(np.isfinite(values).any(axis=0))
    start = int(observed_cols[0]) if observed_cols.size else width
    row_observed = np.isfinite(values).all(axis=0)
    wanted = sorted(set(ends))
    snapshots: dict[int, GridRun] = {}

    def snapshot() -> GridRun:
        return GridRun(level.copy(), slope.copy(), lead_err.copy(), lead_count + fast_steps,
                       sq_err.copy(), sq_count + fast_steps)

    for end in wanted:
        if end <= start:
            snapshots[end] = snapshot()
    for t in range(start, wanted[-1] if wanted else start):
        y = values[:, t][:, None]
        past = ring[t % lead]
        if row_observed[t] and np.isfinite(level).all() and np.isfinite(past).all():
            # Every row observed, every state started, every lead-step forecast made: the plain
            # recursion's np.where branches all take one side.
            np.subtract(y, past, out=tmp)
            np.abs(tmp, out=tmp)
            lead_err += tmp
            np.multiply(phi, slope, out=tmp)
            np.add(level, tmp, out=pred)
            np.subtract(y, pred, out=err)
            np.multiply(err, err, out=tmp)
            sq_err += tmp
            np.multiply(alpha, err, out=tmp)
            np.add(pred, tmp, out=new_level)
            np.subtract(new_level, level, out=tmp)
            np.multiply(beta, tmp, out=tmp)
            np.multiply(keep_slope, slope, out=slope)
            np.add(tmp, slope, out=slope)
            level, new_level = new_level, level
            np.multiply(damp_lead, slope, out=tmp)
            np.add(level, tmp, out=past)
            fast_steps += 1
        else:
            obs = np.isfinite(y)
            scored = obs & np.isfinite(past)
            lead_err += np.where(scored, np.abs(y - past), 0.0)
            lead_count += scored
            started = np.isfinite(level)
            step_pred = level + phi * slope
            step_err = y - step_pred
            usable = obs & started
            sq_err += np.where(usable, step_err * step_err, 0.0)
            sq_count += usable
            step_level = np.where(obs, np.where(started, step_pred + alpha * step_err, y), step_pred)
            slope = np.where(
                usable,
                beta * (step_level - level) + keep_slope * slope,
                np.where(started, phi * slope, 0.0),
            )
            level = step_level
            ring[t % lead] = level + damp_lead * slope
        if t + 1 in wanted:
            snapshots[t + 1] = snapshot()
    return [snapshots[e] for e in ends]
