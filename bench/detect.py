"""Benchmark incident detection on simulated fleets: the gate's roll-up per detector, and the stream builder.

For each seed the simulator generates a fleet with its ground-truth incidents; every builder is
judged on the incidents that start after the train flow's split (the first
``DetectConfig.train_fraction`` of the span, :func:`foresight.timeutil.split_time`):

- ``rollup:<detector>`` and ``stream``: exactly the train flow's gate
  (:func:`models.incidents.evaluation.evaluate_pipeline`) for an incident pipeline in that mode:
  fitted on the data before the split (the detector; the stream's page calibration), the whole
  history replayed as the detect flow replays it with the simulator's call graph, the pages
  after the split matched to the ground truth (no failure predictor).
- ``stream:windows``: the same builder replayed the way the detect flow replays it: the span after
  the split cut into ``lookback_hours`` windows, each replayed after the warm-up the flow loads
  before its window (the configured detector's context, at least the features' 3 hours), each
  window's incidents kept. A baseline then never sees more than a window and its warm-up.

Figures per seed and builder, then their mean per builder. The simulated span ends on a fixed
date so figures do not move from day to day.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flows.detect import FEATURE_WARMUP
from foresight.settings import DetectConfig
from foresight.timeutil import split_time
from models.anomaly.base import DETECTORS
from models.evaluation.gate import match_incidents
from models.incidents.base import IncidentInputs
from models.incidents.evaluation import evaluate_pipeline
from models.incidents.pipeline import IncidentPipeline
from models.incidents.settings import PipelineSettings
from models.incidents.stream_builder import StreamBuilder
from simulator import CALL_GRAPH, simulate

ROLLUP = "rollup:"  # prefix of a roll-up builder; the rest is a name in models.anomaly.base.DETECTORS
STREAM = "stream"
STREAM_WINDOWS = "stream:windows"
SEEDS: tuple[int, ...] = (3, 5, 7, 11, 13, 17, 19)
BUILDERS: tuple[str, ...] = ("rollup:streaming", STREAM)
DAYS = 21  # the simulator's default span, as in the demo
END = pd.Timestamp("2026-05-01", tz="UTC")  # bench.failure's end too


@dataclass(frozen=True)
class DetectFigures:
    """One builder's event-wise figures after the split of one seed's fleet (``seed`` None: the
    mean over seeds, counts included, so ``raised`` and ``false_alarms`` read "per seed")."""

    seed: int | None
    builder: str
    f1: float
    recall: float
    precision: float
    raised: float  # incidents raised after the split
    false_alarms: float  # raised incidents matching no ground-truth incident
    detected: float
    incidents: float  # ground-truth incidents starting after the split
    seconds: float  # wall time of the builder's evaluation (fit and scoring, or the replay)


def builder_choices() -> list[str]:
    """Every builder name :func:`run` accepts: a roll-up per registered detector, then ``stream``."""
    return [*(f"{ROLLUP}{name}" for name in DETECTORS.names()), STREAM, STREAM_WINDOWS]


def unknown_builders(builders: Sequence[str]) -> str | None:
    """The names in ``builders`` that :func:`run` does not know, with the choices; None if all are known."""
    choices = builder_choices()
    unknown = [b for b in builders if b not in choices]
    return f"{', '.join(map(repr, unknown))}; choose one of: {', '.join(choices)}" if unknown else None


def run(
    seeds: Sequence[int] = SEEDS,
    days: int = DAYS,
    builders: Sequence[str] = BUILDERS,
    cfg: DetectConfig | None = None,
) -> list[DetectFigures]:
    """Figures per seed and builder, then one mean row per builder (``seed=None``).

    ``cfg`` (default: ``DetectConfig()``) sets the split, the roll-up's and the stream's settings
    and the matching, as it does for the flows. An unknown builder raises before anything runs.
    """
    if not seeds:
        raise ValueError("at least one seed is needed")
    builders = list(dict.fromkeys(builders))  # a builder named twice would count twice in its mean
    if not builders:
        raise ValueError("at least one builder is needed")
    unknown = unknown_builders(builders)
    if unknown:
        raise ValueError(f"unknown builder(s) {unknown}")
    cfg = cfg or DetectConfig()
    figures: list[DetectFigures] = []
    for seed in seeds:
        batch = simulate(seed=seed, days=days, end=END)
        telemetry, catalogue, incidents = batch.telemetry, batch.catalogue, batch.incidents
        if incidents is None:
            raise ValueError("the simulator returned no incident history")
        split = split_time(telemetry["ds"], cfg.train_fraction)
        for builder in builders:
            started = time.perf_counter()
            raised, m = evaluate_builder(builder, telemetry, catalogue, incidents, cfg, split)
            seconds = time.perf_counter() - started
            figures.append(
                DetectFigures(
                    seed,
                    builder,
                    m["f1"],
                    m["recall"],
                    m["precision"],
                    len(raised),
                    m["false_alarms"],
                    m["detected"],
                    m["detected"] + m["missed"],
                    seconds,
                )
            )
    return figures + [mean_figures(figures, builder) for builder in builders]


def evaluate_builder(
    builder: str,
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    incidents: pd.DataFrame,
    cfg: DetectConfig,
    split: pd.Timestamp,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The incidents ``builder`` raises after ``split`` and their event-wise metrics against the
    ground truth starting after it (the gate's keys, :mod:`models.incidents.evaluation`)."""
    truth = incidents[incidents["start"] >= split]
    if builder == STREAM or builder.startswith(ROLLUP):
        return _gated(builder, telemetry, catalogue, incidents, cfg, split)
    if builder == STREAM_WINDOWS:
        before = telemetry[telemetry["ds"] < split]
        warmup = max(_detector(cfg.detector, cfg).fit(before).context_length, FEATURE_WARMUP)
        window, newest = pd.Timedelta(hours=cfg.lookback_hours), telemetry["ds"].max()
        parts, lo = [], split
        while lo <= newest:
            hi = lo + window
            part = telemetry[(telemetry["ds"] >= lo - warmup) & (telemetry["ds"] < hi)]
            streamed = _streamed(part, catalogue, cfg, lo)
            parts.append(streamed[streamed["start"] < hi])
            lo = hi
        raised = pd.concat(parts, ignore_index=True)
        return raised, match_incidents(raised, truth, cfg)

    raise ValueError(f"unknown builder {builder!r}; choose one of: {', '.join(builder_choices())}")


def _gated(builder: str, telemetry: pd.DataFrame, catalogue: pd.DataFrame, incidents: pd.DataFrame,
           cfg: DetectConfig, split: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, float]]:
    """The gate's evaluation of the pipeline ``builder`` names (``stream`` or ``rollup:<detector>``)."""
    mode = "stream" if builder == STREAM else "rollup"
    detector = _detector(cfg.detector if mode == "stream" else builder.removeprefix(ROLLUP), cfg)
    pipeline = IncidentPipeline(detector, PipelineSettings.from_detect(cfg.model_copy(update={"incident_builder": mode})))
    result = evaluate_pipeline(pipeline, telemetry, catalogue, incidents, split, call_graph=CALL_GRAPH,
                               horizon=pd.Timedelta(minutes=cfg.horizon_minutes))
    return result.raised, result.metrics


def _detector(name: str, cfg: DetectConfig) -> Any:
    """Detector ``name`` as it feeds incidents; ``detect.detector_params`` are the configured
    detector's constructor parameters, not every detector's."""
    return DETECTORS.get(name).for_incidents(**(cfg.detector_params if name == cfg.detector else {}))


def _streamed(telemetry: pd.DataFrame, catalogue: pd.DataFrame, cfg: DetectConfig, since: pd.Timestamp) -> pd.DataFrame:
    """The stream builder's incidents opened from ``since`` on, replaying all of ``telemetry``."""
    settings = PipelineSettings.from_detect(cfg)
    inputs = IncidentInputs(telemetry, catalogue, since=since, call_graph=CALL_GRAPH)
    return StreamBuilder(settings.stream, settings.rollup).build(inputs).incidents


def mean_figures(figures: Sequence[DetectFigures], builder: str) -> DetectFigures:
    """The mean over seeds of one builder's figures, every field (counts too) a plain mean."""
    mine = [f for f in figures if f.builder == builder and f.seed is not None]
    if not mine:
        raise ValueError(f"no figures for {builder!r}")

    def mean(field: str) -> float:
        return float(np.mean([getattr(f, field) for f in mine]))

    return DetectFigures(
        None,
        builder,
        mean("f1"),
        mean("recall"),
        mean("precision"),
        mean("raised"),
        mean("false_alarms"),
        mean("detected"),
        mean("incidents"),
        mean("seconds"),
    )
