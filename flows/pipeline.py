"""The whole loop as one flow: ingest -> train -> forecast-and-plan -> detect -> publish."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.detect import detect
from flows.forecast_plan import forecast_and_plan
from flows.ingest import ingest
from flows.publish import publish
from flows.train import train


@flow(name="pipeline", log_prints=True)
def pipeline(config_file: str | None = None) -> dict[str, Any]:
    """Run every stage in order as subflows; each stage's summary is returned under its name."""
    results: dict[str, Any] = {"ingest": ingest(config_file)}
    results["train"] = train(config_file)
    results["forecast"] = forecast_and_plan(config_file)
    results["detect"] = detect(config_file)
    results["publish"] = publish(config_file, detect_summary=results["detect"])
    return results
