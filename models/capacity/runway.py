"""How likely a resource is to reach its threshold, read from the forecast's calibrated band.

The served forecast gives three quantiles per step: ``yhat_lower``, ``yhat`` and ``yhat_upper``
are the ``(1 - c) / 2``, 0.5 and ``(1 + c) / 2`` quantiles of that step's predictive distribution
for a central band of coverage ``c = level / 100`` (0.1, 0.5, 0.9 at ``level=80``). Between and
beyond them the distribution is taken as a two-piece normal: a normal half below the median with
the spread that puts the lower quantile where the band says, and one above it with the upper
band's spread. It passes exactly through the three quantiles, so the probabilities agree with the
band a planner sees: a step whose median reaches the threshold has an exceedance probability of at
least 0.5, one whose upper band reaches it at least ``(1 - c) / 2``. Where the band is skewed
(clipped at a bound, or wider above than below) each side keeps its own spread.

The band gives each step's marginal distribution only, not how errors at different steps move
together, so the probability of crossing at *some* step of the horizon is not determined by it.
:func:`horizon_crossing_probability` reports the largest per-step probability, a lower bound that
is exact when the error keeps its quantile over the horizon (a level the forecast misjudges stays
misjudged: the dominant error of a capacity forecast, whose neighbouring hourly errors are
strongly correlated). Treating the steps as independent instead (``1 - prod(1 - p)``) would turn
168 hourly steps at 1 % each into an 81 % chance: the alarm-for-nothing a runway must not raise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from foresight.schemas import ID_COL


def band_z(level: float) -> float:
    """The standard-normal quantile of a central band's upper edge (1.2816 for an 80 % band)."""
    if not 0 < level < 100:
        raise ValueError(f"interval level must be in (0, 100) percent, got {level}")
    return float(ndtri(0.5 + level / 200.0))


def exceedance_probability(
    yhat: np.ndarray | pd.Series,
    lower: np.ndarray | pd.Series,
    upper: np.ndarray | pd.Series,
    threshold: np.ndarray | pd.Series | float,
    level: float = 80.0,
) -> np.ndarray:
    """Per step, P(value >= threshold) under the two-piece normal through the band's quantiles.

    A side of zero width (a band clipped onto its median) is a step: 1 below the median, 0 above,
    0.5 on it. NaN where the median, the side the threshold lies on, or the threshold is NaN.
    """
    z = band_z(level)
    median = np.asarray(yhat, dtype="float64")
    limit = np.broadcast_to(np.asarray(threshold, dtype="float64"), median.shape)
    above_spread = np.maximum(np.asarray(upper, dtype="float64") - median, 0.0) / z
    below_spread = np.maximum(median - np.asarray(lower, dtype="float64"), 0.0) / z
    gap = limit - median
    spread = np.where(gap >= 0, above_spread, below_spread)
    with np.errstate(divide="ignore", invalid="ignore"):
        standardised = np.where(spread > 0, gap / spread, np.sign(gap) * np.inf)
    standardised = np.where((spread == 0) & (gap == 0), 0.0, standardised)
    probability = ndtr(-standardised)  # not 1 - ndtr(z): far tails keep their tiny, non-zero size
    return np.where(np.isnan(gap) | np.isnan(spread), np.nan, probability)


def horizon_crossing_probability(fc: pd.DataFrame, level: float = 80.0) -> pd.Series:
    """Per ``unique_id``, the chance of reaching ``threshold`` at some step of the horizon: the
    largest per-step exceedance probability (a lower bound; see the module docstring for why this
    one). ``fc`` holds ``unique_id, yhat, yhat_lower, yhat_upper, threshold``; NaN for a series
    none of whose steps has a probability."""
    steps = exceedance_probability(fc["yhat"], fc["yhat_lower"], fc["yhat_upper"], fc["threshold"], level)
    per_step = pd.Series(steps, index=fc.index, dtype="float64")
    return per_step.groupby(fc[ID_COL], sort=True, observed=True).max()
