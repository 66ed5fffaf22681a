"""The whole loop as one flow: ingest -> train -> forecast-and-plan -> detect -> publish."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.detect import detect
from flows.forecast_plan import forecast_and_plan
from flows.ingest import ingest
from flows.publish import publish
from flows.self_metrics import SELF_METRICS
from flows.train import train
from foresight.source_holds import SourceContractFailedError


@flow(name="pipeline", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def pipeline(config_file: str | None = None) -> dict[str, Any]:
    """Run every stage in order as subflows; each stage's summary is returned under its name.

    A source whose contract failed fails its ingest and detect subflows, but the other stages
    still run on every other source (their pages must not wait for it); the pipeline then ends
    Failed with that error.
    """
    held: list[SourceContractFailedError] = []

    def carry_on(stage: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return stage(*args, **kwargs)
        except SourceContractFailedError as exc:
            held.append(exc)
            return exc.result

    results: dict[str, Any] = {"ingest": carry_on(ingest, config_file)}
    results["train"] = train(config_file)
    results["forecast"] = forecast_and_plan(config_file)
    results["detect"] = carry_on(detect, config_file)
    results["publish"] = publish(config_file, detect_summary=results["detect"])
    if held:  # the last stage's words (detect's, when it ran), the whole pipeline's results
        sources = sorted({name for exc in held for name in exc.sources})
        raise SourceContractFailedError(held[-1].message, sources=sources, result=results, hint=held[-1].hint)
    return results
