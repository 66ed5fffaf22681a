"""Put long telemetry on a regular time grid per series (e.g. 5-minute samples -> hourly).

Capacity planning forecasts hourly series; raw telemetry arrives every few minutes, with jitter
and gaps. :func:`resample` aggregates each series into ``freq`` buckets, lays it on a regular
grid from its first to its last bucket, fills short gaps by linear interpolation and leaves long
gaps out (warning with the series affected), so every output row is a real or a
credibly-interpolated value and the result passes :func:`foresight.schemas.validate_telemetry`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, UTC_DTYPE, require_columns

AGGREGATIONS: tuple[str, ...] = ("mean", "median", "max", "min", "sum", "last", "first")


class GapWarning(UserWarning):
    """Some series had gaps too long to interpolate; ``.gaps`` maps unique_id -> missing buckets."""

    def __init__(self, gaps: dict[str, int], max_gap: int) -> None:
        self.gaps = gaps
        sample = dict(list(gaps.items())[:3])
        super().__init__(
            f"{len(gaps)} series have gaps longer than {max_gap} bucket(s), left out "
            f"(not interpolated), e.g. {sample}"
        )


def freq_to_timedelta(freq: str) -> pd.Timedelta:
    """A fixed-length frequency (``"5min"``, ``"1h"``) as a Timedelta; calendar ones are refused."""
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        step = pd.Timedelta(offset)
    except (TypeError, ValueError):
        raise ValueError(f"frequency {freq!r} has no fixed length; use a fixed one like '1h'") from None
    if step <= pd.Timedelta(0):
        raise ValueError(f"frequency {freq!r} must be positive")
    return step


def regular_grid(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Each series reindexed onto ``first..last`` at ``freq`` (missing steps get NaN ``y``).

    Assumes timestamps are already aligned to the grid (as :func:`resample` leaves them or a
    model's training frame is); rows off the grid are kept and the grid is added around them.
    """
    require_columns(df, (ID_COL, TIME_COL), "regular_grid")
    step = freq_to_timedelta(freq)
    bounds = df.groupby(ID_COL, sort=True, observed=True)[TIME_COL].agg(["min", "max"])
    counts = ((bounds["max"] - bounds["min"]) // step).astype("int64").to_numpy() + 1
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    stamps = pd.DatetimeIndex(bounds["min"]).repeat(counts) + pd.TimedeltaIndex(offsets * step)
    grid = pd.DataFrame({ID_COL: np.repeat(bounds.index.to_numpy(), counts), TIME_COL: stamps}).astype(
        {ID_COL: df[ID_COL].dtype, TIME_COL: df[TIME_COL].dtype}
    )
    out = grid.merge(df, on=[ID_COL, TIME_COL], how="outer")
    return out.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)


def resample(
    df: pd.DataFrame,
    freq: str = "1h",
    how: str = "mean",
    *,
    max_gap: int = 3,
    label: str = "left",
) -> pd.DataFrame:
    """Aggregate each series into ``freq`` buckets on a regular grid; interpolate short gaps.

    ``how`` is the aggregation within a bucket (one of :data:`AGGREGATIONS`). Buckets are
    labelled by their start (``label="left"``) or end. A run of up to ``max_gap`` empty buckets
    between two observed ones is filled by linear interpolation in time; longer runs are left
    out and reported in a :class:`GapWarning` (interpolating hours of missing data would invent
    the peaks capacity planning is about). Returns ``unique_id, ds, y`` sorted.
    """
    require_columns(df, (ID_COL, TIME_COL, TARGET_COL), "resample")
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of: {', '.join(AGGREGATIONS)}")
    if label not in ("left", "right"):
        raise ValueError(f"label must be 'left' or 'right', got {label!r}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    step = freq_to_timedelta(freq)
    if df.empty:
        return df[[ID_COL, TIME_COL, TARGET_COL]].copy()
    ds = df[TIME_COL]
    bucket = ds.dt.floor(step) if label == "left" else ds.dt.ceil(step)
    buckets = (
        df.assign(**{TIME_COL: bucket})
        .groupby([ID_COL, TIME_COL], sort=True, observed=True)[TARGET_COL]
        .agg(how)
        .reset_index()
    )
    grid = regular_grid(buckets, freq)
    return _fill_short_gaps(grid, max_gap)


def _fill_short_gaps(grid: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """Interpolate NaN runs of at most ``max_gap`` rows; drop longer runs with a warning.

    Each series starts and ends on an observed bucket, so a NaN run is always bounded by values
    of its own series and one interpolation over the concatenated frame never crosses series.
    """
    missing = grid[TARGET_COL].isna()
    if not missing.any():
        return _canonical(grid)
    run_id = (missing != missing.shift()).cumsum()
    run_len = missing.groupby(run_id).transform("size")
    long_gap = missing & (run_len > max_gap)
    filled = grid[TARGET_COL].interpolate(method="linear", limit_area="inside")
    out = grid.assign(**{TARGET_COL: filled})[~long_gap]
    if long_gap.any():
        gaps = grid.loc[long_gap, ID_COL].value_counts().astype(int)
        warnings.warn(GapWarning({str(k): int(v) for k, v in gaps.items()}, max_gap), stacklevel=3)
    return _canonical(out)


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    out = df[[ID_COL, TIME_COL, TARGET_COL]].astype(
        {ID_COL: "string", TIME_COL: UTC_DTYPE, TARGET_COL: "float64"}
    )
    return out.reset_index(drop=True)
