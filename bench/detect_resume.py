"""Time the detect flow with and without its kept states (the per-series detector's and the
incident stream's).

``python -m bench.detect_resume COPIES DAYS NEW``: ``COPIES`` copies of the simulator's fleet
(72 series each, its call graph per copy) over ``DAYS`` days (seed 7) in a fresh local lake,
minus the last ``2 * NEW`` 5-minute steps; a detect run with no checkpoint (a full replay), then
``NEW`` steps stored and a second run (resumed), then ``NEW`` more steps and a third run with
``full_replay=True`` (what every run cost before the states were kept). Each run's wall time is
printed with the time spent reading the lake, scoring with the per-series detector (wall time of
the scoring step; ``detector`` also sums its batches), computing failure features, building
incidents and writing the checkpoints, and each state's report. The flow runs in a throwaway
Prefect test harness; the champion is the configured detector fitted on the first week (the
loader is replaced, no MLflow), with no failure predictor.

``python -m bench.detect_resume detector COPIES DAYS``: the per-series detector alone (no flow,
no lake), for fleets too large to run the flow three times: a replay of all but the last step
(its cost per step), then, for each way the state is kept (each series' newest score, the
stream mode's; the reported window's scores, the roll-up's), its pickled size, the time to read
it back and to resume the last step.
Figures: docs/incidents.md, *The cost of a detect run*.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pandas as pd
import yaml
from prefect.testing.utilities import prefect_test_harness

import flows.detect as detect_flow
import flows.detect_scoring as detect_scoring
import models.incidents.pipeline as pipeline_module
from connectors.sinks.checkpoint_store import CheckpointStore
from foresight.lake import Lake
from foresight.settings import load_settings
from models.anomaly.base import DETECTORS
from models.anomaly.state_resume import advance_scores, replay_scores
from models.anomaly.stepped import SteppedDetector, is_stepped
from models.incidents.pipeline import IncidentPipeline
from models.incidents.settings import PipelineSettings
from simulator import simulate
from simulator.fleet import CALL_GRAPH


def fleet_copies(copies: int, days: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]]]:
    """``copies`` renamed copies of the simulated fleet: telemetry, catalogue and call graph."""
    batch = simulate(seed=7, days=days, end=pd.Timestamp("2026-03-01", tz="UTC"))
    tels, cats, graph = [], [], {}
    for k in range(copies):
        prefix = f"c{k}-" if copies > 1 else ""
        tels.append(batch.telemetry.assign(unique_id=prefix + batch.telemetry["unique_id"].astype(str)))
        cats.append(
            batch.catalogue.assign(
                unique_id=prefix + batch.catalogue["unique_id"].astype(str),
                service=prefix + batch.catalogue["service"].astype(str),
            )
        )
        graph.update({prefix + a: [prefix + b for b in bs] for a, bs in CALL_GRAPH.items()})
    return pd.concat(tels, ignore_index=True), pd.concat(cats, ignore_index=True), graph


def main(copies: int, days: int, new: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="foresight-bench-detect-resume-"))
    os.environ["FORESIGHT_HOME"] = str(home / ".foresight")
    telemetry, catalogue, graph = fleet_copies(copies, days)
    config = home / "foresight.yaml"
    config.write_text(yaml.safe_dump({"detect": {"call_graph": graph}}))
    steps = sorted(telemetry["ds"].unique())
    cuts = [steps[-2 * new], steps[-new], steps[-1] + pd.Timedelta(minutes=5)]
    lake = Lake(home / ".foresight" / "lake")
    lake.upsert("telemetry", telemetry[telemetry["ds"] < cuts[0]])
    lake.upsert("catalogue", catalogue)
    settings = load_settings(config)
    week = telemetry[telemetry["ds"] < telemetry["ds"].min() + pd.Timedelta(days=7)]
    detector = DETECTORS.get(settings.detect.detector).for_incidents().fit(week)
    pipeline = IncidentPipeline(detector, PipelineSettings.from_detect(settings.detect))
    detect_flow.load_champions = lambda _settings: {"anomaly": (pipeline, "1"), "failure": (None, None)}  # type: ignore[assignment]
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    Lake.read = timed("lake read", Lake.read)  # type: ignore[method-assign]
    detect_flow.service_features = timed("failure features", detect_flow.service_features)
    cls = pipeline_module.IncidentPipeline
    cls.predict = timed("detector", cls.predict)  # type: ignore[method-assign]  # a detector with no state
    detect_scoring.replay_scores = timed("detector", detect_scoring.replay_scores)
    detect_scoring.advance_scores = timed("detector", detect_scoring.advance_scores)
    detect_flow.score_window = timed("scoring step", detect_flow.score_window)
    cls.resumable_incidents = timed("incident stream", cls.resumable_incidents)  # type: ignore[method-assign]
    CheckpointStore.save = timed("checkpoints", CheckpointStore.save)  # type: ignore[method-assign]
    print(f"{telemetry['unique_id'].nunique()} series, {days} days simulated, {new} new steps per run")
    runs = [("first (no checkpoint)", {}), ("second (resumed)", {}), ("third (full_replay=True)", {"full_replay": True})]
    with prefect_test_harness(server_startup_timeout=120):
        for k, (run, params) in enumerate(runs):
            if k:
                lake.upsert("telemetry", telemetry[(telemetry["ds"] >= cuts[k - 1]) & (telemetry["ds"] < cuts[k])])
            spent.clear()
            start = time.perf_counter()
            out = detect_flow.detect(config_file=str(config), **params)
            total = time.perf_counter() - start
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in spent.items())
            print(f"{run}: {total:.1f} s; {parts}; incidents {out['incidents']}")
            for name in ("detector_state", "stream_state"):
                state = {k: v for k, v in out[name].items() if k != "checkpoint"}
                print(f"  {name}: {json.dumps(state)}")
        ckpt = CheckpointStore(settings.stream_checkpoint_url)
        for group in ("_detect_detector", "_detect"):
            size = Path(ckpt.path(group, 0)).stat().st_size if Path(ckpt.path(group, 0)).exists() else 0
            print(f"checkpoint {group}: {size / 1e6:.1f} MB")


def detector_only(copies: int, days: int, lookback_hours: int = 72) -> None:
    """The per-series detector alone (no flow, no lake): a replay of all but the last step, its
    state through the checkpoint store's pickle, then the last step resumed from it."""
    telemetry, _, _ = fleet_copies(copies, days)
    settings = load_settings(None)
    fitted = DETECTORS.get(settings.detect.detector).for_incidents()
    fitted.fit(telemetry[telemetry["ds"] < telemetry["ds"].min() + pd.Timedelta(days=1)])
    if not is_stepped(fitted):
        raise SystemExit(f"detector {fitted.name} keeps no step-wise state: nothing to resume")
    detector = cast(SteppedDetector, fitted)
    newest = telemetry["ds"].max()
    since = newest - pd.Timedelta(hours=lookback_hours)
    start = time.perf_counter()
    first = replay_scores(detector, telemetry[telemetry["ds"] < newest], since, keep_window=True)
    replay = time.perf_counter() - start
    n = telemetry["unique_id"].nunique()
    print(f"{n} series, {first.steps} grid steps replayed in {replay:.1f} s ({replay / first.steps * 1e3:.1f} ms a step)")
    window = pickle.dumps(first.state, protocol=pickle.HIGHEST_PROTOCOL)
    first.state.kept = None  # what the stream mode keeps: each series' newest score only
    newest_only = pickle.dumps(first.state, protocol=pickle.HIGHEST_PROTOCOL)
    for mode, payload in (("stream mode (newest scores)", newest_only), (f"roll-up ({lookback_hours} h of scores kept)", window)):
        start = time.perf_counter()
        state = pickle.loads(payload)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        second = advance_scores(state, telemetry, since)
        resumed = time.perf_counter() - start
        print(f"  {mode}: state {len(payload) / 1e6:.1f} MB, read in {loaded:.2f} s; {second.steps} step resumed "
              f"in {resumed:.2f} s ({len(second.scores):,} scores returned)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["detector"]:
        detector_only(*(int(a) for a in sys.argv[2:4]))
    else:
        main(*(int(a) for a in sys.argv[1:4]))
