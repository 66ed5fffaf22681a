"""Logging a fitted model to MLflow: the family's experiment, one run with its parameters, metrics
and artifacts, the model as a pyfunc with pinned serving requirements, and the registered version
it becomes.

:class:`foresight.model_registry.ModelRegistry` calls :func:`log_and_register` (under its HTTP
budget) and then moves the aliases. MLflow is imported on first use (:func:`import_mlflow`): it is
heavy and most commands never log a model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foresight.lineage import RunLineage

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from foresight.model_registry import Model

MODEL_ARTIFACT = "model"
# How long registering waits for a version to become READY (file and SQL stores are at once).
REGISTRATION_WAIT_SECONDS = 60
# What every logged Foresight model needs to be served: MLflow's pyfunc loader, the pickle and
# Foresight's own model code with the array and frame libraries it is written in. A model adds
# its own (``Model.pip_extras``: LightGBM, Prophet).
SERVING_DISTRIBUTIONS: tuple[str, ...] = (
    "mlflow",
    "cloudpickle",
    "foresight-aiops",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
)


@dataclass(frozen=True)
class CandidateVersion:
    """A logged run and the registered model version it created."""

    run_id: str
    version: str


class MlflowNotInstalledError(ImportError):
    """MLflow is needed for model logging and the registry but is not installed."""


def import_mlflow() -> Any:
    """Import MLflow on first use; it is heavy and only the train/detect paths need it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow  # lazy: heavy (seconds to import), only train and detect need it
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MlflowNotInstalledError(
            "MLflow is required for the model registry: pip install 'mlflow>=3.1'"
        ) from exc
    return mlflow


def serving_requirements(model: Model) -> list[str]:
    """``name==version`` of every distribution ``model`` needs when served, as installed here.

    Written out instead of left to MLflow, which infers them by loading the model in a
    subprocess (most of ``log_model``'s time: docs/ARCHITECTURE.md, *MLflow*) and misses what a
    model imports lazily (the failure predictor's LightGBM). A distribution not installed here is
    left out.
    """
    wanted = dict.fromkeys((*SERVING_DISTRIBUTIONS, *model.serving_distributions()))
    pinned = []
    for name in wanted:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


_URI_LOCK = threading.Lock()


@contextmanager
def fluent_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide (fluent API) tracking and registry URIs at ``uri``, then restore.

    ``mlflow.pyfunc.log_model`` only reads the global URIs; this scopes them to one call so a
    ``ModelRegistry`` never leaks its URI into the process. ``mlflow.set_tracking_uri`` also
    writes ``MLFLOW_TRACKING_URI`` into the environment, so the environment is restored too.
    """
    mlflow = import_mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils  # lazy: MLflow, as above
    from mlflow.tracking._tracking_service import utils as tracking_utils  # lazy: MLflow, as above

    env_keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    with _URI_LOCK:
        saved_env = {key: os.environ.get(key) for key in env_keys}
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)
            mlflow.set_registry_uri(saved_registry)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str) -> str:
    """The id of experiment ``name``, creating it with artifacts under ``artifact_location/name``."""
    from mlflow.exceptions import MlflowException  # lazy: MLflow, as above

    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=f"{artifact_location}/{name}"))
    except MlflowException as exc:
        # Another process created it between our lookup and create: use theirs.
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        raced = client.get_experiment_by_name(name)
        if raced is None:
            raise
        return str(raced.experiment_id)


def log_and_register(
    model: Model,
    *,
    client: MlflowClient,
    tracking_uri: str,
    experiment: str,
    artifact_location: str,
    registered_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, Path],
    input_example: pd.DataFrame,
    tags: Mapping[str, str] | None = None,
    pip_requirements: list[str] | None = None,
    version_tags: Mapping[str, str] | None = None,
    lineage: RunLineage | None = None,
    model_description: str | None = None,
) -> CandidateVersion:
    """Log one fitted model as a run in ``experiment`` (created under ``artifact_location`` when
    new) plus a new version of ``registered_name`` carrying ``version_tags`` from its creation;
    returns both ids.

    ``artifacts`` maps a run folder (e.g. ``"plots"``) to a file or folder to copy there. The
    model is logged as a :class:`foresight.pyfunc.ForesightPyfunc` under ``model`` with a signature
    inferred from ``input_example`` and the model's output on it. ``pip_requirements`` default to
    :func:`serving_requirements` (pinned as installed).

    ``lineage`` names the run, logs its lake snapshot as the run's training input (a
    :class:`~foresight.mlflow_dataset.LakeSnapshotDataset`) and tags, and describes the run and
    the version; ``model_description`` describes the registered model.
    """
    mlflow = import_mlflow()
    from foresight.mlflow_dataset import TRAINING_CONTEXT, snapshot_dataset  # lazy: imports MLflow
    from foresight.pyfunc import ForesightPyfunc, pyfunc_signature  # lazy: imports MLflow

    lineage = lineage or RunLineage()
    missing = {key: str(path) for key, path in artifacts.items() if not Path(path).exists()}
    if missing:
        raise FileNotFoundError(f"artifacts to log do not exist: {missing}")
    wrapper = ForesightPyfunc(model)
    signature, example = pyfunc_signature(wrapper, input_example)
    run_tags = {"foresight.family": model.family, "foresight.model": model.name, **lineage.run_tags(),
                **(tags or {})}
    run_experiment = ensure_experiment(client, experiment, artifact_location)

    with fluent_uris(tracking_uri):
        with mlflow.start_run(experiment_id=run_experiment, tags=run_tags, run_name=lineage.run_name) as run:
            run_id = run.info.run_id
            if lineage.snapshot is not None:
                mlflow.log_input(snapshot_dataset(lineage.snapshot, model.family), context=TRAINING_CONTEXT)
            if params:
                mlflow.log_params(dict(params))
            if metrics:
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            for folder, path in artifacts.items():
                path = Path(path)
                if path.is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=folder)
                else:
                    mlflow.log_artifact(str(path), artifact_path=folder)
            logged = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=wrapper,
                signature=signature,
                input_example=example,
                pip_requirements=serving_requirements(model)
                if pip_requirements is None
                else pip_requirements,
            )
        # Registered here rather than by log_model, so the version carries its tags from the
        # moment it exists: a run killed before the gate leaves a version marked pending.
        # MLflow 3 keeps the model as a logged model (``models:/m-...``), not under the run.
        registered = mlflow.register_model(
            logged.model_uri,
            registered_name,
            await_registration_for=REGISTRATION_WAIT_SECONDS,
            tags=dict(version_tags or {}),
        )
    if lineage.description:
        client.update_model_version(registered_name, str(registered.version), description=lineage.description)
    if model_description:
        client.update_registered_model(registered_name, description=model_description)
    return CandidateVersion(run_id=run_id, version=str(registered.version))
