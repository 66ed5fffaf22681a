"""Calendar features and future time grids: pure functions of timestamps.

Telemetry load follows the clock (business hours, weekends), so forecasters see hour-of-day
and day-of-week; forecasts need the timestamps that continue each series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL

CALENDAR_FEATURES: tuple[str, ...] = ("hour", "dayofweek", "hour_sin", "hour_cos", "is_weekend")


def calendar_features(ds: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Hour of day, day of week (0 = Monday), a smooth hour cycle and a weekend flag, in UTC."""
    stamps = pd.DatetimeIndex(ds)
    hour = stamps.hour.to_numpy() + stamps.minute.to_numpy() / 60.0
    dow = stamps.day_of_week.to_numpy()
    angle = 2.0 * np.pi * hour / 24.0
    index = ds.index if isinstance(ds, pd.Series) else None
    return pd.DataFrame(
        {
            "hour": hour,
            "dayofweek": dow.astype("int64"),
            "hour_sin": np.sin(angle),
            "hour_cos": np.cos(angle),
            "is_weekend": (dow >= 5).astype("int64"),
        },
        index=index,
    )


def add_calendar_features(df: pd.DataFrame, time_col: str = TIME_COL) -> pd.DataFrame:
    """``df`` with :data:`CALENDAR_FEATURES` columns added from ``time_col``."""
    return pd.concat([df, calendar_features(df[time_col])], axis=1)


def future_grid(last_ds: pd.Series, h: int, freq: str) -> pd.DataFrame:
    """``unique_id, ds``: the ``h`` timestamps after each series' last one, at ``freq``.

    ``last_ds`` is indexed by unique_id (e.g. ``df.groupby("unique_id")["ds"].max()``).
    Fixed-length frequencies are computed vectorised; calendar ones (``"MS"``) per series.
    """
    if h < 1:
        raise ValueError(f"horizon must be at least 1 step, got {h}")
    offset = pd.tseries.frequencies.to_offset(freq)
    ids = np.repeat(last_ds.index.to_numpy(), h)
    last = pd.DatetimeIndex(last_ds)
    try:
        step = pd.Timedelta(offset)
    except (TypeError, ValueError):
        parts = [pd.date_range(t, periods=h + 1, freq=offset)[1:] for t in last]
        stamps = parts[0].append(parts[1:]).as_unit(last.unit) if parts else last[:0]
    else:
        stamps = last.repeat(h) + pd.TimedeltaIndex(np.tile(np.arange(1, h + 1), len(last)) * step)
    return pd.DataFrame({ID_COL: ids, TIME_COL: stamps}).astype({ID_COL: last_ds.index.dtype})
