"""Where each sample falls in the day, for detectors with a daily-seasonal memory.

:func:`infer_step` reads a series' sampling step from its timestamps, :func:`daily_season` turns
a step into steps per day (0: no daily cycle) and :func:`phases` gives each timestamp's step of
the day. The grid of long frames has its own step inference (:func:`models.anomaly.grid.infer_step`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def infer_step(timestamps: pd.Series | pd.DatetimeIndex) -> pd.Timedelta:
    """The most common positive step between consecutive timestamps."""
    ts = pd.DatetimeIndex(timestamps)
    steps = pd.Series(ts[1:] - ts[:-1])
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("cannot infer the sampling step from fewer than two distinct timestamps")
    return pd.Timedelta(steps.mode().iloc[0])


def daily_season(step: pd.Timedelta, max_season: int = 1440) -> int:
    """Steps per day when the step divides a day into 4..max_season steps, else 0 (no cycle)."""
    day = pd.Timedelta("1D")
    if step <= pd.Timedelta(0) or day % step != pd.Timedelta(0):
        return 0
    season = int(day / step)
    return season if 4 <= season <= max_season else 0


def phases(timestamps: pd.Series | pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Step of the day (from midnight) of each timestamp."""
    ts = pd.DatetimeIndex(timestamps)
    since_midnight = (ts - ts.normalize()).to_numpy().astype("timedelta64[ns]").astype(np.int64)
    return np.rint(since_midnight / step.value).astype(np.int64)
