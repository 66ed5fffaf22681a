"""Every series on one regular time axis, as a (time x series) matrix: what the detectors compute on.

Samples are snapped to the nearest step of a grid anchored at midnight UTC (the most common
sampling step, :func:`infer_step`); missing steps are gaps that the rolling statistics skip.
:func:`series_tails` / :func:`prepend_context` keep and restore the causal context a fitted
detector needs to score a frame that starts later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL
from models.evaluation.events import as_timedelta


@dataclass(frozen=True)
class Grid:
    """A wide (steps x series) view of a sorted long frame and the way back to its rows."""

    values: np.ndarray  # float64 (T, N), NaN where a series has no sample
    ids: pd.Index  # the N unique_ids, column order
    rows: np.ndarray  # time index of each long row
    cols: np.ndarray  # series index of each long row

    def to_long(self, wide: np.ndarray) -> np.ndarray:
        """The long-frame values of a (T, N) matrix computed on this grid."""
        return wide[self.rows, self.cols]


def to_grid(df: pd.DataFrame, step: pd.Timedelta) -> Grid:
    """Snap ``df`` (sorted long telemetry) onto a common regular grid of ``step`` from midnight UTC."""
    codes, ids = pd.factorize(df[ID_COL], sort=True)
    # Anchor the grid at midnight UTC so block boundaries are the same whatever the frame's start.
    offsets = (df[TIME_COL] - df[TIME_COL].min().floor("1D")) / step
    rows = np.rint(offsets.to_numpy(dtype="float64")).astype(np.int64)
    values = np.full((int(rows.max()) + 1, len(ids)), np.nan)
    values[rows, codes] = df[TARGET_COL].to_numpy(dtype="float64")  # a collision keeps the later sample
    return Grid(values=values, ids=pd.Index(ids), rows=rows, cols=np.asarray(codes))


def infer_step(df: pd.DataFrame) -> pd.Timedelta:
    """The most common sampling step across series (the grid step)."""
    steps = df.groupby(ID_COL, sort=False)[TIME_COL].diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("cannot infer the sampling step: every series has a single sample")
    return pd.Timedelta(steps.mode().iloc[0])


def duration_steps(duration: str | pd.Timedelta, step: pd.Timedelta, what: str) -> int:
    """A duration as a whole number of grid steps (at least one)."""
    return max(1, int(round(as_timedelta(duration, what) / step)))


def series_tails(df: pd.DataFrame, length: pd.Timedelta) -> pd.DataFrame:
    """The samples of each series within ``length`` of its last sample (the causal context)."""
    if length <= pd.Timedelta(0):
        return df.iloc[0:0]
    last = df.groupby(ID_COL, sort=False)[TIME_COL].transform("max")
    return df[df[TIME_COL] > last - length].reset_index(drop=True)


def prepend_context(df: pd.DataFrame, context: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``df`` with each series' stored context before its first sample, and a mask of ``df``'s rows."""
    if context.empty:
        return df, np.ones(len(df), dtype=bool)
    first = df.groupby(ID_COL, sort=False)[TIME_COL].min()
    start = context[ID_COL].map(first)
    before = context[start.notna() & (context[TIME_COL] < start)]
    if before.empty:
        return df, np.ones(len(df), dtype=bool)
    frame = pd.concat([before, df], ignore_index=True)
    is_input = np.r_[np.zeros(len(before), dtype=bool), np.ones(len(df), dtype=bool)]
    order = np.lexsort((frame[TIME_COL].to_numpy(), frame[ID_COL].to_numpy(dtype=object)))
    return frame.iloc[order].reset_index(drop=True), is_input[order]


def past_rolling(values: np.ndarray, window: int, how: str, min_periods: int, lag: int = 1) -> np.ndarray:
    """A rolling statistic per column over the ``window`` steps ending ``lag`` steps before t."""
    rolled = getattr(pd.DataFrame(values).rolling(window, min_periods=min_periods), how)()
    return rolled.shift(lag).to_numpy() if lag else rolled.to_numpy()
