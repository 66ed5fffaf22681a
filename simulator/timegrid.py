"""The sample grid and the business calendar the traffic follows.

Customers live in one business timezone, so daily and weekly patterns follow local time
(daylight saving included) while samples are stamped in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.schemas import UTC_DTYPE
from foresight.timeutil import utc_timestamp

BUSINESS_TZ = "America/New_York"


@dataclass(frozen=True)
class TimeGrid:
    """Regular UTC sample times over ``[start, end)`` and their local-calendar coordinates."""

    ds: pd.DatetimeIndex  # UTC, microsecond resolution
    step_minutes: int
    local_hour: np.ndarray  # fractional hour of day in the business timezone
    weekend: np.ndarray  # bool: Saturday or Sunday locally
    elapsed_days: np.ndarray  # days since the first sample

    @property
    def start(self) -> pd.Timestamp:
        return self.ds[0]

    @property
    def end(self) -> pd.Timestamp:
        """The exclusive end of the span."""
        return self.ds[-1] + pd.Timedelta(minutes=self.step_minutes)

    @property
    def steps_per_day(self) -> int:
        return 24 * 60 // self.step_minutes

    def __len__(self) -> int:
        return len(self.ds)

    def index_at(self, ts: pd.Timestamp) -> int:
        """The index of the sample at or after ``ts`` (clipped to the grid)."""
        return int(np.clip(self.ds.searchsorted(ts.as_unit("us", round_ok=True)), 0, len(self.ds) - 1))

    def steps(self, minutes: float) -> int:
        """How many samples a duration spans (at least one)."""
        return max(1, int(round(minutes / self.step_minutes)))


def resolve_end(end: str | pd.Timestamp | None) -> pd.Timestamp:
    """The span's exclusive end in UTC; by default today's UTC midnight, so one day's runs agree."""
    if end is None:
        return pd.Timestamp.now(tz="UTC").floor("D")
    return utc_timestamp(end, "end")


def build_grid(end: pd.Timestamp, days: int, step_minutes: int) -> TimeGrid:
    """The grid of ``days`` days ending (exclusively) at ``end``."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if step_minutes < 1 or (24 * 60) % step_minutes:
        raise ValueError(f"step_minutes must divide a day evenly, got {step_minutes}")
    n = days * 24 * 60 // step_minutes
    start = end - pd.Timedelta(days=days)
    ds = pd.date_range(start, periods=n, freq=f"{step_minutes}min").astype(UTC_DTYPE)
    local = ds.tz_convert(BUSINESS_TZ)
    local_hour = np.asarray(local.hour + local.minute / 60.0, dtype="float64")
    weekend = np.asarray(local.day_of_week >= 5)
    elapsed = np.arange(n) * step_minutes / (24 * 60.0)
    return TimeGrid(ds, step_minutes, local_hour, weekend, elapsed)


def local_index(grid: TimeGrid, day: pd.Timestamp, hour: float) -> int:
    """Grid index of a local wall-clock time on a local calendar day."""
    ts = (day + pd.Timedelta(hours=hour)).tz_convert("UTC")
    return grid.index_at(ts)


def business_days(grid: TimeGrid) -> list[pd.Timestamp]:
    """Local midnights of every business day the span touches."""
    first = grid.start.tz_convert(BUSINESS_TZ).normalize()
    last = grid.end.tz_convert(BUSINESS_TZ).normalize()
    return list(pd.date_range(first, last, freq="D"))
