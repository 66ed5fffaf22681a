"""Forecast accuracy metrics as pure numpy functions over 1-D arrays (one series each)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(y: ArrayLike, yhat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y, dtype="float64"), np.asarray(yhat, dtype="float64")
    if a.shape != b.shape:
        raise ValueError(f"actuals and forecasts differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("cannot score an empty forecast")
    return a, b


def seasonal_scale(y_train: ArrayLike, season: int) -> float:
    """Mean absolute in-sample seasonal-naive error: MASE's denominator.

    Falls back to the naive (season 1) error when the history is not longer than a season;
    NaN when there are fewer than two points.
    """
    train = np.asarray(y_train, dtype="float64")
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    m = season if train.size > season else 1
    if train.size <= m:
        return float("nan")
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def mase(y: ArrayLike, yhat: ArrayLike, y_train: ArrayLike, season: int) -> float:
    """Mean absolute scaled error: MAE over the in-sample seasonal-naive MAE (Hyndman & Koehler).

    Below 1 beats a seasonal-naive forecast made in-sample. NaN when the scale is zero or
    undefined (a constant or too-short history), where the ratio means nothing.
    """
    a, b = _pair(y, yhat)
    scale = seasonal_scale(y_train, season)
    if not np.isfinite(scale) or scale == 0.0:
        return float("nan")
    return float(np.mean(np.abs(a - b)) / scale)


def smape(y: ArrayLike, yhat: ArrayLike) -> float:
    """Symmetric MAPE on the 0-200 scale: mean of 200 |y - yhat| / (|y| + |yhat|).

    Points where both are zero count as perfect (0), not as 0/0.
    """
    a, b = _pair(y, yhat)
    denom = np.abs(a) + np.abs(b)
    safe = np.where(denom == 0.0, 1.0, denom)
    return float(np.mean(np.where(denom == 0.0, 0.0, 200.0 * np.abs(a - b) / safe)))


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Share of actuals inside their closed interval ``[lo, hi]``."""
    a, low = _pair(y, lo)
    _, high = _pair(y, hi)
    return float(np.mean((a >= low) & (a <= high)))


def pinball(y: ArrayLike, q: ArrayLike, tau: float) -> float:
    """Mean pinball (quantile) loss of forecasts ``q`` of the ``tau`` quantile."""
    if not 0.0 < tau < 1.0:
        raise ValueError(f"tau must be within (0, 1), got {tau}")
    a, b = _pair(y, q)
    diff = a - b
    return float(np.mean(np.maximum(tau * diff, (tau - 1.0) * diff)))
