"""``foresight bench nab``: run a detector over a NAB-layout corpus on disk as streams, write NAB
result files, score them (:mod:`models.evaluation.nab`; the corpus: :mod:`connectors.labels.nab_corpus`).

The detector and production threshold default to the detect flow's (``DetectConfig``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from connectors.labels.nab_corpus import read_corpus, read_profiles, write_results
from foresight.settings import DetectConfig
from models.evaluation.nab import REFIT_EVERY, NabRun, evaluate_corpus
from models.evaluation.nab_scoring import as_profiles


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
    profiles = as_profiles(read_profiles(Path(data_dir) / "labels" / "profiles.json"))
    if production_threshold is None or detector is None:
        production_threshold = DetectConfig().anomaly_threshold if production_threshold is None else production_threshold
        detector = DetectConfig().detector if detector is None else detector
    result, scored = evaluate_corpus({f.key: f.frame for f in files}, windows, profiles, detector,
                                     production_threshold, refit_every)
    for item, done in zip(files, scored, strict=True):
        write_results(Path(out_dir), detector, item, done.scores, done.labels)
    return replace(result, total_seconds=time.perf_counter() - started)
