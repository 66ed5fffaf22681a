"""MLflow logging and the champion/challenger gate.

:func:`decide` is the pure promotion rule: a candidate becomes champion only when it beats the
baseline and the current champion (if any) by a relative margin, on the same evaluation.
:class:`ModelRegistry` is the thin edge over ``mlflow.MlflowClient``: one experiment per model
family, one registered model per family, aliases ``champion`` / ``challenger`` on versions, and
the decision's reason tagged on the version and the run.

MLflow is imported inside methods (it is heavy and optional for most commands).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from models.base import Model

REGISTERED: dict[str, str] = {
    "forecaster": "capacity-forecaster",
    "anomaly": "anomaly-detector",
    "failure": "failure-predictor",
}
EXPERIMENTS: dict[str, str] = {
    "forecaster": "foresight-capacity-forecaster",
    "anomaly": "foresight-anomaly-detector",
    "failure": "foresight-failure-predictor",
}

CHAMPION, CHALLENGER = "champion", "challenger"
DECISION_TAG, REASON_TAG = "foresight.decision", "foresight.reason"
MODEL_ARTIFACT = "model"
# What every logged Foresight model needs to be served: MLflow's pyfunc loader, the pickle and
# Foresight's own model code with the array and frame libraries it is written in. A model adds
# its own (``Model.pip_extras``: LightGBM, Prophet).
SERVING_DISTRIBUTIONS: tuple[str, ...] = (
    "mlflow", "cloudpickle", "foresight-aiops", "numpy", "pandas", "pyarrow", "scipy",
)
DECISION_FILE = "decision.txt"


# --------------------------------------------------------------------------- pure promotion rule


@dataclass(frozen=True)
class Decision:
    """Whether a candidate becomes champion, and why (with the numbers)."""

    promote: bool
    reason: str

    @property
    def label(self) -> str:
        """The value of the ``foresight.decision`` tag: ``promote`` or ``challenger``."""
        return "promote" if self.promote else CHALLENGER


def _beats(candidate: float, reference: float, *, higher_is_better: bool, margin: float) -> bool:
    """True when ``candidate`` is better than ``reference`` by at least ``margin`` of |reference|."""
    gain = candidate - reference if higher_is_better else reference - candidate
    if not math.isfinite(reference):
        # e.g. MASE = inf on a flat series: any finite score beats it; NaN beats nothing.
        return gain > 0
    # A hair of tolerance so "exactly 1 % better" counts despite binary floating point.
    return gain > 0 and gain >= margin * abs(reference) - 1e-12 * max(1.0, abs(reference))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def decide(
    candidate: float,
    champion: float | None,
    baseline: float,
    *,
    higher_is_better: bool,
    min_improvement: float,
    metric: str = "mase",
) -> Decision:
    """Promote only if the candidate beats the baseline and (if any) the champion by a relative margin.

    ``min_improvement`` is relative (0.01 = 1 % of the reference value). The margin applies to
    both comparisons; a strict improvement is always required, even with a zero margin. A
    non-finite candidate never wins; an infinite reference (MASE on a flat series) loses to any
    finite score; a NaN reference blocks promotion until someone fixes that metric.
    """
    if min_improvement < 0:
        raise ValueError(f"min_improvement must be >= 0, got {min_improvement}")
    by = f" by {min_improvement * 100:g}%" if min_improvement else ""
    cand = f"{metric} {_fmt(candidate)}"
    if not math.isfinite(candidate):
        return Decision(False, f"{cand} is not a finite score")
    if not _beats(candidate, baseline, higher_is_better=higher_is_better, margin=min_improvement):
        return Decision(False, f"{cand} does not beat baseline {_fmt(baseline)}{by}")
    if champion is None:
        return Decision(True, f"{cand} beats baseline {_fmt(baseline)} and there is no champion")
    if not _beats(candidate, champion, higher_is_better=higher_is_better, margin=min_improvement):
        return Decision(False, f"{cand} does not beat champion {_fmt(champion)}{by}")
    return Decision(True, f"{cand} beats champion {_fmt(champion)} and baseline {_fmt(baseline)}")


def baseline_serves(decision: Decision, champion: float | None, baseline: float, *, metric: str,
                    baseline_name: str) -> Decision | None:
    """When the first candidate of a family loses to its baseline, the baseline becomes champion.

    Downstream flows need a champion to serve, and the baseline is by construction the model
    the gate trusts at least as much: it serves until a candidate beats it. Never replaces an
    existing champion, and never promotes a baseline that has no finite score.
    """
    if decision.promote or champion is not None or not math.isfinite(baseline):
        return None
    return Decision(True, f"no champion yet and the candidate lost ({decision.reason}): baseline "
                          f"{baseline_name} ({metric} {_fmt(baseline)}) serves until a candidate beats it")


# --------------------------------------------------------------------------- MLflow edge


@dataclass(frozen=True)
class CandidateVersion:
    """A logged run and the registered model version it created."""

    run_id: str
    version: str


@dataclass(frozen=True)
class ChampionInfo:
    """The version the ``champion`` alias points at, its run, and that run's metrics."""

    version: str
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)


class AliasNotFoundError(LookupError):
    """No version of ``.registered_name`` carries ``.alias`` (or the registered model is missing)."""

    def __init__(self, registered_name: str, alias: str) -> None:
        self.registered_name, self.alias = registered_name, alias
        super().__init__(f"registered model {registered_name!r} has no version with alias {alias!r}")


class MlflowNotInstalledError(ImportError):
    """MLflow is needed for model logging and the registry but is not installed."""


def serving_requirements(model: Model) -> list[str]:
    """``name==version`` of every distribution ``model`` needs when served, as installed here.

    Written out instead of left to MLflow, which infers them by loading the model in a
    subprocess (~1.8 s a model, most of ``log_model``) and misses what a model imports lazily
    (the failure predictor's LightGBM). A distribution not installed here is left out.
    """
    from importlib.metadata import PackageNotFoundError, version

    wanted = dict.fromkeys((*SERVING_DISTRIBUTIONS, *model.serving_distributions()))
    pinned = []
    for name in wanted:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


def _mlflow() -> Any:
    """Import MLflow on first use; it is heavy and only the train/detect paths need it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MlflowNotInstalledError(
            "MLflow is required for the model registry: pip install 'mlflow>=3.1'"
        ) from exc
    return mlflow


_URI_LOCK = threading.Lock()


@contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide (fluent API) tracking and registry URIs at ``uri``, then restore.

    ``mlflow.pyfunc.log_model`` only reads the global URIs; this scopes them to one call so a
    ``ModelRegistry`` never leaks its URI into the process. ``mlflow.set_tracking_uri`` also
    writes ``MLFLOW_TRACKING_URI`` into the environment, so the environment is restored too.
    """
    mlflow = _mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

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


class ModelRegistry:
    """Experiments, runs, registered versions and champion/challenger aliases in one MLflow store."""

    def __init__(self, tracking_uri: str, artifact_location: str) -> None:
        self.tracking_uri = tracking_uri
        # Every experiment stores artifacts under here (a folder or URI), never ./mlruns.
        self.artifact_location = artifact_location.rstrip("/")
        self._mlflow_client: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        if self._mlflow_client is None:
            mlflow = _mlflow()
            uri = self.tracking_uri
            self._mlflow_client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._mlflow_client

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, creating it with artifacts under ``artifact_location``."""
        from mlflow.exceptions import MlflowException

        existing = self._client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        try:
            return str(
                self._client.create_experiment(name, artifact_location=f"{self.artifact_location}/{name}")
            )
        except MlflowException as exc:
            # Another process created it between our lookup and create: use theirs.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            raced = self._client.get_experiment_by_name(name)
            if raced is None:
                raise
            return str(raced.experiment_id)

    def log_candidate(
        self,
        model: Model,
        *,
        registered_name: str,
        experiment: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        artifacts: Mapping[str, Path],
        input_example: pd.DataFrame,
        tags: Mapping[str, str] | None = None,
        pip_requirements: list[str] | None = None,
    ) -> CandidateVersion:
        """Log one fitted model as a run plus a new registered version; returns both ids.

        ``artifacts`` maps a run folder (e.g. ``"plots"``) to a file or folder to copy there.
        The model is logged as a :class:`models.pyfunc.ForesightPyfunc` under ``model`` with a
        signature inferred from ``input_example`` and the model's output on it.
        ``pip_requirements`` default to :func:`serving_requirements` (pinned as installed).
        """
        mlflow = _mlflow()
        from models.pyfunc import ForesightPyfunc, pyfunc_signature

        missing = {key: str(path) for key, path in artifacts.items() if not Path(path).exists()}
        if missing:
            raise FileNotFoundError(f"artifacts to log do not exist: {missing}")
        wrapper = ForesightPyfunc(model)
        signature, example = pyfunc_signature(wrapper, input_example)
        run_tags = {"foresight.family": model.family, "foresight.model": model.name, **(tags or {})}
        experiment_id = self.experiment_id(experiment)

        with _fluent_uris(self.tracking_uri):
            with mlflow.start_run(experiment_id=experiment_id, tags=run_tags) as run:
                run_id = run.info.run_id
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
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=wrapper,
                    signature=signature,
                    input_example=example,
                    registered_model_name=registered_name,
                    pip_requirements=serving_requirements(model) if pip_requirements is None else pip_requirements,
                )
        version = info.registered_model_version
        if version is None:  # pragma: no cover - MLflow always registers when a name is given
            raise RuntimeError(f"MLflow did not register a version of {registered_name!r} for run {run_id}")
        return CandidateVersion(run_id=run_id, version=str(version))

    def _alias_version(self, registered_name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            registered = self._client.get_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        version = (registered.aliases or {}).get(alias)
        return None if version is None else str(version)

    def champion(self, registered_name: str) -> ChampionInfo | None:
        """The current champion of ``registered_name`` with its run's metrics, or None if none yet."""
        version = self._alias_version(registered_name, CHAMPION)
        if version is None:
            return None
        model_version = self._client.get_model_version(registered_name, version)
        run_id = model_version.run_id or ""
        metrics = dict(self._client.get_run(run_id).data.metrics) if run_id else {}
        return ChampionInfo(version=version, run_id=run_id, metrics=metrics)

    def load_model(self, registered_name: str, alias: str = CHAMPION) -> Model:
        """The Foresight model behind ``registered_name@alias``, unwrapped from its pyfunc."""
        mlflow = _mlflow()
        if self._alias_version(registered_name, alias) is None:
            raise AliasNotFoundError(registered_name, alias)
        with _fluent_uris(self.tracking_uri):
            loaded = mlflow.pyfunc.load_model(f"models:/{registered_name}@{alias}")
        return loaded.unwrap_python_model().unwrap()

    def apply(self, registered_name: str, version: str, decision: Decision, run_id: str) -> None:
        """Move the aliases as ``decision`` says and record its reason on the version and the run."""
        client = self._client
        version = str(version)
        if decision.promote:
            client.set_registered_model_alias(registered_name, CHAMPION, version)
            if self._alias_version(registered_name, CHALLENGER) == version:
                client.delete_registered_model_alias(registered_name, CHALLENGER)
        else:
            client.set_registered_model_alias(registered_name, CHALLENGER, version)
        for key, value in ((DECISION_TAG, decision.label), (REASON_TAG, decision.reason)):
            client.set_model_version_tag(registered_name, version, key, value)
            client.set_tag(run_id, key, value)
        client.log_text(run_id, f"{decision.label}: {decision.reason}\n", DECISION_FILE)
