"""``foresight bench nab``: run a detector over a NAB-layout corpus as streams, write NAB result
files, score them with :mod:`bench.nab_scoring`.

Layout read (NAB's own): ``DATA/data/<category>/<name>.csv`` (``timestamp,value``),
``DATA/labels/combined_windows.json`` and ``DATA/labels/profiles.json``.
Layout written: ``RESULTS/<category>/<detector>_<name>.csv`` with
``timestamp,value,anomaly_score,label`` (one row per input row, in order; label 1 inside a window).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.nab_scoring import (
    FileSweep,
    ProfileScore,
    load_profiles,
    load_windows,
    probationary_length,
    score_corpus,
    sweep_file,
)

STREAMING = "streaming"
# Fit-based detectors are refitted this often while a file streams by: the train flow's schedule.
REFIT_EVERY = pd.Timedelta(days=1)
StateFactory = Callable[[np.ndarray], Any]  # daily season per series -> state with update(y, phase)


def load_detectors() -> Any:
    """The detector registry with every built-in detector registered."""
    from models.anomaly.base import detectors

    return detectors()


@dataclass(frozen=True)
class NabFile:
    """One corpus file: its key in the label file (``<category>/<name>.csv``) and its rows."""

    key: str
    frame: pd.DataFrame  # timestamp (datetime64), value (float)

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def stem(self) -> str:
        return Path(self.key).name


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


def read_corpus(
    data_dir: str | Path,
) -> tuple[list[NabFile], dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]]:
    """Every labelled CSV under ``DATA/data`` (sorted by key) and the windows of each."""
    root = Path(data_dir)
    labels = root / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise FileNotFoundError(
            f"{labels} not found: expected NAB's layout (data/, labels/combined_windows.json)"
        )
    windows = load_windows(labels)
    files = []
    for path in sorted((root / "data").glob("*/*.csv")):
        key = f"{path.parent.name}/{path.name}"
        if key not in windows:
            continue  # NAB scores labelled files only
        frame = pd.read_csv(path)
        missing = {"timestamp", "value"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path} lacks column(s) {sorted(missing)}")
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(frame["timestamp"]),
                "value": pd.to_numeric(frame["value"], errors="coerce").astype("float64"),
            }
        )
        files.append(NabFile(key, frame))
    if not files:
        raise FileNotFoundError(f"no labelled CSV files under {root / 'data'}")
    return files, windows


def stream_scores(frames: list[pd.DataFrame], make_state: StateFactory | None = None) -> list[np.ndarray]:
    """Scores of every file with a streaming state (by default the ``streaming`` detector's):
    one state holds every file as its own series and is fed one row of each per step (each
    file's step and daily season are inferred from its first rows), so each file is still
    scored causally, row by row."""
    from models.anomaly.streaming import StreamingState, daily_season, infer_step, phases

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
    registry = load_detectors()

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
            registry.get(detector)().fit(unique[unique["ds"] <= cut]).predict(unique[block == k])
            for k, cut in enumerate(cuts)
            if (block == k).any()
        ]
        scored = pd.concat(parts).set_index("ds")["score"]
        return scored.reindex(ds).to_numpy()

    return run


def write_results(
    out_dir: Path, detector: str, item: NabFile, scores: np.ndarray, labels: np.ndarray
) -> Path:
    """``RESULTS/<category>/<detector>_<name>.csv``: timestamp, value, anomaly_score, label."""
    path = out_dir / item.category / f"{detector}_{item.stem}"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "timestamp": item.frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "value": item.frame["value"],
            "anomaly_score": scores,
            "label": labels,
        }
    ).to_csv(path, index=False)
    return path


def run(
    data_dir: str | Path,
    out_dir: str | Path,
    detector: str | None = None,
    production_threshold: float | None = None,
    refit_every: pd.Timedelta | None = REFIT_EVERY,
) -> NabRun:
    """Score every file, write the result files, score the corpus under every profile. The
    detector and production threshold default to the detect flow's (``DetectConfig``)."""
    started = time.perf_counter()
    files, windows = read_corpus(data_dir)
    profiles = load_profiles(Path(data_dir) / "labels" / "profiles.json")
    if production_threshold is None or detector is None:
        from foresight.settings import DetectConfig

        production_threshold = DetectConfig().anomaly_threshold if production_threshold is None else production_threshold
        detector = DetectConfig().detector if detector is None else detector
    t0 = time.perf_counter()
    registry = load_detectors()
    if detector == STREAMING:
        all_scores = stream_scores([item.frame for item in files])
    elif hasattr(registry.get(detector), "series_scores"):  # causal, nothing learned: one pass per file
        model = registry.get(detector)()
        all_scores = [model.series_scores(item.frame["timestamp"], item.frame["value"].to_numpy()) for item in files]
    elif hasattr(registry.get(detector), "make_state"):  # a streaming state: fed row by row
        make_state = registry.get(detector)().make_state
        if "names" in inspect.signature(make_state).parameters:  # per-series settings follow the file, not its position
            make_state = functools.partial(make_state, names=[item.key for item in files])
        all_scores = stream_scores([item.frame for item in files], make_state)
    else:
        scorer = registry_scores(detector, refit_every)
        all_scores = [scorer(item.frame) for item in files]
    detect_seconds = time.perf_counter() - t0
    out = Path(out_dir)
    sweeps: list[FileSweep] = []
    for item, raw in zip(files, all_scores, strict=True):
        scores = np.clip(np.nan_to_num(np.asarray(raw, dtype="float64"), nan=0.0), 0.0, 1.0)
        if scores.shape != (len(item.frame),):
            raise ValueError(
                f"{detector} returned {scores.shape} scores for {len(item.frame)} rows of {item.key}"
            )
        sweep = sweep_file(item.key, item.frame["timestamp"], scores, windows[item.key])
        write_results(out, detector, item, scores, sweep.labels())
        sweeps.append(sweep)
    optimised = score_corpus(sweeps, profiles)
    production = score_corpus(sweeps, profiles, threshold=production_threshold)
    return NabRun(
        detector,
        len(files),
        sum(len(f.frame) for f in files),
        optimised,
        production,
        production_threshold,
        detect_seconds,
        time.perf_counter() - started,
    )
