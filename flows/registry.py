"""Flows by name, for the CLI (imported on first use: Prefect and the models are heavy imports)."""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, flow function)
FLOW_LOCATIONS: dict[str, tuple[str, str]] = {
    "ingest": ("flows.ingest", "ingest"),
    "train": ("flows.train", "train"),
    "forecast": ("flows.forecast_plan", "forecast_and_plan"),
    "detect": ("flows.detect", "detect"),
    "publish": ("flows.publish", "publish"),
    "pipeline": ("flows.pipeline", "pipeline"),
}


def flow_by_name(name: str) -> Any:
    """The Prefect flow called ``name``; an unknown name raises a KeyError listing the choices."""
    try:
        module, attribute = FLOW_LOCATIONS[name]
    except KeyError:
        raise KeyError(f"unknown flow {name!r}; choose one of: {', '.join(FLOW_LOCATIONS)}") from None
    return getattr(importlib.import_module(module), attribute)
