"""Event-wise evaluation: alarms are judged as episodes against incidents, not point by point.

An SRE cares whether an incident was flagged in time and how many pages were noise, not how many
5-minute samples were right. So:

- :func:`alarm_episodes` turns flagged samples into episodes ``(start, end)``;
- :func:`evaluate_alarms` matches episodes to incidents of the same service. An incident is
  *detected* when an episode of its service starts within ``[start - early, start + grace]``,
  where ``early`` is ``horizon`` or, when the history records it, the time since the incident's
  ``precursor_start`` (whichever is longer); its lead time is ``incident start - first matching
  episode start`` (positive = early). An episode that starts while its service's incident is
  still open repeats that incident. Any other episode is a *false alarm*.
- :func:`time_split` / :func:`rolling_origin_splits` split frames by time (never shuffled), so an
  evaluation only ever scores data after what the model was fitted on.

Pure: frames and arrays in, numbers out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import UTC_DTYPE, SchemaError, require_columns
from foresight.timeutil import split_time, utc_series

Episode = tuple[pd.Timestamp, pd.Timestamp]
EPISODE_COLUMNS: tuple[str, ...] = ("service", "start", "end")


@dataclass(frozen=True)
class EventMetrics:
    """Event-wise scores of one set of alarms against one set of incidents."""

    recall: float
    precision: float
    f1: float
    median_lead_minutes: float | None  # None when nothing was detected
    detected: int
    missed: int
    false_alarms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_floats(self) -> dict[str, float]:
        """Every figure as a float, NaN where it is undefined (no lead time without a detection)."""
        return {k: float("nan") if v is None else float(v) for k, v in asdict(self).items()}


def as_timedelta(value: str | pd.Timedelta, what: str) -> pd.Timedelta:
    """A duration given as a Timedelta or a string like ``"30min"``; negative ones are refused."""
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a duration like '30min', got {value!r}") from None
    if delta < pd.Timedelta(0):
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return delta


def alarm_episodes(
    times: Sequence[pd.Timestamp] | pd.Series | pd.DatetimeIndex,
    flags: Sequence[bool] | np.ndarray | pd.Series,
    gap: str | pd.Timedelta,
) -> list[Episode]:
    """Group flagged samples into episodes ``(first flagged time, last flagged time)``.

    Two flagged samples more than ``gap`` apart start a new episode; unflagged samples in between
    do not split an episode by themselves (pass ``gap`` = one step to split on any clear sample).
    """
    gap_td = as_timedelta(gap, "gap")
    t = pd.Series(pd.to_datetime(times)).reset_index(drop=True)
    f = np.asarray(flags, dtype=bool)
    if len(t) != len(f):
        raise ValueError(f"times and flags differ in length: {len(t)} vs {len(f)}")
    flagged = t[f].sort_values().reset_index(drop=True)
    if flagged.empty:
        return []
    new_episode = ~flagged.diff().le(gap_td).to_numpy(dtype=bool)  # the first (NaT diff) starts one
    episode = pd.Series(np.cumsum(new_episode))
    bounds = flagged.groupby(episode).agg(["min", "max"])
    return list(zip(bounds["min"], bounds["max"], strict=True))


def episodes_frame(
    df: pd.DataFrame,
    flag_col: str,
    gap: str | pd.Timedelta,
    *,
    group_col: str = "service",
    time_col: str = "ds",
) -> pd.DataFrame:
    """Episodes of every group of a long frame at once: ``service, start, end`` (vectorised)."""
    require_columns(df, [group_col, time_col, flag_col], "alarm frame")
    gap_td = as_timedelta(gap, "gap")
    hits = df.loc[df[flag_col].astype(bool), [group_col, time_col]].sort_values([group_col, time_col])
    if hits.empty:
        return pd.DataFrame(
            {"service": pd.Series([], dtype="string"), "start": pd.Series([], dtype=UTC_DTYPE),
             "end": pd.Series([], dtype=UTC_DTYPE)}
        )
    group = hits[group_col].to_numpy(dtype=object)
    same_group = np.r_[False, group[1:] == group[:-1]]
    close = hits[time_col].diff().le(gap_td).to_numpy(dtype=bool)
    episode = pd.Series(np.cumsum(~(same_group & close)), index=hits.index)
    out = hits.groupby(episode, sort=False).agg(
        service=(group_col, "first"), start=(time_col, "min"), end=(time_col, "max")
    )
    return out.reset_index(drop=True).astype({"service": "string"})


def match_pages(
    raised: pd.DataFrame, truth: pd.DataFrame, horizon: str | pd.Timedelta, grace: str | pd.Timedelta
) -> EventMetrics:
    """Raised incidents (``service, start, end``; an open one's NaT ``end`` is its start) matched
    to ground-truth incidents as alarm episodes (:func:`evaluate_alarms`). A ``truth`` with no rows
    (even no columns: a lake without incidents yet) makes every page a false alarm."""
    episodes = {
        str(service): list(zip(group["start"], group["end"].fillna(group["start"]), strict=True))
        for service, group in raised.groupby("service")
    } if len(raised) else {}
    if truth.empty:
        truth = pd.DataFrame({"service": pd.Series([], dtype="string"), "start": pd.Series([], dtype=UTC_DTYPE),
                              "end": pd.Series([], dtype=UTC_DTYPE)})
    return evaluate_alarms(episodes, truth, horizon=horizon, grace=grace)


def evaluate_alarms(
    episodes_by_service: Mapping[str, Sequence[Episode]] | pd.DataFrame,
    incidents: pd.DataFrame,
    horizon: str | pd.Timedelta,
    grace: str | pd.Timedelta,
) -> EventMetrics:
    """Match alarm episodes to incidents of the same service (see the module docstring).

    ``episodes_by_service`` is ``{service: [(start, end), ...]}`` or a frame ``service, start,
    end``; ``incidents`` needs ``service, start``. Recall and precision are 0 when there is
    nothing to detect or nothing was raised (never NaN), so a silent model cannot look perfect.
    """
    horizon_td, grace_td = as_timedelta(horizon, "horizon"), as_timedelta(grace, "grace")
    episodes = _episodes_to_frame(episodes_by_service)
    inc = _incident_windows(incidents, horizon_td, grace_td).reset_index(names="incident")
    eps = episodes.reset_index(names="episode")
    pairs = inc.merge(eps, on="service", suffixes=("", "_episode"))
    lead = pairs["start"] - pairs["start_episode"]
    detects = (lead <= pairs["early"]) & (lead >= -grace_td)
    repeats = (pairs["start_episode"] >= pairs["start"]) & (pairs["start_episode"] <= pairs["end"])
    matched_episodes = int(pairs.loc[detects | repeats, "episode"].nunique())
    pairs = pairs[detects].assign(lead=lead[detects])

    first_lead = pairs.groupby("incident")["lead"].max()  # earliest matching episode = longest lead
    detected = int(first_lead.size)
    n_inc, n_eps = len(inc), len(eps)
    recall = detected / n_inc if n_inc else 0.0
    precision = matched_episodes / n_eps if n_eps else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0
    median_lead = float(first_lead.dt.total_seconds().median() / 60.0) if detected else None
    return EventMetrics(
        recall=recall,
        precision=precision,
        f1=f1,
        median_lead_minutes=median_lead,
        detected=detected,
        missed=n_inc - detected,
        false_alarms=n_eps - matched_episodes,
    )


def event_f1_sweep(
    risk: pd.DataFrame,
    incidents: pd.DataFrame,
    thresholds: np.ndarray | Sequence[float],
    horizon: str | pd.Timedelta,
    grace: str | pd.Timedelta,
    gap: str | pd.Timedelta,
    *,
    score_col: str = "risk",
) -> np.ndarray:
    """Event-wise F1 of ``score >= t`` alarms for every threshold ``t``, in one pass over sorted arrays.

    The same figure as :func:`evaluate_alarms` on :func:`episodes_frame` of each threshold's
    alarms (``service, ds`` rows, episodes split by ``gap``), without building frames per
    threshold: choosing an operating point sweeps dozens of thresholds inside every fit.
    """
    require_columns(risk, ["service", "ds", score_col], "risk frame")
    horizon_td, grace_td = as_timedelta(horizon, "horizon"), as_timedelta(grace, "grace")
    gap_us = as_timedelta(gap, "gap") // pd.Timedelta(microseconds=1)
    frame = risk[["service", "ds", score_col]].sort_values(["service", "ds"], kind="stable")
    codes, names = pd.factorize(frame["service"].astype("string"), sort=True)
    ds = utc_series(frame["ds"], "risk.ds", allow_nat=True).to_numpy(dtype="datetime64[us]").astype(np.int64)
    score = frame[score_col].to_numpy(dtype="float64")
    inc = _incident_windows(incidents, horizon_td, grace_td)
    inc_code = pd.Index(names).get_indexer(inc["service"].astype(object))
    us = pd.Timedelta(microseconds=1)
    start = inc["start"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    early = (inc["early"] // us).to_numpy(dtype=np.int64)
    end = inc["end"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    grace_us = grace_td // us
    out = np.zeros(len(thresholds))
    for k, threshold in enumerate(np.asarray(thresholds, dtype="float64")):
        hit = score >= threshold
        svc, at = codes[hit], ds[hit]
        first = np.ones(len(at), dtype=bool)  # does each alarm row start an episode?
        first[1:] = (svc[1:] != svc[:-1]) | (np.diff(at) > gap_us)
        ep_svc, ep_start = svc[first], at[first]  # sorted by (service, start)
        matched = np.zeros(len(ep_start), dtype=bool)
        detected = 0
        for code, s, e, stop in zip(inc_code, start, early, end, strict=True):
            lo, hi = np.searchsorted(ep_svc, code, "left"), np.searchsorted(ep_svc, code, "right")
            mine = ep_start[lo:hi]
            a, b = lo + np.searchsorted(mine, s - e, "left"), lo + np.searchsorted(mine, s + grace_us, "right")
            detected += int(b > a)
            matched[a:b] = True
            matched[lo + np.searchsorted(mine, s, "left") : lo + np.searchsorted(mine, stop, "right")] = True
        recall = detected / len(inc) if len(inc) else 0.0
        precision = matched.sum() / len(ep_start) if len(ep_start) else 0.0
        out[k] = 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0
    return out


def _incident_windows(incidents: pd.DataFrame, horizon: pd.Timedelta, grace: pd.Timedelta) -> pd.DataFrame:
    """Per incident ``service, start, early, end``: alarms from ``start - early`` to ``start + grace``
    detect it, alarms from ``start`` to ``end`` repeat it (see the module docstring)."""
    require_columns(incidents, ["service", "start"], "incidents")
    start = utc_series(incidents["start"], "incidents.start", allow_nat=True)
    # How early an alarm may come and still count: the horizon, or back to the precursor's start
    # when the incident history knows it (a leak caught hours before the OOM is a true alarm).
    early = pd.Series(horizon, index=start.index)
    if "precursor_start" in incidents.columns:
        precursor = start - utc_series(incidents["precursor_start"], "incidents.precursor_start", allow_nat=True)
        early = precursor.where(precursor > horizon, horizon).fillna(horizon)
    # Alarms while the incident is still going on are repeats of it, not false alarms.
    end = utc_series(incidents["end"], "incidents.end", allow_nat=True) if "end" in incidents.columns else start
    end = end.where(end.notna() & (end > start + grace), start + grace)
    return pd.DataFrame(
        {"service": pd.Series(incidents["service"].to_numpy(), dtype="string"),
         "start": start.array, "early": early.array, "end": end.array}
    )


def time_split(
    df: pd.DataFrame, frac: float, *, time_col: str = "ds"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Holdout split by time: rows before the cut (``frac`` of the time span) and from it on."""
    require_columns(df, [time_col], "frame to split")
    if df.empty:
        raise SchemaError("cannot split an empty frame by time")
    cut = split_time(df[time_col], frac, floor=None)
    before = df[time_col] < cut
    return df[before], df[~before]


def rolling_origin_splits(
    df: pd.DataFrame, n_origins: int, test_frac: float, *, time_col: str = "ds"
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Expanding-window splits: ``n_origins`` consecutive test blocks of ``test_frac`` of the span each.

    The last block ends at the end of the data; each train part is everything before its block.
    """
    if n_origins < 1:
        raise ValueError(f"n_origins must be at least 1, got {n_origins}")
    if not 0.0 < test_frac * n_origins < 1.0:
        raise ValueError(f"n_origins * test_frac must be within (0, 1), got {n_origins} * {test_frac}")
    start, end = df[time_col].min(), df[time_col].max()
    span = end - start
    for k in range(n_origins, 0, -1):
        lo = end - span * test_frac * k
        hi = end - span * test_frac * (k - 1)
        test_mask = (df[time_col] >= lo) & ((df[time_col] < hi) if k > 1 else (df[time_col] <= hi))
        yield df[df[time_col] < lo], df[test_mask]


def _episodes_to_frame(episodes: Mapping[str, Sequence[Episode]] | pd.DataFrame) -> pd.DataFrame:
    """Normalise the accepted episode shapes into a frame ``service, start, end`` (UTC)."""
    if isinstance(episodes, pd.DataFrame):
        require_columns(episodes, list(EPISODE_COLUMNS), "episodes")
        frame = episodes[list(EPISODE_COLUMNS)]
    else:
        rows = [(service, s, e) for service, eps in episodes.items() for s, e in eps]
        frame = pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
    return pd.DataFrame(
        {"service": pd.Series(frame["service"].to_numpy(), dtype="string"),
         "start": utc_series(frame["start"], "episodes.start", allow_nat=True).array,
         "end": utc_series(frame["end"], "episodes.end", allow_nat=True).array}
    )
