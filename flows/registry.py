"""Flows by name, for the CLI (imported lazily: Prefect is a heavy import)."""

from __future__ import annotations

from typing import Any


class _LazyFlows(dict):
    def __missing__(self, name: str) -> Any:
        if name == "ingest":
            from flows.ingest import ingest as fn
        elif name == "train":
            from flows.train import train as fn
        elif name == "forecast":
            from flows.forecast_plan import forecast_and_plan as fn
        elif name == "detect":
            from flows.detect import detect as fn
        elif name == "publish":
            from flows.publish import publish as fn
        elif name == "pipeline":
            from flows.pipeline import pipeline as fn
        else:
            raise KeyError(f"unknown flow {name!r}")
        self[name] = fn
        return fn


FLOW_FUNCTIONS: dict[str, Any] = _LazyFlows()
