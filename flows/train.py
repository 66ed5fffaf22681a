"""Train flow: evaluate candidate, baseline and champion on one backtest per family; register; gate.

For each family (capacity forecaster, incident pipeline, failure predictor) the candidate is
fitted on all clean history and logged to MLflow as a new registered version. The incident
pipeline (registered as ``anomaly-detector``: the detector, the incident mode with its settings
and the page budget's calibration, :mod:`models.incidents.pipeline`) is judged on the pages it
would have sent after the split, exactly as the detect flow builds them
(:mod:`models.incidents.evaluation`), so what is promoted is what pages. The alias ``champion``
moves to it only when it beats the current champion and the family's baseline on the same
evaluation; otherwise it becomes ``challenger`` and the reason is recorded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from connectors.labels.incident_labels import read_incident_labels
from connectors.sinks.pagerduty import notify_promotion
from flows.families import BASELINES, FAMILIES, Family, TrainingData
from flows.lineage import train_lineage
from flows.resources import open_lake, open_registry, settings_for_run
from flows.retries import retry_unless_permanent
from flows.self_metrics import SELF_METRICS
from foresight.errors import DependencyUnavailableError, NotReadyError
from foresight.lake_snapshot import LakeSnapshot, describe_snapshot
from foresight.model_registry import EXPERIMENTS, REGISTERED
from foresight.promotion import baseline_serves, decide
from foresight.schemas import empty_incident_history, validate_telemetry
from foresight.settings import Settings
from models.evaluation.gate import Evaluation


class NoTrainingDataError(NotReadyError, RuntimeError):
    """The lake holds no clean telemetry to train on (run ingest first, or check its contract)."""


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def load_training_data(settings: Settings) -> TrainingData:
    """Clean history from the lake (the schema guard refuses anything a contract would not pass)
    and its :class:`~foresight.lake_snapshot.LakeSnapshot`, which every logged run records."""
    lake = open_lake(settings)
    telemetry = lake.read("telemetry")
    if telemetry.empty:
        raise NoTrainingDataError(f"no telemetry in the lake at {settings.lake_location}; run the ingest flow first")
    telemetry = validate_telemetry(telemetry)
    logs = lake.read("logs") if lake.exists("logs") else None
    if settings.detect.labels_path is not None:  # a team's own incident history, false positives flagged
        incidents = read_incident_labels(settings.detect.labels_path)
    else:
        incidents = lake.read("incidents") if lake.exists("incidents") else empty_incident_history()
    catalogue = lake.read("catalogue")
    snapshot = describe_snapshot(settings.lake_location, telemetry, catalogue, incidents, logs)
    return TrainingData(telemetry, catalogue, incidents, logs, snapshot)


@task(cache_policy=NO_CACHE)
def evaluate_contender(family: Family, model: Any, inputs: Any, settings: Settings) -> Evaluation:
    """One contender on its family's evaluation (mapped over candidate, baseline and champion)."""
    return family.evaluate(model, inputs, settings)


@task(cache_policy=NO_CACHE)
def benchmark(family: Family, settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
    """The family's figures beyond the gate's (NAB for the anomaly family), logged with the version."""
    return family.benchmark(settings, workdir)


# -- registry ------------------------------------------------------------------------------------
# No Prefect retries: MLflow's client retries each request (settings.mlflow), one layer.
@task(cache_policy=NO_CACHE)
def load_champion(settings: Settings, family: str) -> Any | None:
    registry = open_registry(settings)
    champion = registry.champion(REGISTERED[family])
    if champion is None:
        return None
    try:
        return registry.load_model(REGISTERED[family])
    except DependencyUnavailableError:
        raise  # MLflow went away: the candidate must not win by the champion's absence
    except Exception as exc:  # noqa: BLE001 - e.g. pickled by an incompatible Foresight version
        # A champion that cannot be re-evaluated cannot defend its title; say so loudly.
        get_run_logger().warning("%s champion v%s cannot be loaded (%s); the candidate faces the baseline only",
                                 REGISTERED[family], champion.version, exc)
        return None


# No Prefect retries: MLflow's client retries each request (settings.mlflow), one layer; a
# retried task would also register the candidate a second time.
@task(cache_policy=NO_CACHE)
def register_and_gate(
    settings: Settings,
    family: str,
    model: Any,
    candidate: Evaluation,
    baseline: Evaluation,
    champion: Evaluation | None,
    artifacts: dict[str, Path],
    input_example: pd.DataFrame,
    fit_baseline: Callable[[], Any] | None = None,
    snapshot: LakeSnapshot | None = None,
) -> dict[str, Any]:
    """Log the candidate, let the gate decide; with no champion yet and a losing candidate, the
    fitted baseline (``fit_baseline()``) is registered as champion so the later flows can serve.

    Each logged run carries its lineage (:func:`flows.lineage.train_lineage`: a name, the lake
    ``snapshot`` as its input, the git commit and this flow run, the version's description), and
    the gate's metric under the very name ``foresight.gate_metric`` gives."""
    registry = open_registry(settings)
    # Versions an earlier run registered but was stopped before gating: say so on them.
    for version in registry.abandon_interrupted(REGISTERED[family]):
        get_run_logger().warning("%s v%s was registered by a train run that stopped before the gate; "
                                 "tagged foresight.state=abandoned", REGISTERED[family], version)
    decision = decide(
        candidate.value, None if champion is None else champion.value, baseline.value,
        higher_is_better=candidate.higher_is_better, min_improvement=settings.mlflow.min_improvement,
        metric=candidate.metric, refusal=candidate.refusal,
    )
    metrics = {k: v for k, v in candidate.metrics.items() if pd.notna(v)}
    metrics[candidate.metric] = candidate.value  # e.g. event_f1, which the family's figures call f1
    metrics[f"baseline_{baseline.metric}"] = baseline.value
    if champion is not None:
        metrics[f"champion_{champion.metric}"] = champion.value
    logged = registry.log_candidate(
        model, registered_name=REGISTERED[family], experiment=EXPERIMENTS[family],
        params={"model": model.name, **{k: str(v) for k, v in model.get_params().items()}},
        metrics=metrics, artifacts=artifacts, input_example=input_example,
        tags={"foresight.gate_metric": candidate.metric},
        lineage=train_lineage(REGISTERED[family], model.name, snapshot, candidate, baseline, champion, decision),
    )
    registry.apply(REGISTERED[family], logged.version, decision, logged.run_id)
    if decision.promote:  # a PagerDuty change event; a no-op without a routing key
        notify_promotion(settings, REGISTERED[family], logged.version, decision.reason, metrics=metrics,
                         run_id=logged.run_id)
    get_run_logger().info("%s v%s: %s (%s)", REGISTERED[family], logged.version, decision.label, decision.reason)
    result = {
        "registered_model": REGISTERED[family], "version": logged.version, "run_id": logged.run_id,
        "model": model.name, "decision": decision.label, "reason": decision.reason,
        "metric": candidate.metric, "value": candidate.value, "baseline": baseline.value,
        "champion": None if champion is None else champion.value,
        "metrics": {k: round(float(v), 4) for k, v in candidate.metrics.items() if pd.notna(v)},
    }
    serving = None if fit_baseline is None else baseline_serves(
        decision, None if champion is None else champion.value, baseline.value, metric=baseline.metric,
        baseline_name=BASELINES[family])
    if serving is not None and fit_baseline is not None:
        fallback = fit_baseline()
        kept = registry.log_candidate(
            fallback, registered_name=REGISTERED[family], experiment=EXPERIMENTS[family],
            params={"model": fallback.name, **{k: str(v) for k, v in fallback.get_params().items()}},
            metrics={**{k: v for k, v in baseline.metrics.items() if pd.notna(v)}, baseline.metric: baseline.value},
            artifacts={}, input_example=input_example,
            tags={"foresight.gate_metric": baseline.metric, "foresight.role": "baseline"},
            lineage=train_lineage(REGISTERED[family], fallback.name, snapshot, candidate, baseline, None, serving,
                                  role="baseline"),
        )
        registry.apply(REGISTERED[family], kept.version, serving, kept.run_id)
        get_run_logger().warning("%s v%s: %s", REGISTERED[family], kept.version, serving.reason)
        result["serving"] = {"version": kept.version, "model": fallback.name, "reason": serving.reason}
    return result


@flow(name="train", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def train(config_file: str | None = None) -> dict[str, Any]:
    """Backtest, register and gate the capacity forecaster, incident pipeline and failure predictor."""
    settings = settings_for_run(config_file)
    data = load_training_data(settings)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="foresight-train-", dir=settings.home) as scratch:
        for family in FAMILIES:  # artifacts are copied into MLflow before the folder goes
            results[family.name] = gate_family(family, data, settings, Path(scratch) / family.name)
    create_table_artifact(
        key="train-summary",
        table=[{"family": f.name, **{k: results[f.name][k] for k in (
            "registered_model", "version", "decision", "metric", "value", "baseline", "champion")}}
            for f in FAMILIES],
        description="Candidates, baselines, champions and the gate's decisions",
    )
    return results


def gate_family(family: Family, data: TrainingData, settings: Settings, workdir: Path) -> dict[str, Any]:
    """Candidate, baseline and champion on one evaluation; the candidate fitted on all history,
    registered and gated (:func:`register_and_gate`)."""
    inputs = family.prepare(data, settings)
    champion = load_champion(settings, family.name)
    candidate, baseline = family.contenders(settings)
    contenders = [candidate, baseline] + ([family.adopt(champion, settings)] if champion is not None else [])
    evaluations = evaluate_contender.map(unmapped(family), contenders, unmapped(inputs), unmapped(settings)).result()
    fitted = family.fit(contenders[0], inputs, settings, evaluations[0])
    extra_metrics, extra_artifacts = benchmark(family, settings, workdir)
    get_run_logger().info("%s: %s %.4f (candidate %s), baseline %.4f%s", family.name, evaluations[0].metric,
                          evaluations[0].value, fitted.name, evaluations[1].value,
                          f", champion {evaluations[2].value:.4f}" if len(evaluations) > 2 else "")
    result = register_and_gate(
        settings, family.name, fitted, replace(evaluations[0], metrics={**evaluations[0].metrics, **extra_metrics}),
        evaluations[1], evaluations[2] if champion is not None else None,
        {**family.artifacts(workdir, evaluations, fitted, inputs, settings), **extra_artifacts},
        family.input_example(fitted, inputs, settings),
        fit_baseline=lambda: family.fit_baseline(baseline, inputs, settings),
        snapshot=data.snapshot,
    )
    return {**result, **family.summary(fitted, evaluations)}
