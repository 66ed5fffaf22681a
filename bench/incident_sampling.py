"""How `bench incidents` replays data sampled at any interval from 1 second to 5 minutes.

The incident stream counts time in steps (:class:`models.incidents.settings.StreamSettings`), and its
defaults were set on 1-minute data. The bench therefore replays on a grid of at least a minute:

- data sampled more often than once a minute is averaged into 1-minute buckets, each labelled by
  its end (the first minute at which a live pipeline could have seen all of it, as the Nezha
  reader rounds scrape times up), so a replay never acts on a sample before it existed;
- data sampled every minute or less often is replayed as it is, one step per sample. The
  statistical settings (baseline ``window``, ``min_history``, ``prior_weight``) stay counts of
  samples: a baseline needs samples, not minutes. The settings that are durations
  (:data:`DURATION_SETTINGS`: calm before resolving, the ranking window, how long outliers are
  held out of the baseline, the re-open span) keep their length in minutes
  (:func:`settings_for_interval`): at 5-minute sampling ``resolve_after`` = 3 (minutes) is 1 step.

Pure: frames in, frames out.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from models.incidents.settings import StreamSettings

REPLAY_STEP = pd.Timedelta("1min")  # the finest step the stream is replayed at
# StreamSettings fields that are durations, in steps of REPLAY_STEP (their defaults were set on 1-minute data).
DURATION_SETTINGS: tuple[str, ...] = ("resolve_after", "rank_window", "max_hold", "learn_delay", "reopen_within")


def sampling_interval(telemetry: pd.DataFrame) -> pd.Timedelta:
    """The typical spacing of samples: the median gap between consecutive samples of a series
    (gaps of missing data are rare enough not to move it). One minute when no series has two samples."""
    ordered = telemetry.sort_values(["unique_id", "ds"], kind="stable")
    gaps = ordered["ds"].diff()[ordered["unique_id"].eq(ordered["unique_id"].shift())]
    gaps = gaps[gaps > pd.Timedelta(0)]
    if gaps.empty:
        return REPLAY_STEP
    return pd.Timedelta(gaps.median())


def aggregate(telemetry: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """Mean of each series over ``step`` buckets, labelled by the bucket's end (``(end - step, end]``)."""
    bucketed = telemetry.assign(ds=telemetry["ds"].dt.ceil(step))
    out = bucketed.groupby(["unique_id", "ds"], sort=True, observed=True)["y"].mean().reset_index()
    return out.astype({"unique_id": "string", "y": "float64"})[["unique_id", "ds", "y"]]


def replay_grid(telemetry: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timedelta]:
    """``telemetry`` on the grid it is replayed at, and that grid's step: sub-minute samples are
    averaged into 1-minute buckets, coarser ones are kept."""
    interval = sampling_interval(telemetry)
    if interval < REPLAY_STEP:
        return aggregate(telemetry, REPLAY_STEP), REPLAY_STEP
    return telemetry, interval


def settings_for_interval(settings: StreamSettings, interval: pd.Timedelta) -> StreamSettings:
    """``settings`` (durations in 1-minute steps) for a replay at ``interval``: each of
    :data:`DURATION_SETTINGS` becomes the number of steps nearest its length in minutes, at least
    one (``reopen_within`` = 0, never, stays 0). Unchanged at 1 minute or finer."""
    ratio = interval / REPLAY_STEP
    if ratio <= 1:
        return settings
    steps: dict[str, int] = {}
    for name in DURATION_SETTINGS:
        value = getattr(settings, name)
        steps[name] = 0 if value == 0 else max(1, round(value / ratio))
    return replace(settings, **steps)  # type: ignore[arg-type]  # every key is an int setting
