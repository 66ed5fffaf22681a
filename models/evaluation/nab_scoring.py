"""NAB scoring (Numenta Anomaly Benchmark), implemented from the paper and NAB's documented rules.

Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly
Benchmark" (ICMLA 2015, arXiv 1510.03336), as NAB 1.x scores it:

- Each labelled anomaly window ``[start, end]`` (row indices ``l..r``, width ``w = r - l + 1``)
  rewards its *best* detection only (the earliest, since the reward falls with position):
  a detection at row ``i`` is worth ``A_TP * S(-(r - i + 1) / w) / S(-1)`` with the scaled
  sigmoid ``S(x) = 2 / (1 + exp(5x)) - 1`` (``S(x) = -1`` for ``x >= 3``). A window's first row
  is worth exactly ``A_TP``; its last is worth almost nothing. Later detections in the same
  window neither add nor cost anything.
- A window without a detection costs ``A_FN``.
- Every detection outside a window costs ``A_FP * S(d)`` where ``d = (i - r_prev) / (w_prev - 1)``
  is its distance past the preceding window's end relative to that window's width: right after
  a window the penalty is ~0 (a late detection of the same anomaly), from ``d >= 3`` (and
  everywhere before the first window) it is the full ``A_FP``.
- Rows of the probationary period (the first 15 % of each file, at most ``0.15 * 5000`` = 750
  rows, as NAB's sweeper computes it) are not scored: detectors may learn there.
- A detection is a row whose anomaly score is ``>= threshold``. One threshold per profile is
  chosen for the whole corpus: the one maximising the summed raw score over every threshold the
  scores allow (NAB's sweep).
- Reported scores are normalised per profile: ``100 * (raw - null) / (perfect - null)``, with the
  null detector (no detection: every window missed) at 0 and the perfect one (a detection at the
  first scorable row of every window) at 100.

Pure numpy/pandas over in-memory arrays; :mod:`connectors.labels.nab_corpus` does the file I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PROBATION_PERCENT = 0.15
_NOT_IN_WINDOW = -1
_PROBATIONARY = -2


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB scoring profile (the application's relative costs)."""

    name: str
    tp: float
    fp: float
    fn: float


def as_profiles(weights: Mapping[str, tuple[float, float, float]]) -> dict[str, Profile]:
    """Profiles from ``{name: (tp, fp, fn)}`` weights (as :func:`connectors.labels.nab_corpus.read_profiles`
    reads NAB's ``profiles.json``)."""
    return {name: Profile(name, float(tp), float(fp), float(fn)) for name, (tp, fp, fn) in weights.items()}


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(p * n), p * 5000)``, rounded up."""
    return int(math.ceil(min(math.floor(percent * n_rows), percent * 5000)))


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's reward curve: ~0.987 at -1 (window start), 0 at 0 (window end), -1 from 3 on."""
    x = np.asarray(position, dtype="float64")
    value = 2.0 / (1.0 + np.exp(np.clip(5.0 * x, -700, 700))) - 1.0
    return np.where(x >= 3.0, -1.0, value)


_MAX_TP = float(scaled_sigmoid(-1.0))


def window_bounds(
    timestamps: pd.Series | pd.DatetimeIndex, windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]]
) -> list[tuple[int, int]]:
    """Row index ranges ``(l, r)`` (inclusive) of each window: from the first row at or after its
    start through the run of rows that follows it up to its end. Real NAB files repeat or step
    back a few timestamps (clock changes); like NAB, rows are taken in file order. Windows
    holding no row are dropped."""
    ts = np.asarray(pd.DatetimeIndex(timestamps).as_unit("ns").asi8)
    bounds = []
    for start, end in windows:
        lo_t, hi_t = pd.Timestamp(start).as_unit("ns").value, pd.Timestamp(end).as_unit("ns").value
        after = np.flatnonzero(ts >= lo_t)
        if after.size == 0 or ts[after[0]] > hi_t:
            continue
        lo = int(after[0])
        beyond = np.flatnonzero(ts[lo:] > hi_t)
        hi = lo + int(beyond[0]) - 1 if beyond.size else ts.size - 1
        bounds.append((lo, hi))
    return bounds


@dataclass(frozen=True)
class FileSweep:
    """Per-row scoring context of one file: which window a row is in and what detecting it is worth."""

    name: str
    scores: np.ndarray  # detector anomaly scores
    window: np.ndarray  # window number within the file, -1 outside windows, -2 probationary
    tp_value: np.ndarray  # unweighted TP reward S(pos) / S(-1) (in-window rows)
    fp_value: np.ndarray  # unweighted FP reward S(d), in [-1, 0] mostly (out-of-window rows)
    n_windows: int  # windows with at least one scorable row
    bounds: tuple[tuple[int, int], ...] = ()  # row ranges (inclusive) of the file's windows

    def labels(self) -> np.ndarray:
        """1 inside a window (probationary rows included), else 0."""
        out = np.zeros(self.scores.size, dtype=np.int64)
        for lo, hi in self.bounds:
            out[lo : hi + 1] = 1
        return out


def sweep_file(
    name: str,
    timestamps: pd.Series | pd.DatetimeIndex,
    scores: np.ndarray,
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    probation_percent: float = PROBATION_PERCENT,
) -> FileSweep:
    """Label every row of one file with its window and its (unweighted) TP / FP value."""
    scores = np.asarray(scores, dtype="float64")
    n = scores.size
    if len(timestamps) != n:
        raise ValueError(f"{name}: {len(timestamps)} timestamps but {n} anomaly scores")
    if np.isnan(scores).any():
        raise ValueError(f"{name}: anomaly scores contain NaN")
    bounds = window_bounds(timestamps, windows)
    window = np.full(n, _NOT_IN_WINDOW, dtype=np.int64)
    tp_value = np.zeros(n)
    fp_value = np.full(n, -1.0)  # before any window: full FP cost
    idx = np.arange(n)
    for k, (lo, hi) in enumerate(bounds):
        if k and lo <= bounds[k - 1][1]:
            raise ValueError(f"{name}: anomaly windows overlap")
        width = hi - lo + 1
        window[lo : hi + 1] = k
        tp_value[lo : hi + 1] = scaled_sigmoid(-(hi - idx[lo : hi + 1] + 1) / width) / _MAX_TP
        after_end = bounds[k + 1][0] if k + 1 < len(bounds) else n
        distance = (
            (idx[hi + 1 : after_end] - hi) / (width - 1) if width > 1 else np.full(after_end - hi - 1, 3.0)
        )
        fp_value[hi + 1 : after_end] = scaled_sigmoid(distance)
    probation = probationary_length(n, probation_percent)
    scored_windows = {int(w) for w in window[probation:] if w >= 0}
    window[:probation] = _PROBATIONARY
    return FileSweep(
        name=name,
        scores=scores,
        window=window,
        tp_value=tp_value,
        fp_value=fp_value,
        n_windows=len(scored_windows),
        bounds=tuple(bounds),
    )


@dataclass(frozen=True)
class ProfileScore:
    """A detector's result under one profile: threshold, raw and normalised score, counts."""

    profile: str
    threshold: float
    score: float  # normalised: null 0, perfect 100
    raw: float
    null: float
    perfect: float
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # detections outside windows
    per_file: dict[str, float] = field(default_factory=dict)  # raw score per file


def _perfect_raw(sweeps: Sequence[FileSweep], profile: Profile) -> float:
    """Best possible raw score: each window's most valuable scorable row detected, nothing else."""
    total = 0.0
    for sw in sweeps:
        for k in range(len(sw.bounds)):
            in_window = sw.window == k
            if in_window.any():
                total += profile.tp * float(sw.tp_value[in_window].max())
    return total


def file_raw_score(sweep: FileSweep, profile: Profile, threshold: float) -> tuple[float, int, int, int]:
    """Raw score of one file at ``threshold`` and its (TP windows, FN windows, FP rows)."""
    scorable = sweep.window != _PROBATIONARY
    detected = scorable & (sweep.scores >= threshold)
    outside = detected & (sweep.window == _NOT_IN_WINDOW)
    raw = profile.fp * float(sweep.fp_value[outside].sum())
    tp = fn = 0
    for k in np.unique(sweep.window[scorable & (sweep.window >= 0)]):
        hits = detected & (sweep.window == k)
        if hits.any():
            raw += profile.tp * float(sweep.tp_value[hits].max())
            tp += 1
        else:
            raw -= profile.fn
            fn += 1
    return raw, tp, fn, int(outside.sum())


def score_at_threshold(sweeps: Sequence[FileSweep], profile: Profile, threshold: float) -> ProfileScore:
    """The corpus score of one profile with every file thresholded at ``threshold``."""
    per_file: dict[str, float] = {}
    tp = fn = fp = 0
    for sw in sweeps:
        raw, t, f, p = file_raw_score(sw, profile, threshold)
        per_file[sw.name] = raw
        tp, fn, fp = tp + t, fn + f, fp + p
    raw_total = float(sum(per_file.values()))
    null = -profile.fn * sum(sw.n_windows for sw in sweeps)
    perfect = _perfect_raw(sweeps, profile)
    return ProfileScore(
        profile.name,
        threshold,
        normalise(raw_total, null, perfect),
        raw_total,
        null,
        perfect,
        tp,
        fn,
        fp,
        per_file,
    )


def normalise(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``; 0 when the corpus has no scorable window."""
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0


def raw_score_by_threshold(sweeps: Sequence[FileSweep], profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate threshold (descending, starting above every score) and the corpus raw score
    there. Vectorised sweep: rows sorted by score; a window's contribution rises from ``-A_FN`` to
    its best detection so far, a row outside windows adds its FP cost."""
    keys, scores, values, is_window = [], [], [], []
    offset = 0
    for sw in sweeps:
        keep = sw.window != _PROBATIONARY
        win = sw.window[keep]
        inside = win >= 0
        keys.append(np.where(inside, win + offset, -1))
        scores.append(sw.scores[keep])
        values.append(np.where(inside, profile.tp * sw.tp_value[keep], profile.fp * sw.fp_value[keep]))
        is_window.append(inside)
        offset += len(sw.bounds)
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    score = np.concatenate(scores) if scores else np.zeros(0)
    value = np.concatenate(values) if values else np.zeros(0)
    inside = np.concatenate(is_window) if is_window else np.zeros(0, dtype=bool)
    null = -profile.fn * sum(sw.n_windows for sw in sweeps)
    order = np.argsort(-score, kind="stable")
    key, score, value, inside = key[order], score[order], value[order], inside[order]
    delta = np.where(inside, 0.0, value)
    if inside.any():
        # Running best value of each window in threshold order; each improvement adds its gain.
        frame = pd.DataFrame({"key": key[inside], "value": value[inside]})
        best = frame.groupby("key")["value"].cummax().to_numpy()
        previous = frame.assign(best=best).groupby("key")["best"].shift(1).fillna(-profile.fn).to_numpy()
        delta[inside] = best - previous
    running = null + np.cumsum(delta)
    # A threshold equal to a score includes every row with that score: keep the last row of each tie.
    last_of_tie = np.r_[score[1:] != score[:-1], True] if score.size else np.zeros(0, dtype=bool)
    thresholds = np.r_[np.inf, score[last_of_tie]]
    raws = np.r_[null, running[last_of_tie]]
    return thresholds, raws


def best_threshold(sweeps: Sequence[FileSweep], profile: Profile) -> float:
    """The corpus threshold with the highest raw score (the highest such threshold on ties)."""
    thresholds, raws = raw_score_by_threshold(sweeps, profile)
    best = int(np.argmax(raws))  # first maximum = highest threshold
    threshold = float(thresholds[best])
    return (
        threshold
        if np.isfinite(threshold)
        else float(np.nextafter(np.max([sw.scores.max() for sw in sweeps]), np.inf))
    )


def score_corpus(
    sweeps: Sequence[FileSweep], profiles: Mapping[str, Profile], threshold: float | None = None
) -> dict[str, ProfileScore]:
    """Per profile: the score at its optimised corpus threshold (or at ``threshold`` when given)."""
    if not sweeps:
        raise ValueError("no files to score")
    return {
        name: score_at_threshold(
            sweeps, profile, best_threshold(sweeps, profile) if threshold is None else threshold
        )
        for name, profile in profiles.items()
    }
