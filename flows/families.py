"""The three model families the train flow gates, behind one interface (:class:`Family`).

Each family says what it trains on (``prepare``), who competes (``contenders``: a fresh
candidate and the baseline; the registry's champion joins them, ``adopt``-ed), how each is judged
on the same evaluation (``evaluate``), how the candidate and the baseline are fitted on all
history, what is logged beside them (``artifacts``, ``benchmark``), the input example MLflow
serves, and what it adds to the flow's result (``summary``). The train flow
(:func:`flows.train.train`) loops over :data:`FAMILIES`; the maths is in ``models``.

- ``forecaster``: per-series champion selection over ``forecast.models`` against seasonal naive,
  on one rolling-origin backtest (MASE);
- ``anomaly``: the incident pipeline (:mod:`models.incidents.pipeline`) against a rolling z-score
  roll-up, judged on the pages it would have sent after the split (event F1;
  :mod:`models.incidents.evaluation`), with its NAB figures on ``detect.nab_data`` beside them;
- ``failure``: LightGBM against the utilisation rule, rolling-origin and event-wise (event F1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from connectors.labels.nab_corpus import read_corpus, read_profiles
from features.failure_labels import failure_labels
from features.windows import service_features
from flows.resources import known_call_graph
from foresight import plots
from foresight.lake_snapshot import LakeSnapshot
from foresight.model_registry import PAGE_BUDGET_ARTIFACT
from foresight.pyfunc import forecast_input
from foresight.settings import Settings
from foresight.timeutil import split_time
from models.anomaly.base import DETECTORS
from models.evaluation.gate import (
    Evaluation,
    capacity_series,
    evaluate_failure_predictor,
    evaluate_forecaster,
    season_length,
)
from models.evaluation.nab import evaluate_corpus
from models.evaluation.nab_scoring import as_profiles
from models.failure.base import PREDICTORS
from models.forecasting.prophet_model import ProphetForecaster, event_holidays
from models.forecasting.selection import ChampionSelector
from models.forecasting.selection_candidates import build_candidate
from models.incidents.evaluation import GATE_METRIC, evaluate_pipeline
from models.incidents.pipeline import IncidentPipeline, as_pipeline
from models.incidents.settings import PipelineSettings

BASELINES = {"forecaster": "seasonal_naive", "anomaly": "rolling_zscore", "failure": "utilisation_rule"}
CANDIDATES = {"failure": "lgbm"}  # the forecaster's: forecast.models; the anomaly one: detect.detector
ROLES = ("candidate", "baseline", "champion")


@dataclass
class TrainingData:
    telemetry: pd.DataFrame
    catalogue: pd.DataFrame
    incidents: pd.DataFrame
    logs: pd.DataFrame | None
    snapshot: LakeSnapshot | None = None  # what was read, as every logged run records it


class Family(Protocol):
    """One registered model family, as the train flow gates it."""

    name: str

    def prepare(self, data: TrainingData, settings: Settings) -> Any: ...

    def contenders(self, settings: Settings) -> tuple[Any, Any]:
        """A fresh (unfitted) candidate and baseline."""
        ...

    def adopt(self, champion: Any, settings: Settings) -> Any:
        """The registry's champion as this family evaluates it."""
        ...

    def evaluate(self, model: Any, inputs: Any, settings: Settings) -> Evaluation: ...

    def fit(self, candidate: Any, inputs: Any, settings: Settings, evaluation: Evaluation) -> Any:
        """The candidate fitted on all history (what is registered)."""
        ...

    def fit_baseline(self, baseline: Any, inputs: Any, settings: Settings) -> Any: ...

    def artifacts(self, workdir: Path, evaluations: list[Evaluation], fitted: Any, inputs: Any,
                  settings: Settings) -> dict[str, Path]: ...

    def benchmark(self, settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
        """Figures beyond the gate's that travel with the version (the gate never reads them)."""
        ...

    def input_example(self, fitted: Any, inputs: Any, settings: Settings) -> pd.DataFrame: ...

    def summary(self, fitted: Any, evaluations: list[Evaluation]) -> dict[str, Any]: ...


# -- capacity forecaster -------------------------------------------------------------------------
class ForecasterFamily:
    name = "forecaster"

    def prepare(self, data: TrainingData, settings: Settings) -> pd.DataFrame:
        return capacity_series(data.telemetry, data.catalogue, settings.forecast)

    def contenders(self, settings: Settings) -> tuple[Any, Any]:
        return selector(settings), forecaster(BASELINES["forecaster"], settings)

    def adopt(self, champion: Any, settings: Settings) -> Any:
        return champion

    def evaluate(self, model: Any, inputs: pd.DataFrame, settings: Settings) -> Evaluation:
        return evaluate_forecaster(model, inputs, settings.forecast)

    def fit(self, candidate: Any, inputs: pd.DataFrame, settings: Settings, evaluation: Evaluation) -> Any:
        return candidate.clone().fit(inputs, freq=settings.forecast.freq)

    def fit_baseline(self, baseline: Any, inputs: pd.DataFrame, settings: Settings) -> Any:
        return baseline.clone().fit(inputs, freq=settings.forecast.freq)

    def artifacts(self, workdir: Path, evaluations: list[Evaluation], fitted: Any, inputs: pd.DataFrame,
                  settings: Settings) -> dict[str, Path]:
        """Plots (worst backtested series, forecasts, model choice) and tables (per-series choice, backtests)."""
        result = evaluations[0].detail
        worst = result.per_series.sort_values("mase", ascending=False)["unique_id"].head(6).tolist()
        fc = result.forecasts[result.forecasts["unique_id"].isin(worst)]
        fc = fc.set_index("unique_id").loc[worst].reset_index()
        plots.save(plots.backtest_figure(fc, inputs), workdir / "plots" / "backtest.png")
        future = fitted.predict(settings.forecast.horizon, settings.forecast.level)
        plots.save(plots.forecast_figure(inputs, future, ids=worst, thresholds=settings.thresholds),
                   workdir / "plots" / "forecast.png")
        choice = plots.importance_figure(fitted.choice_counts().astype(float))
        choice.axes[0].set_title("series per chosen model (per-series champion selection)", fontsize=9)
        plots.save(choice, workdir / "plots" / "model_choice.png")
        tables = workdir / "tables"
        tables.mkdir(parents=True, exist_ok=True)
        fitted.choices_.to_csv(tables / "model_choice.csv", index=False)
        fitted.backtest_.to_csv(tables / "selection_backtest.csv", index=False)
        if fitted.failures_:
            pd.DataFrame(fitted.failures_).to_csv(tables / "selection_failures.csv", index=False)
        for role, evaluation in zip(ROLES, evaluations, strict=False):
            evaluation.detail.per_series.to_csv(tables / f"backtest_{role}.csv", index=False)
        return {"plots": workdir / "plots", "tables": tables}

    def benchmark(self, settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
        return {}, {}

    def input_example(self, fitted: Any, inputs: pd.DataFrame, settings: Settings) -> pd.DataFrame:
        return forecast_input(settings.forecast.horizon, settings.forecast.level)

    def summary(self, fitted: Any, evaluations: list[Evaluation]) -> dict[str, Any]:
        return {
            "backtest": {role: round(e.value, 4) for role, e in zip(ROLES, evaluations, strict=False)},
            "choices": {str(k): int(v) for k, v in fitted.choice_counts().items()},
        }


def forecaster(name: str, settings: Settings) -> Any:
    """The registered forecaster ``name`` with a daily season at the forecasting frequency."""
    return build_candidate(name, season_length(settings.forecast.freq), settings.forecast.backtest_horizon)


def selector(settings: Settings) -> Any:
    """Per-series champion selection over ``forecast.models``, backtested at ``backtest_horizon``."""
    cfg = settings.forecast
    candidates: list[Any] = list(cfg.models)
    if cfg.events and "prophet" in candidates:  # known events become Prophet's holiday regressors
        prophet = ProphetForecaster(uncertainty_samples=0, fallback_season_length=season_length(cfg.freq),
                                    holidays=event_holidays(cfg.events))
        candidates[candidates.index("prophet")] = prophet
    return ChampionSelector(candidates=candidates, horizon=cfg.backtest_horizon, n_origins=cfg.n_origins)


# -- incident pipeline (the anomaly family) ------------------------------------------------------
@dataclass(frozen=True)
class AnomalyInputs:
    data: TrainingData
    split: pd.Timestamp
    call_graph: dict[str, list[str]] | None


class AnomalyFamily:
    name = "anomaly"

    def prepare(self, data: TrainingData, settings: Settings) -> AnomalyInputs:
        return AnomalyInputs(data, split_time(data.telemetry["ds"], settings.detect.train_fraction),
                             known_call_graph(settings))

    def contenders(self, settings: Settings) -> tuple[Any, Any]:
        return anomaly_candidate(settings), anomaly_baseline(settings)

    def adopt(self, champion: Any, settings: Settings) -> Any:
        return as_pipeline(champion, settings.detect)

    def evaluate(self, model: Any, inputs: AnomalyInputs, settings: Settings) -> Evaluation:
        """The pages ``model`` would have sent after the split, judged event-wise, pooled and per
        system (:func:`models.incidents.evaluation.evaluate_pipeline`); ``detail`` keeps the
        :class:`~models.incidents.evaluation.PipelineEvaluation` (its pages and calibration)."""
        data = inputs.data
        result = evaluate_pipeline(model, data.telemetry, data.catalogue, data.incidents, inputs.split,
                                   call_graph=inputs.call_graph,
                                   horizon=pd.Timedelta(minutes=settings.detect.horizon_minutes))
        return Evaluation(GATE_METRIC, result.value, True, result.metrics, result)

    def fit(self, candidate: Any, inputs: AnomalyInputs, settings: Settings, evaluation: Evaluation) -> Any:
        """Fitted on all history; the page calibration is the one the evaluation's replay ended with."""
        calibration = evaluation.detail.calibration if candidate.calibrates else None
        data = inputs.data
        return candidate.clone().fit(data.telemetry, data.catalogue, inputs.call_graph, calibration=calibration)

    def fit_baseline(self, baseline: Any, inputs: AnomalyInputs, settings: Settings) -> Any:
        return baseline.clone().fit(inputs.data.telemetry)

    def artifacts(self, workdir: Path, evaluations: list[Evaluation], fitted: Any, inputs: AnomalyInputs,
                  settings: Settings) -> dict[str, Path]:
        return pipeline_artifacts(workdir, evaluations, fitted)

    def benchmark(self, settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
        """The candidate detector's NAB figures on ``detect.nab_data`` (at the corpus-optimised and
        the production threshold) and their table; nothing when no corpus is configured."""
        if settings.detect.nab_data is None:
            return {}, {}

        files, windows = read_corpus(settings.detect.nab_data)
        profiles = as_profiles(read_profiles(settings.detect.nab_data / "labels" / "profiles.json"))
        result, _ = evaluate_corpus({f.key: f.frame for f in files}, windows, profiles, settings.detect.detector,
                                    settings.detect.anomaly_threshold)
        return result.metrics(), table_artifacts(workdir, {"nab_scores": pd.DataFrame(result.table())})

    def input_example(self, fitted: Any, inputs: AnomalyInputs, settings: Settings) -> pd.DataFrame:
        return inputs.data.telemetry.groupby("unique_id").head(3).reset_index(drop=True)

    def summary(self, fitted: Any, evaluations: list[Evaluation]) -> dict[str, Any]:
        """Each contender's pages after the split: recall, false pages per system-day, the worst system's."""
        return {"pages": {
            role: {k: round(float(e.metrics[k]), 4) for k in ("recall", "false_alarms_per_day", "max_false_alarms_per_day")}
            for role, e in zip(ROLES, evaluations, strict=False)
        }}


def anomaly_candidate(settings: Settings) -> IncidentPipeline:
    """A fresh incident pipeline as the detect section describes it: the configured detector
    (``detect.detector``: its ``incident_params``, then ``detect.detector_params`` over them; an
    unknown name raises the registry's error listing the detectors there are) and the incident
    mode with its settings (``incident_builder``, ``stream_params``, the roll-up's thresholds)."""
    detector = DETECTORS.get(settings.detect.detector).for_incidents(**settings.detect.detector_params)
    return IncidentPipeline(detector, PipelineSettings.from_detect(settings.detect))


def anomaly_baseline(settings: Settings) -> IncidentPipeline:
    """The baseline pipeline: a rolling z-score rolled up per service, the roll-up's settings."""
    rollup = PipelineSettings.from_detect(settings.detect).rollup
    return IncidentPipeline(DETECTORS.get(BASELINES["anomaly"])(), PipelineSettings(mode="rollup", rollup=rollup))


def evaluate_anomaly(model: IncidentPipeline, data: TrainingData, settings: Settings, split: pd.Timestamp) -> Evaluation:
    """:meth:`AnomalyFamily.evaluate` at ``split`` with the configured call graph (benchmarks, tests)."""
    return AnomalyFamily().evaluate(model, AnomalyInputs(data, split, known_call_graph(settings)), settings)


def pipeline_artifacts(workdir: Path, evaluations: list[Evaluation], pipeline: IncidentPipeline) -> dict[str, Path]:
    """The evaluation table, each contender's pages after the split and the page calibration (the
    detect flow reads it from the model; logged here so people can see it in the MLflow UI)."""
    tables = {"evaluation": evaluation_table(evaluations)}
    tables.update({f"pages_{role}": e.detail.raised for role, e in zip(ROLES, evaluations, strict=False)})
    artifacts = table_artifacts(workdir, tables)
    if pipeline.calibration:
        folder, name = PAGE_BUDGET_ARTIFACT.split("/")
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pipeline.calibration, indent=1, sort_keys=True))
        artifacts[folder] = path
    return artifacts


# -- failure predictor ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureInputs:
    features: pd.DataFrame
    labels: pd.Series
    incidents: pd.DataFrame


class FailureFamily:
    name = "failure"

    def prepare(self, data: TrainingData, settings: Settings) -> FailureInputs:
        """Windowed service features, labels from the incident history."""
        features = service_features(data.telemetry, data.catalogue, data.logs)
        labels = failure_labels(features, data.incidents,
                                horizon=pd.Timedelta(minutes=settings.detect.horizon_minutes))
        return FailureInputs(features, labels, data.incidents)

    def contenders(self, settings: Settings) -> tuple[Any, Any]:
        return PREDICTORS.get(CANDIDATES["failure"])(), PREDICTORS.get(BASELINES["failure"])()

    def adopt(self, champion: Any, settings: Settings) -> Any:
        return champion

    def evaluate(self, model: Any, inputs: FailureInputs, settings: Settings) -> Evaluation:
        """Rolling-origin, event-wise: each block scored by a clone trained on the labels known before it."""
        return evaluate_failure_predictor(model, inputs.features, inputs.incidents, settings.detect)

    def fit(self, candidate: Any, inputs: FailureInputs, settings: Settings, evaluation: Evaluation) -> Any:
        return candidate.clone().fit(inputs.features, inputs.labels)

    def fit_baseline(self, baseline: Any, inputs: FailureInputs, settings: Settings) -> Any:
        return baseline.clone().fit(inputs.features, inputs.labels)

    def artifacts(self, workdir: Path, evaluations: list[Evaluation], fitted: Any, inputs: FailureInputs,
                  settings: Settings) -> dict[str, Path]:
        plots.save(plots.importance_figure(fitted.feature_importance()), workdir / "plots" / "feature_importance.png")
        roles = list(ROLES[: len(evaluations)])
        splits = pd.concat([e.detail["splits"].assign(role=role) for role, e in zip(roles, evaluations, strict=True)])
        arts = table_artifacts(workdir, {"evaluation": evaluation_table(evaluations), "rolling_origin": splits})
        return {**arts, "plots": workdir / "plots"}

    def benchmark(self, settings: Settings, workdir: Path) -> tuple[dict[str, float], dict[str, Path]]:
        return {}, {}

    def input_example(self, fitted: Any, inputs: FailureInputs, settings: Settings) -> pd.DataFrame:
        # Only the columns it reads: a frame without, say, one log template's counts still serves.
        return inputs.features[["service", "ds", *fitted.feature_names_]].head(5).reset_index(drop=True)

    def summary(self, fitted: Any, evaluations: list[Evaluation]) -> dict[str, Any]:
        return {}


FAMILIES: tuple[Family, ...] = (ForecasterFamily(), AnomalyFamily(), FailureFamily())


def evaluation_table(evaluations: list[Evaluation]) -> pd.DataFrame:
    """Candidate, baseline and (when there is one) champion metrics, one row each."""
    return pd.DataFrame([{"role": role, **e.metrics} for role, e in zip(ROLES, evaluations, strict=False)])


def table_artifacts(workdir: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    folder = workdir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    return {"tables": folder}
