"""Lag and rolling-window features of a target, per series, in two equivalent forms.

Frame form (:func:`lag_features`, :func:`rolling_features`) builds training rows; array form
(:func:`history_features`) builds the one next row from each series' recent history, which is
what recursive multi-step forecasting needs at every step. Both follow the same definitions,
so a model sees identical features when trained and when forecasting:

- ``lag_k``: the value k steps before the row;
- ``roll_mean_w`` / ``roll_std_w``: mean / sample std (ddof=1) of the w values before the row,
  ignoring missing ones (causal: the row's own value is never included).

Frames must be on a regular grid per series (:func:`features.resample.regular_grid`), so that
"k rows back" means "k steps back"; missing steps may be NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL


def lag_names(lags: Sequence[int]) -> list[str]:
    return [f"lag_{k}" for k in lags]


def rolling_names(windows: Sequence[int]) -> list[str]:
    return [name for w in windows for name in (f"roll_mean_{w}", f"roll_std_{w}")]


def history_length(lags: Sequence[int], windows: Sequence[int]) -> int:
    """How many past values the features of one row look back over."""
    return max([*lags, *windows, 1])


def _check(lags: Sequence[int], windows: Sequence[int]) -> None:
    if any(k < 1 for k in lags):
        raise ValueError(f"lags must be >= 1 (causal), got {list(lags)}")
    if any(w < 2 for w in windows):
        raise ValueError(f"rolling windows must be >= 2 (a std needs two values), got {list(windows)}")


def lag_features(
    df: pd.DataFrame, lags: Sequence[int], target_col: str = TARGET_COL, id_col: str = ID_COL
) -> pd.DataFrame:
    """``lag_k`` columns (same index as ``df``), NaN where a series has no value k steps back."""
    _check(lags, ())
    grouped = df.groupby(id_col, sort=False, observed=True)[target_col]
    return pd.DataFrame({name: grouped.shift(k) for name, k in zip(lag_names(lags), lags, strict=True)}, index=df.index)


def rolling_features(
    df: pd.DataFrame, windows: Sequence[int], target_col: str = TARGET_COL, id_col: str = ID_COL
) -> pd.DataFrame:
    """``roll_mean_w`` / ``roll_std_w`` over the w values before each row (same index as ``df``)."""
    _check((), windows)
    previous = df.groupby(id_col, sort=False, observed=True)[target_col].shift(1)
    keyed = pd.DataFrame({id_col: df[id_col].to_numpy(), "v": previous.to_numpy()})
    out: dict[str, np.ndarray] = {}
    for w in windows:
        rolling = keyed.groupby(id_col, sort=False, observed=True)["v"].rolling(w, min_periods=1)
        # groupby().rolling() returns rows grouped by key; droplevel + reindex restores df order.
        mean = rolling.mean().droplevel(0).sort_index().to_numpy()
        std = rolling.std(ddof=1).droplevel(0).sort_index().to_numpy()
        out[f"roll_mean_{w}"], out[f"roll_std_{w}"] = mean, std
    return pd.DataFrame(out, index=df.index)


def history_windows(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """``values[starts[i]:ends[i]]``'s last ``length`` entries per row, right-aligned, NaN-padded.

    ``values`` is the concatenation of every series (sorted by series, then time); a row's
    window never reaches before its own series' start.
    """
    offsets = np.arange(-length, 0)[None, :]
    idx = ends[:, None] + offsets
    valid = idx >= starts[:, None]
    return np.where(valid, values[np.clip(idx, 0, max(len(values) - 1, 0))], np.nan)


def history_features(history: np.ndarray, lags: Sequence[int], windows: Sequence[int]) -> np.ndarray:
    """Features of the next step for each row of ``history`` (n, L), newest value last.

    Columns are ``lag_names(lags) + rolling_names(windows)``; NaN-padded histories give NaN
    lags and means over the values present, matching the frame functions.
    """
    _check(lags, windows)
    n, length = history.shape
    if length < history_length(lags, windows):
        raise ValueError(f"history holds {length} steps; the features need {history_length(lags, windows)}")
    cols = [history[:, -k] for k in lags]
    for w in windows:
        window = history[:, -w:]
        present = np.isfinite(window)
        count = present.sum(axis=1)
        total = np.where(present, window, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            sq = np.where(present, (window - mean[:, None]) ** 2, 0.0).sum(axis=1)
            std = np.where(count > 1, np.sqrt(sq / (count - 1)), np.nan)
        cols += [np.where(count > 0, mean, np.nan), std]
    return np.column_stack(cols) if cols else np.empty((n, 0))
