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

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.resources import open_lake, open_registry, settings_for_run
from flows.retries import retry_unless_permanent
from foresight.errors import DependencyUnavailableError, NotReadyError
from foresight.model_registry import PAGE_BUDGET_ARTIFACT
from foresight.schemas import validate_telemetry
from foresight.settings import Settings
from models.evaluation.gate import Evaluation
from models.incidents.pipeline import IncidentPipeline

FAMILIES = ("forecaster", "anomaly", "failure")
BASELINES = {"forecaster": "seasonal_naive", "anomaly": "rolling_zscore", "failure": "utilisation_rule"}
CANDIDATES = {"failure": "lgbm"}  # the anomaly candidate is settings.detect.detector


class NoTrainingDataError(NotReadyError, RuntimeError):
    """The lake holds no clean telemetry to train on (run ingest first, or check its contract)."""


@dataclass
class TrainingData:
    telemetry: pd.DataFrame
    catalogue: pd.DataFrame
    incidents: pd.DataFrame
    logs: pd.DataFrame | None


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def load_training_data(settings: Settings) -> TrainingData:
    """Clean history from the lake; the schema guard refuses anything a contract would not pass."""
    lake = open_lake(settings)
    telemetry = lake.read("telemetry")
    if telemetry.empty:
        raise NoTrainingDataError(f"no telemetry in the lake at {settings.lake_location}; run the ingest flow first")
    telemetry = validate_telemetry(telemetry)
    logs = lake.read("logs") if lake.exists("logs") else None
    if settings.detect.labels_path is not None:  # a team's own incident history, false positives flagged
        from connectors.labels.incident_labels import read_incident_labels

        incidents = read_incident_labels(settings.detect.labels_path)
    else:
        incidents = lake.read("incidents") if lake.exists("incidents") else pd.DataFrame()
    return TrainingData(telemetry, lake.read("catalogue"), incidents, logs)


# -- capacity forecaster -------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def backtest_forecaster(model: Any, series: pd.DataFrame, settings: Settings) -> Evaluation:
    from models.evaluation.gate import evaluate_forecaster

    return evaluate_forecaster(model, series, settings.forecast)


def _forecaster(name: str, settings: Settings) -> Any:
    """The registered forecaster ``name`` with a daily season at the forecasting frequency."""
    from models.evaluation.gate import season_length
    from models.forecasting.selection import build_candidate

    return build_candidate(name, season_length(settings.forecast.freq), settings.forecast.backtest_horizon)


def _selector(settings: Settings) -> Any:
    """Per-series champion selection over ``forecast.models``, backtested at ``backtest_horizon``."""
    from models.evaluation.gate import season_length
    from models.forecasting.prophet_model import ProphetForecaster, event_holidays
    from models.forecasting.selection import ChampionSelector

    cfg = settings.forecast
    candidates: list[Any] = list(cfg.models)
    if cfg.events and "prophet" in candidates:  # known events become Prophet's holiday regressors
        prophet = ProphetForecaster(uncertainty_samples=0, fallback_season_length=season_length(cfg.freq),
                                    holidays=event_holidays(cfg.events))
        candidates[candidates.index("prophet")] = prophet
    return ChampionSelector(candidates=candidates, horizon=cfg.backtest_horizon, n_origins=cfg.n_origins)


# -- incident pipeline (the anomaly family) and failure predictor ----------------------------------
def anomaly_candidate(settings: Settings) -> IncidentPipeline:
    """A fresh incident pipeline as the detect section describes it: the configured detector
    (``detect.detector``: its ``incident_params``, then ``detect.detector_params`` over them; an
    unknown name raises the registry's error listing the detectors there are) and the incident
    mode with its settings (``incident_builder``, ``stream_params``, the roll-up's thresholds)."""
    from models.anomaly.base import detectors
    from models.incidents.settings import PipelineSettings

    detector = detectors().get(settings.detect.detector).for_incidents(**settings.detect.detector_params)
    return IncidentPipeline(detector, PipelineSettings.from_detect(settings.detect))


def anomaly_baseline(settings: Settings) -> IncidentPipeline:
    """The baseline pipeline: a rolling z-score rolled up per service, the roll-up's settings."""
    from models.anomaly.base import detectors
    from models.incidents.settings import PipelineSettings

    rollup = PipelineSettings.from_detect(settings.detect).rollup
    return IncidentPipeline(detectors().get(BASELINES["anomaly"])(), PipelineSettings(mode="rollup", rollup=rollup))


@task(cache_policy=NO_CACHE)
def evaluate_anomaly(model: IncidentPipeline, data: TrainingData, settings: Settings,
                     split: pd.Timestamp) -> Evaluation:
    """The pages ``model`` would have sent after ``split``, judged event-wise, pooled and per
    system (:func:`models.incidents.evaluation.evaluate_pipeline`); ``detail`` keeps the
    :class:`~models.incidents.evaluation.PipelineEvaluation` (its pages and calibration)."""
    from flows.detect import known_call_graph
    from models.incidents.evaluation import GATE_METRIC, evaluate_pipeline

    result = evaluate_pipeline(model, data.telemetry, data.catalogue, data.incidents, split,
                               call_graph=known_call_graph(settings),
                               horizon=pd.Timedelta(minutes=settings.detect.horizon_minutes))
    return Evaluation(GATE_METRIC, result.value, True, result.metrics, result)


@task(cache_policy=NO_CACHE)
def evaluate_failure(model: Any, features: pd.DataFrame, data: TrainingData, settings: Settings) -> Evaluation:
    """Rolling-origin, event-wise: each block scored by a clone trained on the labels known before it."""
    from models.evaluation.gate import evaluate_failure_predictor

    return evaluate_failure_predictor(model, features, data.incidents, settings.detect)


@task(cache_policy=NO_CACHE)
def benchmark_anomaly(settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
    """The candidate detector's NAB figures on ``detect.nab_data`` (at the corpus-optimised and
    the production threshold) and their table; nothing when no corpus is configured."""
    if settings.detect.nab_data is None:
        return {}, {}
    from connectors.labels.nab_corpus import read_corpus, read_profiles
    from models.evaluation.nab import evaluate_corpus
    from models.evaluation.nab_scoring import as_profiles

    files, windows = read_corpus(settings.detect.nab_data)
    profiles = as_profiles(read_profiles(settings.detect.nab_data / "labels" / "profiles.json"))
    result, _ = evaluate_corpus({f.key: f.frame for f in files}, windows, profiles, settings.detect.detector,
                                settings.detect.anomaly_threshold)
    get_run_logger().info("%s on NAB (%d files): standard %.1f, at the production threshold %.1f",
                          result.detector, result.files, result.optimised["standard"].score,
                          result.production["standard"].score)
    return result.metrics(), _table_artifacts(workdir, {"nab_scores": pd.DataFrame(result.table())})


# -- registry ------------------------------------------------------------------------------------
# No Prefect retries: MLflow's client retries each request (settings.mlflow), one layer.
@task(cache_policy=NO_CACHE)
def load_champion(settings: Settings, family: str) -> Any | None:
    from foresight.model_registry import REGISTERED

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
) -> dict[str, Any]:
    """Log the candidate, let the gate decide; with no champion yet and a losing candidate, the
    fitted baseline (``fit_baseline()``) is registered as champion so the later flows can serve."""
    from foresight.model_registry import EXPERIMENTS, REGISTERED, baseline_serves, decide

    registry = open_registry(settings)
    # Versions an earlier run registered but was stopped before gating: say so on them.
    for version in registry.abandon_interrupted(REGISTERED[family]):
        get_run_logger().warning("%s v%s was registered by a train run that stopped before the gate; "
                                 "tagged foresight.state=abandoned", REGISTERED[family], version)
    decision = decide(
        candidate.value, None if champion is None else champion.value, baseline.value,
        higher_is_better=candidate.higher_is_better, min_improvement=settings.mlflow.min_improvement,
        metric=candidate.metric,
    )
    metrics = {k: v for k, v in candidate.metrics.items() if pd.notna(v)}
    metrics[f"baseline_{baseline.metric}"] = baseline.value
    if champion is not None:
        metrics[f"champion_{champion.metric}"] = champion.value
    logged = registry.log_candidate(
        model, registered_name=REGISTERED[family], experiment=EXPERIMENTS[family],
        params={"model": model.name, **{k: str(v) for k, v in model.get_params().items()}},
        metrics=metrics, artifacts=artifacts, input_example=input_example,
        tags={"foresight.gate_metric": candidate.metric},
    )
    registry.apply(REGISTERED[family], logged.version, decision, logged.run_id)
    if decision.promote:  # a PagerDuty change event; a no-op without a routing key
        from connectors.sinks.pagerduty import notify_promotion

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
            metrics={k: v for k, v in baseline.metrics.items() if pd.notna(v)}, artifacts={},
            input_example=input_example, tags={"foresight.gate_metric": baseline.metric, "foresight.role": "baseline"},
        )
        registry.apply(REGISTERED[family], kept.version, serving, kept.run_id)
        get_run_logger().warning("%s v%s: %s", REGISTERED[family], kept.version, serving.reason)
        result["serving"] = {"version": kept.version, "model": fallback.name, "reason": serving.reason}
    return result


@flow(name="train", log_prints=True)
def train(config_file: str | None = None) -> dict[str, Any]:
    """Backtest, register and gate the capacity forecaster, anomaly detector and failure predictor."""
    from features.windows import failure_labels, service_features
    from flows.detect import known_call_graph
    from models.evaluation.gate import capacity_series, split_time
    from models.failure.base import predictors as failure_predictors
    from models.incidents.pipeline import as_pipeline

    settings = settings_for_run(config_file)
    data = load_training_data(settings)
    workdir = Path(tempfile.mkdtemp(prefix="foresight-train-", dir=settings.home))
    results: dict[str, Any] = {}

    # Capacity forecaster: one per-series champion selection over the configured candidates, judged
    # against seasonal naive and the current champion on the same rolling-origin backtest.
    series = capacity_series(data.telemetry, data.catalogue, settings.forecast)
    champion_fc = load_champion(settings, "forecaster")
    contenders = [_selector(settings), _forecaster(BASELINES["forecaster"], settings)]
    contenders += [champion_fc] if champion_fc is not None else []
    evaluations = backtest_forecaster.map(contenders, unmapped(series), unmapped(settings)).result()
    candidate, baseline = evaluations[0], evaluations[1]
    champion_eval = evaluations[2] if champion_fc is not None else None
    model = contenders[0].clone().fit(series, freq=settings.forecast.freq)
    artifacts = _forecaster_artifacts(workdir, evaluations, series, model, settings)
    results["forecaster"] = register_and_gate(
        settings, "forecaster", model, candidate, baseline, champion_eval, artifacts, _forecast_example(settings),
        fit_baseline=lambda: contenders[1].clone().fit(series, freq=settings.forecast.freq),
    )
    results["forecaster"]["backtest"] = {
        role: round(e.value, 4) for role, e in zip(("candidate", "baseline", "champion"), evaluations, strict=False)
    }
    results["forecaster"]["choices"] = {str(k): int(v) for k, v in model.choice_counts().items()}

    # Incident pipeline: judged on the pages it would have sent after the split, as detect pages.
    split = split_time(data.telemetry["ds"], settings.detect.train_fraction)
    champion_an = load_champion(settings, "anomaly")
    pipelines = [anomaly_candidate(settings), anomaly_baseline(settings)]
    pipelines += [as_pipeline(champion_an, settings.detect)] if champion_an is not None else []
    an_evals = evaluate_anomaly.map(pipelines, unmapped(data), unmapped(settings), unmapped(split)).result()
    pages = an_evals[0].detail
    pipeline = pipelines[0].clone().fit(data.telemetry, data.catalogue, known_call_graph(settings),
                                        calibration=pages.calibration if pipelines[0].calibrates else None)
    log_pipeline(pipeline, an_evals)
    # Benchmark figures travel with the version; the gate stays on the fleet's own incidents.
    nab_metrics, nab_artifacts = benchmark_anomaly(settings, workdir / "anomaly")
    an_candidate = replace(an_evals[0], metrics={**an_evals[0].metrics, **nab_metrics})
    results["anomaly"] = register_and_gate(
        settings, "anomaly", pipeline, an_candidate, an_evals[1],
        an_evals[2] if champion_an is not None else None,
        {**_pipeline_artifacts(workdir / "anomaly", an_evals, pipeline), **nab_artifacts},
        data.telemetry.groupby("unique_id").head(3).reset_index(drop=True),
        fit_baseline=lambda: pipelines[1].clone().fit(data.telemetry),
    )

    # Failure predictor: windowed service features, labels from the incident history.
    features = service_features(data.telemetry, data.catalogue, data.logs)
    labels = failure_labels(features, data.incidents, horizon=pd.Timedelta(minutes=settings.detect.horizon_minutes))
    champion_fp = load_champion(settings, "failure")
    registry = failure_predictors()
    predictors = [registry.get(CANDIDATES["failure"])(), registry.get(BASELINES["failure"])()]
    predictors += [champion_fp] if champion_fp is not None else []
    fp_evals = evaluate_failure.map(predictors, unmapped(features), unmapped(data), unmapped(settings)).result()
    predictor = predictors[0].clone().fit(features, labels)
    results["failure"] = register_and_gate(
        settings, "failure", predictor, fp_evals[0], fp_evals[1],
        fp_evals[2] if champion_fp is not None else None,
        _failure_artifacts(workdir / "failure", predictor, fp_evals),
        # Only the columns it reads: a frame without, say, one log template's counts still serves.
        features[["service", "ds", *predictor.feature_names_]].head(5).reset_index(drop=True),
        fit_baseline=lambda: predictors[1].clone().fit(features, labels),
    )

    create_table_artifact(
        key="train-summary",
        table=[{"family": f, **{k: results[f][k] for k in ("registered_model", "version", "decision", "metric",
                                                          "value", "baseline", "champion")}} for f in FAMILIES],
        description="Candidates, baselines, champions and the gate's decisions",
    )
    return results


def _forecast_example(settings: Settings) -> pd.DataFrame:
    from foresight.pyfunc import forecast_input

    return forecast_input(settings.forecast.horizon, settings.forecast.level)


def _forecaster_artifacts(workdir: Path, evaluations: list[Evaluation], series: pd.DataFrame, model: Any,
                          settings: Settings) -> dict[str, Path]:
    """Plots (worst backtested series, forecasts, model choice) and tables (per-series choice, backtests)."""
    from foresight import plots

    out = workdir / "forecaster"
    result = evaluations[0].detail
    worst = result.per_series.sort_values("mase", ascending=False)["unique_id"].head(6).tolist()
    fc = result.forecasts[result.forecasts["unique_id"].isin(worst)]
    fc = fc.set_index("unique_id").loc[worst].reset_index()
    plots.save(plots.backtest_figure(fc, series), out / "plots" / "backtest.png")
    future = model.predict(settings.forecast.horizon, settings.forecast.level)
    plots.save(plots.forecast_figure(series, future, ids=worst, thresholds=settings.thresholds),
               out / "plots" / "forecast.png")
    choice = plots.importance_figure(model.choice_counts().astype(float))
    choice.axes[0].set_title("series per chosen model (per-series champion selection)", fontsize=9)
    plots.save(choice, out / "plots" / "model_choice.png")
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    model.choices_.to_csv(tables / "model_choice.csv", index=False)
    model.backtest_.to_csv(tables / "selection_backtest.csv", index=False)
    if model.failures_:
        pd.DataFrame(model.failures_).to_csv(tables / "selection_failures.csv", index=False)
    for role, evaluation in zip(("candidate", "baseline", "champion"), evaluations, strict=False):
        evaluation.detail.per_series.to_csv(tables / f"backtest_{role}.csv", index=False)
    return {"plots": out / "plots", "tables": tables}


def log_pipeline(pipeline: IncidentPipeline, evaluations: list[Evaluation]) -> None:
    roles = ("candidate", "baseline", "champion")
    figures = "; ".join(
        f"{role} {e.detail.metrics['recall']:.2f} recall, {e.detail.metrics['false_alarms_per_day']:.1f} false pages "
        f"per system-day (worst system {e.detail.metrics['max_false_alarms_per_day']:.1f})"
        for role, e in zip(roles, evaluations, strict=False))
    get_run_logger().info("%s pages after the split: %s", pipeline.name, figures)


def _pipeline_artifacts(workdir: Path, evaluations: list[Evaluation], pipeline: IncidentPipeline) -> dict[str, Path]:
    """The evaluation table, each contender's pages after the split and the page calibration (the
    detect flow reads it from the model; logged here so people can see it in the MLflow UI)."""
    roles = ("candidate", "baseline", "champion")
    tables = {"evaluation": _evaluation_table(evaluations)}
    tables.update({f"pages_{role}": e.detail.raised for role, e in zip(roles, evaluations, strict=False)})
    artifacts = _table_artifacts(workdir, tables)
    if pipeline.calibration:
        folder, name = PAGE_BUDGET_ARTIFACT.split("/")
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pipeline.calibration, indent=1, sort_keys=True))
        artifacts[folder] = path
    return artifacts


def _failure_artifacts(workdir: Path, predictor: Any, evaluations: list[Evaluation]) -> dict[str, Path]:
    from foresight import plots

    plots.save(plots.importance_figure(predictor.feature_importance()), workdir / "plots" / "feature_importance.png")
    roles = ["candidate", "baseline", "champion"][: len(evaluations)]
    splits = pd.concat([e.detail["splits"].assign(role=role) for role, e in zip(roles, evaluations, strict=True)])
    arts = _table_artifacts(workdir, {"evaluation": _evaluation_table(evaluations), "rolling_origin": splits})
    return {**arts, "plots": workdir / "plots"}


def _evaluation_table(evaluations: list[Evaluation]) -> pd.DataFrame:
    """Candidate, baseline and (when there is one) champion metrics, one row each."""
    roles = ["candidate", "baseline", "champion"][: len(evaluations)]
    return pd.DataFrame([{"role": role, **e.metrics} for role, e in zip(roles, evaluations, strict=True)])


def _table_artifacts(workdir: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    folder = workdir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    return {"tables": folder}
