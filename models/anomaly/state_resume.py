"""The per-series detector's state kept between detect runs, and scores resumed from it.

``predict`` replays a stepped detector (:mod:`models.anomaly.stepped`) over its whole frame: in
the detect flow, the detector's context (about two weeks) and the reported window, every run. A
:class:`SeriesState` keeps the online state of one batch of series after the last grid row it
fed, so the next run feeds only the rows after it (:func:`advance_scores`): the cost grows with
new data, not with history. :func:`replay_scores` is ``predict`` keeping its state, and both feed
rows through :func:`~models.anomaly.stepped.feed_rows` on the grid of the first replay (same
origin, same phases, same block ends), so the scores of a chain of resumed runs are those of one
replay over all the data, bit for bit (the state pickles exactly).

The scores of the reported window (the flow's ``lookback``) already computed are kept with the
state (:attr:`SeriesState.kept`), so a resumed run returns the window's scores as a replay does:
the roll-up mode builds its incidents from them, the Pushgateway shows each series' newest.

A state is used only when it fits (:func:`unusable_reason`, else a full replay and why): the
same champion version, detector parameters and grid step (:class:`DetectorStateKey`), this state
format; the loaded telemetry reaches back to its last row (the flow loads the detector's context
before the window, so a state older than that context, or with a gap in the lake longer than it,
replays: that is the history its scores depend on) and not past its end (a rebuilt lake); no
series it does not score; the kept scores cover the reported window.

**Late samples**: a sample for a row at or before the last row fed is not rescored (its score is
the one kept, 0 when it was missing then); those not there when their row was fed are counted
(:attr:`SeriesState.fed`, up to :data:`LATE_HORIZON` back). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, validate_telemetry
from models.anomaly.base import SCORE_COL
from models.anomaly.daily_cycle import daily_season
from models.anomaly.grid import prepend_context, to_grid
from models.anomaly.stepped import OnlineState, SteppedDetector, feed_rows, fresh_state

# Raised whenever a stepped state or this module's state changes shape: an older checkpoint then
# replays instead of being stepped with attributes it lacks.
STATE_FORMAT = 1
LATE_HORIZON = pd.Timedelta(days=1)


@dataclass(frozen=True)
class DetectorStateKey:
    """What a state was built by: the champion's version and a hash of the detector's name,
    parameters and grid step (:func:`detector_key`)."""

    model_version: str
    params_hash: str
    state_format: int = STATE_FORMAT


def detector_key(detector: SteppedDetector, model_version: str) -> DetectorStateKey:
    """The key of ``detector``'s states as registered under ``model_version``."""
    described = {"detector": detector.name, "params": detector.get_params(), "step": str(detector.step_)}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return DetectorStateKey(str(model_version), digest)


@dataclass
class Newest:
    """Each series' newest sample scored: its time (epoch ns, ``NO_SAMPLE`` if none), value, score."""

    ds: np.ndarray
    y: np.ndarray
    score: np.ndarray

    def update(self, cols: np.ndarray, ds: np.ndarray, y: np.ndarray, score: np.ndarray) -> None:
        """Take rows sorted by series then time: the last one of each series is its newest."""
        last = np.r_[cols[1:] != cols[:-1], True] if cols.size else np.zeros(0, dtype=bool)
        self.ds[cols[last]], self.y[cols[last]], self.score[cols[last]] = ds[last], y[last], score[last]


NO_SAMPLE = np.iinfo(np.int64).min


@dataclass
class SeriesState:
    """One batch's online state after grid row ``last_row`` of the grid from ``origin``; the
    clipped scores of rows ``kept_from .. last_row`` (None: only each series' newest is kept,
    what the stream mode's run reports) and the samples fed per recent row."""

    ids: tuple[str, ...]
    origin: pd.Timestamp  # row 0: midnight UTC of the first replay's first sample
    step: pd.Timedelta
    online: OnlineState
    last_row: int
    kept_from: int
    kept: np.ndarray | None  # (last_row - kept_from + 1, len(ids))
    newest: Newest
    fed: dict[int, int] = field(default_factory=dict)  # row -> samples fed at it (LATE_HORIZON back)

    @property
    def last_step(self) -> pd.Timestamp:
        return self.origin + self.last_row * self.step

    def row_of(self, ds: pd.Series | pd.Timestamp) -> np.ndarray:
        """Grid rows of timestamps (the nearest row, as :func:`~models.anomaly.grid.to_grid` snaps)."""
        offsets = (pd.Series(ds) - self.origin) / self.step
        return np.rint(offsets.to_numpy(dtype="float64")).astype(np.int64)

    def first_row_at(self, since: pd.Timestamp) -> int:
        """A row at or before the first one a sample at or after ``since`` can snap to."""
        return int(np.floor((pd.Timestamp(since) - self.origin) / self.step - 0.5))


@dataclass
class DetectorState:
    """The detector states of every batch of series, and the key they were built under."""

    key: DetectorStateKey
    parts: list[SeriesState]

    @property
    def last_step(self) -> pd.Timestamp | None:
        return max((p.last_step for p in self.parts), default=None)


@dataclass(frozen=True)
class ResumeReport:
    """What a run did with a kept state (the detector's here, the incident stream's in
    :mod:`models.incidents.stream_resume`): resumed or replayed (and why), steps fed (for the
    detector, the most of any batch), late samples, the last step's time."""

    resumed: bool
    full_replay_reason: str  # "" when resumed
    steps_scored: int
    late_samples: int
    last_step: pd.Timestamp | None

    def as_dict(self) -> dict[str, object]:
        return {
            "resumed": self.resumed,
            "full_replay_reason": self.full_replay_reason,
            "steps_scored": self.steps_scored,
            "late_samples": self.late_samples,
            "last_step": None if self.last_step is None else self.last_step.isoformat(),
        }


@dataclass(frozen=True)
class PartScores:
    """One batch's scores from ``since`` (``unique_id, ds, y, score``), its state, rows fed, late samples."""

    scores: pd.DataFrame
    state: SeriesState
    steps: int
    late: int


def replay_scores(detector: SteppedDetector, telemetry: pd.DataFrame, since: pd.Timestamp,
                  keep_window: bool = True) -> PartScores:
    """``detector.predict(telemetry)`` from ``since`` on, keeping the state it ends with (and,
    with ``keep_window``, the scores from ``since``): the same grid, context and rows as
    ``predict``, so the same scores."""
    df = validate_telemetry(telemetry)
    frame, is_input = prepend_context(df, detector.context_)
    grid = to_grid(frame, detector.step_)
    online = fresh_state(detector, [str(i) for i in grid.ids])
    wide = _clipped(feed_rows(online, grid.values, 0, daily_season(detector.step_)))
    origin = frame[TIME_COL].min().floor("1D")
    last_row = grid.values.shape[0] - 1
    n = len(grid.ids)
    newest = Newest(np.full(n, NO_SAMPLE, dtype=np.int64), np.full(n, np.nan), np.zeros(n))
    newest.update(grid.cols, _ns(frame[TIME_COL]), frame[TARGET_COL].to_numpy(dtype="float64"), wide[grid.rows, grid.cols])
    state = SeriesState(tuple(str(i) for i in grid.ids), origin, pd.Timedelta(detector.step_), online,
                        last_row, 0, None, newest)
    if keep_window:
        state.kept_from = min(max(state.first_row_at(since), 0), last_row + 1)
        state.kept = wide[state.kept_from:]
    fed = np.isfinite(grid.values).sum(axis=1)
    state.fed = _recent_fed(state, {r: int(fed[r]) for r in range(max(last_row - _horizon_rows(state), 0), last_row + 1)})
    scores = df.assign(**{SCORE_COL: wide[grid.rows, grid.cols][is_input]})
    return PartScores(scores[scores[TIME_COL] >= since].reset_index(drop=True), state, last_row + 1, 0)


def advance_scores(state: SeriesState, telemetry: pd.DataFrame, since: pd.Timestamp) -> PartScores:
    """Feed the rows of ``telemetry`` (this batch's series) after ``state.last_row`` to its state
    (updated in place). The scores from ``since``: with the window kept, every row's (kept ones,
    then the new rows'); else the new rows' and, for a series without one, its newest sample's."""
    ids = pd.Index(state.ids)
    # only the rows a run reads: late samples a day back, the new rows and a kept window
    first = state.last_step - LATE_HORIZON if state.kept is None else min(pd.Timestamp(since), state.last_step - LATE_HORIZON)
    recent = telemetry[telemetry[TIME_COL] >= first]
    recent = recent[recent[ID_COL].astype(str).isin(ids)]
    old = recent[TIME_COL] <= state.last_step + state.step / 2  # can only snap to a row already fed
    late = _late_samples(state, state.row_of(recent.loc[old, TIME_COL]))
    df = validate_telemetry(recent if state.kept is not None else recent[~old], allow_empty=True)
    rows, cols = state.row_of(df[TIME_COL]), ids.get_indexer(df[ID_COL].astype(str))
    last = state.last_row
    new = rows > last
    top = int(rows.max(initial=last))
    values = np.full((top - last, len(ids)), np.nan)
    y = df[TARGET_COL].to_numpy(dtype="float64")
    values[rows[new] - last - 1, cols[new]] = y[new]  # later sample wins
    fresh = _clipped(feed_rows(state.online, values, last + 1, daily_season(state.step)))
    counts = np.isfinite(values).sum(axis=1)
    state.last_row = top
    state.fed = _recent_fed(state, state.fed | {last + 1 + k: int(c) for k, c in enumerate(counts)})
    score = np.zeros(len(df))
    score[new] = fresh[rows[new] - last - 1, cols[new]]
    state.newest.update(cols[new], _ns(df.loc[new, TIME_COL]), y[new], score[new])
    if state.kept is None:
        return PartScores(_with_newest(state, df[new].assign(**{SCORE_COL: score[new]}), since), state, len(fresh), late)
    state.kept = np.concatenate([state.kept, fresh]) if len(fresh) else state.kept
    keep_from = max(state.first_row_at(since), state.kept_from)
    state.kept, state.kept_from = state.kept[keep_from - state.kept_from:], keep_from
    wanted = (df[TIME_COL] >= since).to_numpy() & (rows >= state.kept_from)
    scores = df[wanted].assign(**{SCORE_COL: state.kept[rows[wanted] - state.kept_from, cols[wanted]]})
    return PartScores(scores.reset_index(drop=True), state, len(fresh), late)


def _with_newest(state: SeriesState, scores: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame:
    """``scores`` and, for the series with none there, their newest sample at or after ``since``."""
    missing = ~pd.Index(state.ids).isin(scores[ID_COL].astype(str).unique())
    missing &= state.newest.ds >= pd.Timestamp(since).value
    if not missing.any():
        return scores.reset_index(drop=True)
    held = pd.DataFrame({ID_COL: pd.Series(np.asarray(state.ids)[missing], dtype="string"),
                         TIME_COL: pd.to_datetime(state.newest.ds[missing], utc=True).astype(scores[TIME_COL].dtype),
                         TARGET_COL: state.newest.y[missing], SCORE_COL: state.newest.score[missing]})
    return pd.concat([held, scores], ignore_index=True)


def unusable_reason(state: DetectorState, key: DetectorStateKey, telemetry: pd.DataFrame,
                    since: pd.Timestamp, catalogued: Collection[str] | None = None,
                    keep_window: bool = True) -> str | None:
    """Why ``state`` cannot be resumed on ``telemetry`` (its series in ``catalogued``, when
    given) with the window from ``since`` (None: it can); ``keep_window``: the run needs the
    window's scores, not only each series' newest."""
    if state.key.state_format != key.state_format:
        return f"checkpoint state format {state.key.state_format}, this version writes {key.state_format}"
    if state.key.model_version != key.model_version:
        return f"champion changed (checkpoint of version {state.key.model_version}, now {key.model_version})"
    if state.key.params_hash != key.params_hash:
        return "detector parameters or grid step changed since the checkpoint"
    if telemetry.empty or not state.parts:
        return "no telemetry or no scored series to resume"
    if keep_window and any(part.kept is None for part in state.parts):
        return "the checkpoint kept no window of scores (the incident mode changed to one that reads them?)"
    loaded_from = telemetry[TIME_COL].min()
    earliest = min(part.last_step for part in state.parts)
    if loaded_from > earliest:
        return (f"checkpoint at {earliest.isoformat()} is older than the loaded window "
                f"(from {pd.Timestamp(loaded_from).isoformat()}): a gap longer than the detector's context")
    # Series and their newest sample from the rows a resumed run reads (not the whole history)
    recent = telemetry[telemetry[TIME_COL] > earliest - LATE_HORIZON]
    span = recent.groupby(recent[ID_COL].astype(str), sort=False)[TIME_COL].max()
    present = set(span.index) if catalogued is None else set(span.index) & set(map(str, catalogued))
    unscored = present - {uid for part in state.parts for uid in part.ids}
    if unscored:
        return f"{len(unscored)} series the checkpointed detector state does not score (e.g. {min(unscored)})"
    for part in state.parts:
        newest = span.loc[span.index.intersection(list(part.ids))]
        if newest.empty:
            continue  # every series of the batch held back: its state waits
        if newest.max() < part.last_step:
            return (f"checkpoint at {part.last_step.isoformat()} is ahead of the newest telemetry "
                    f"({pd.Timestamp(newest.max()).isoformat()})")
        if part.kept is not None and max(part.first_row_at(since), 0) < part.kept_from:  # none before row 0
            return (f"the kept scores start at {(part.origin + part.kept_from * part.step).isoformat()}, "
                    f"after the reported window's start {pd.Timestamp(since).isoformat()} (a longer lookback?)")
    return None


def state_of(key: DetectorStateKey, parts: Sequence[PartScores]) -> DetectorState:
    return DetectorState(key, [p.state for p in parts])


def _ns(ds: pd.Series) -> np.ndarray:
    return ds.dt.as_unit("ns").astype("int64").to_numpy()


def _clipped(raw: np.ndarray) -> np.ndarray:
    """Scores as ``predict`` reports them: NaN (not enough history) as 0, within [0, 1]."""
    return np.clip(np.nan_to_num(raw, nan=0.0), 0.0, 1.0)


def _horizon_rows(state: SeriesState) -> int:
    return int(LATE_HORIZON / state.step)


def _recent_fed(state: SeriesState, fed: dict[int, int]) -> dict[int, int]:
    first = state.last_row - _horizon_rows(state)
    return {r: n for r, n in fed.items() if r > first}


def _late_samples(state: SeriesState, old_rows: np.ndarray) -> int:
    """Samples at already fed rows (within :data:`LATE_HORIZON`) beyond those fed there."""
    if not old_rows.size:
        return 0
    recent = old_rows[old_rows > state.last_row - _horizon_rows(state)]
    rows, counts = np.unique(recent, return_counts=True)
    fed = np.array([state.fed.get(int(r), 0) for r in rows], dtype=np.int64)
    return int(np.clip(counts - fed, 0, None).sum())
