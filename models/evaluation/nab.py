"""NAB scoring of a detector over a labelled corpus, in memory: what ``foresight bench nab``
prints and the train flow logs with each anomaly-detector version.

The detector defaults to the detect flow's (``DetectConfig.detector``). Every file is one series
scored causally from its first row: a streaming detector (``streaming`` or any registry detector
with a ``make_state`` method: ``knn``, ``streaming_knn``, ``streaming_ensemble``) sees each
row once, in order, and its score at row ``t`` depends on rows ``<= t`` only. Detectors that
learn nothing and score a whole series causally in one pass (``series_scores``: ``robust_z``,
``robust_z_nms``) score each file that way. Registry detectors
that need ``fit`` (``robust_seasonal``, ``rolling_zscore``) are first fitted on the file's
probationary rows, which NAB leaves unscored for exactly that purpose, and then refitted every
``refit_every`` (default one day, as the scheduled train flow does) on all rows before the block
they score: still causal, and what the detector would have scored in production. With
``refit_every=None`` the probationary fit scores the whole file.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.anomaly.base import DETECTORS
from models.anomaly.daily_cycle import daily_season, infer_step, phases
from models.anomaly.streaming import StreamingState
from models.evaluation.nab_scoring import (
    FileSweep,
    Profile,
    ProfileScore,
    probationary_length,
    score_corpus,
    sweep_file,
)

STREAMING = "streaming"
# Fit-based detectors are refitted this often while a file streams by: the train flow's schedule.
REFIT_EVERY = pd.Timedelta(days=1)
StateFactory = Callable[[np.ndarray], Any]  # daily season per series -> state with update(y, phase)
Windows = Mapping[str, Sequence[tuple[pd.Timestamp, pd.Timestamp]]]


@dataclass(frozen=True)
class NabRun:
    """What ``bench nab`` measured: scores per profile, at the production threshold, and timings."""

    detector: str
    files: int
    rows: int
    optimised: dict[str, ProfileScore]
    production: dict[str, ProfileScore]
    production_threshold: float
    detect_seconds: float
    total_seconds: float

    def table(self) -> list[dict[str, Any]]:
        """One row per profile and threshold choice (corpus-optimised, production)."""
        return [
            {"profile": s.profile, "threshold_from": label, "score": s.score, "threshold": s.threshold,
             "hit": s.tp, "missed": s.fn, "false_positives": s.fp}
            for label, scores in (("optimised", self.optimised), ("production", self.production))
            for s in scores.values()
        ]

    def metrics(self) -> dict[str, float]:
        """Flat figures for a model registry: ``nab_<profile>`` at the corpus-optimised threshold,
        ``nab_<profile>_production`` at the production one."""
        short = {"standard": "standard", "reward_low_FP_rate": "low_fp", "reward_low_FN_rate": "low_fn"}
        out: dict[str, float] = {}
        for suffix, scores in (("", self.optimised), ("_production", self.production)):
            for name, s in scores.items():
                out[f"nab_{short.get(name, name)}{suffix}"] = s.score
        out["nab_production_threshold"] = self.production_threshold
        return out


def stream_scores(frames: list[pd.DataFrame], make_state: StateFactory | None = None) -> list[np.ndarray]:
    """Scores of every file with a streaming state (by default the ``streaming`` detector's):
    one state holds every file as its own series and is fed one row of each per step (each
    file's step and daily season are inferred from its first rows), so each file is still
    scored causally, row by row."""
    steps = [infer_step(f["timestamp"].iloc[:50]) for f in frames]
    season = np.array([daily_season(step) for step in steps])
    state = (make_state or (lambda s: StreamingState(len(s), s)))(season)
    length = max(len(f) for f in frames)
    values = np.full((length, len(frames)), np.nan)
    phase = np.zeros((length, len(frames)), dtype=np.int64)
    for j, (frame, step) in enumerate(zip(frames, steps, strict=True)):
        values[: len(frame), j] = frame["value"].to_numpy()
        phase[: len(frame), j] = phases(frame["timestamp"], step)
    scores = np.empty_like(values)
    for t in range(length):
        scores[t] = state.update(values[t], phase[t])
    return [scores[: len(frame), j] for j, frame in enumerate(frames)]


def registry_scores(
    detector: str, refit_every: pd.Timedelta | None = REFIT_EVERY
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Scores from a registry detector fitted on the file's probationary rows, then (unless
    ``refit_every`` is None) refitted every ``refit_every`` on the rows before each block."""

    def run(frame: pd.DataFrame) -> np.ndarray:
        ds = (
            frame["timestamp"].dt.tz_localize("UTC")
            if frame["timestamp"].dt.tz is None
            else frame["timestamp"]
        )
        # Telemetry frames refuse repeated timestamps (a few NAB files repeat one at a clock
        # change): the later sample is scored and its score given to every row at that time.
        long = pd.DataFrame({"unique_id": "nab", "ds": ds, "y": frame["value"]})
        unique = long.drop_duplicates("ds", keep="last")
        first_cut = ds.iloc[max(probationary_length(len(frame)), 2) - 1]
        last = unique["ds"].iloc[-1]
        cuts = [first_cut]
        if refit_every is not None:
            cuts += list(pd.date_range(first_cut + refit_every, last, freq=refit_every, inclusive="left"))
        # Block k (rows after cut k up to cut k+1) is scored by a model fitted on rows <= cut k;
        # block 0 also holds the probationary rows (in-sample, and unscored by NAB).
        block = pd.DatetimeIndex(cuts[1:], dtype=unique["ds"].dtype).searchsorted(unique["ds"], side="left")
        parts = [
            DETECTORS.get(detector)().fit(unique[unique["ds"] <= cut]).predict(unique[block == k])
            for k, cut in enumerate(cuts)
            if (block == k).any()
        ]
        scored = pd.concat(parts).set_index("ds")["score"]
        return scored.reindex(ds).to_numpy()

    return run


@dataclass(frozen=True)
class ScoredFile:
    """One file's clipped scores and its NAB labels (1 inside a window), as scored."""

    key: str
    scores: np.ndarray
    labels: np.ndarray


def evaluate_corpus(
    files: Mapping[str, pd.DataFrame],
    windows: Windows,
    profiles: Mapping[str, Profile],
    detector: str,
    production_threshold: float,
    refit_every: pd.Timedelta | None = REFIT_EVERY,
) -> tuple[NabRun, list[ScoredFile]]:
    """Score every file (``key -> timestamp, value`` frames, in order) with ``detector``, then
    the corpus under every profile at its optimised threshold and at ``production_threshold``."""
    started = time.perf_counter()
    keys, frames = list(files), list(files.values())
    registered: Any = DETECTORS.get(detector)  # an unknown name raises, listing the choices
    if detector == STREAMING:
        all_scores = stream_scores(frames)
    elif hasattr(registered, "series_scores"):  # causal, nothing learned: one pass per file
        model = registered()
        all_scores = [model.series_scores(frame["timestamp"], frame["value"].to_numpy()) for frame in frames]
    elif hasattr(registered, "make_state"):  # a streaming state: fed row by row
        make_state = registered().make_state
        if "names" in inspect.signature(make_state).parameters:  # per-series settings follow the file, not its position
            make_state = functools.partial(make_state, names=keys)
        all_scores = stream_scores(frames, make_state)
    else:
        scorer = registry_scores(detector, refit_every)
        all_scores = [scorer(frame) for frame in frames]
    detect_seconds = time.perf_counter() - started
    sweeps: list[FileSweep] = []
    scored: list[ScoredFile] = []
    for key, frame, raw in zip(keys, frames, all_scores, strict=True):
        scores = np.clip(np.nan_to_num(np.asarray(raw, dtype="float64"), nan=0.0), 0.0, 1.0)
        if scores.shape != (len(frame),):
            raise ValueError(f"{detector} returned {scores.shape} scores for {len(frame)} rows of {key}")
        sweep = sweep_file(key, frame["timestamp"], scores, list(windows[key]))
        sweeps.append(sweep)
        scored.append(ScoredFile(key, scores, sweep.labels()))
    run = NabRun(
        detector, len(frames), sum(len(f) for f in frames), score_corpus(sweeps, profiles),
        score_corpus(sweeps, profiles, threshold=production_threshold), production_threshold, detect_seconds,
        time.perf_counter() - started,
    )
    return run, scored
