"""The simple baselines every detector is judged against: a robust z-score over the past day.

- :func:`trailing_robust_z`: how far each sample is from the median of the ``window`` samples
  before it, in robust standard deviations (1.4826 x the median absolute deviation). Causal: the
  score at row t uses rows < t for its reference and row t itself, nothing later.
- :func:`causal_suppression`: causal non-max suppression; a score is kept only where it beats
  every score of the ``width`` rows before it, so one long excursion counts once, at its start and
  wherever it grows, instead of at every row.

Pure numpy; no state, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution x this = its standard deviation
MEAN_AD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal distribution x this = its standard deviation


def steps_in(span: pd.Timedelta, ds: pd.Series | pd.DatetimeIndex) -> int:
    """How many samples of ``ds`` (its median spacing) cover ``span``; at least 1."""
    times = pd.to_datetime(pd.Series(ds), utc=True).sort_values()
    spacing = times.diff().dropna().median() if len(times) > 1 else pd.NaT
    if pd.isna(spacing) or spacing <= pd.Timedelta(0):
        return 1
    return max(1, int(round(span / spacing)))


def trailing_robust_z(
    values: np.ndarray, window: int, min_periods: int = 10, chunk: int = 4096, mean_ad_fallback: bool = False
) -> np.ndarray:
    """``|x_t - median| / (1.4826 MAD)`` over the ``window`` samples before each row (exact).

    Rows with fewer than ``min_periods`` finite samples before them, and non-finite rows, score 0.
    A reference with no spread (MAD 0) uses the smallest spread it could resolve (1e-9 of the
    median's magnitude, or 1e-12), so a flat series that moves scores high. With
    ``mean_ad_fallback`` a reference whose MAD is 0 but which does vary (more than half its samples
    equal) uses 1.2533 x its mean absolute deviation instead (the modified z-score's rule, Iglewicz
    & Hoaglin 1993), so a mostly constant counter that ticks does not score as if it never moved.
    Works in blocks of ``chunk`` rows: memory ``chunk x window`` floats whatever the length.
    """
    if window < 1 or min_periods < 1:
        raise ValueError(f"window and min_periods must be >= 1, got {window} and {min_periods}")
    x = np.asarray(values, dtype=float)
    padded = np.concatenate([np.full(window, np.nan), x])
    z = np.zeros(len(x))
    for lo in range(0, len(x), chunk):
        hi = min(len(x), lo + chunk)
        # windows[i] = the `window` samples before row lo + i
        windows = np.lib.stride_tricks.sliding_window_view(padded[lo : hi + window - 1], window)
        enough = np.sum(np.isfinite(windows), axis=1) >= min_periods
        with np.errstate(all="ignore"):
            rows = windows[enough]
            median = np.nanmedian(rows, axis=1) if len(rows) else np.empty(0)
            mad = np.nanmedian(np.abs(rows - median[:, None]), axis=1) if len(rows) else np.empty(0)
            spread = MAD_TO_SIGMA * mad
            flat = spread == 0
            if mean_ad_fallback and flat.any():
                deviation = np.abs(rows[flat] - median[flat, None])
                spread[flat] = MEAN_AD_TO_SIGMA * np.nanmean(deviation, axis=1)
            spread = np.maximum(spread, np.maximum(np.abs(median) * 1e-9, 1e-12))
            block = np.zeros(hi - lo)
            block[enough] = np.abs(x[lo:hi][enough] - median) / spread
        z[lo:hi] = np.where(np.isfinite(block), block, 0.0)
    return z


def causal_suppression(scores: np.ndarray, width: int) -> np.ndarray:
    """``scores`` with every row that does not beat all of the ``width`` rows before it set to 0."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    s = pd.Series(np.asarray(scores, dtype=float))
    previous_max = s.shift(1).rolling(width, min_periods=1).max().fillna(-np.inf).to_numpy()
    out = s.to_numpy().copy()
    out[out <= previous_max] = 0.0
    return out
