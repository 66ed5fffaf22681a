"""Time the detect flow with and without its kept incident-stream state.

``python -m bench.detect_resume COPIES DAYS NEW``: ``COPIES`` copies of the simulator's fleet
(72 series each, its call graph per copy) over ``DAYS`` days (seed 7) in a fresh local lake,
minus the last ``NEW`` 5-minute steps; a detect run with no checkpoint (today's full replay), then
the ``NEW`` steps stored and a second run (resumed). Each run's wall time is printed with the
time spent reading the lake, scoring with the per-series detector, computing failure features and
building incidents. The flow runs in a throwaway Prefect test harness; the champion is the
configured detector fitted on the first week (the loader is replaced, no MLflow), with no failure
predictor. Figures: docs/incidents.md, *The stream's state between detect runs*.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from prefect.testing.utilities import prefect_test_harness

import flows.detect as detect_flow
import models.incidents.pipeline as pipeline_module
from foresight.lake import Lake
from foresight.settings import load_settings
from models.anomaly.base import DETECTORS
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
    last = sorted(telemetry["ds"].unique())[-new]
    lake = Lake(home / ".foresight" / "lake")
    lake.upsert("telemetry", telemetry[telemetry["ds"] < last])
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
    cls.predict = timed("detector scores", cls.predict)  # type: ignore[method-assign]
    cls.resumable_incidents = timed("incident stream", cls.resumable_incidents)  # type: ignore[method-assign]
    print(f"{telemetry['unique_id'].nunique()} series, {days} days simulated, {new} new steps")
    with prefect_test_harness(server_startup_timeout=120):
        for run in ("first (no checkpoint)", "second"):
            if run == "second":
                lake.upsert("telemetry", telemetry[telemetry["ds"] >= last])
            spent.clear()
            start = time.perf_counter()
            out = detect_flow.detect(config_file=str(config))
            total = time.perf_counter() - start
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
            state = {k: v for k, v in out["stream_state"].items() if k != "checkpoint"}
            print(f"{run}: {total:.1f} s; {parts}; {json.dumps(state)}; incidents {out['incidents']}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
