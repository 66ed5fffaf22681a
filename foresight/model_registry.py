"""MLflow logging and the champion/challenger gate.

The promotion rule itself is pure and lives in :mod:`foresight.promotion` (:func:`~foresight.promotion.decide`).
:class:`ModelRegistry` is the thin edge over ``mlflow.MlflowClient``: one experiment per model
family, one registered model per family, aliases ``champion`` / ``challenger`` on versions, and
the decision's reason tagged on the version and the run.

Bounded waits: every call to a remote tracking server runs under an :class:`MlflowHttpBudget`
(per-request timeout, retries and backoff of MLflow's HTTP client, from ``settings.mlflow``), so a
dead server fails a call in seconds with one :class:`MlflowUnavailableError` line instead of
MLflow's default minutes. Interrupted registrations: a version is tagged ``foresight.state=pending``
when it is created and ``gated`` once the gate's alias and reason are on it; a later train run tags
pending versions that never got that far ``abandoned`` (:meth:`ModelRegistry.abandon_interrupted`).

MLflow is imported inside methods (it is heavy and optional for most commands).
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from foresight.errors import DependencyUnavailableError, ForesightError, exception_chain
from foresight.promotion import CHALLENGER, CHAMPION, Decision
from foresight.pyfunc import ForesightPyfunc, pyfunc_signature
from foresight.redact import redact_url

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient


class Model(Protocol):
    """What the registry logs and serves: any fitted Foresight model (``models.base.Model`` and
    the incident pipeline are two); :class:`foresight.pyfunc.ForesightPyfunc` dispatches on
    ``family``."""

    family: str

    @property
    def name(self) -> str: ...

    def get_params(self) -> dict[str, Any]: ...

    def serving_distributions(self) -> tuple[str, ...]: ...

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

DECISION_TAG, REASON_TAG = "foresight.decision", "foresight.reason"
# A version's place in the register -> gate sequence: ``pending`` from its creation until the gate's
# alias and reason are on it (``gated``); ``abandoned`` when the run that created it died in between.
STATE_TAG = "foresight.state"
PENDING, GATED, ABANDONED = "pending", "gated", "abandoned"
# A pending version younger than this may belong to a train run still between register and gate
# (seconds apart in one task); older ones were left by a run that was killed or failed there.
PENDING_GRACE_SECONDS = 600.0
# How long registering waits for a version to become READY (file and SQL stores are at once).
REGISTRATION_WAIT_SECONDS = 60
MODEL_ARTIFACT = "model"
# The page budget's calibrated opening thresholds per service, logged on the anomaly detector's run.
PAGE_BUDGET_ARTIFACT = "page_budget/page_budget.json"
# What every logged Foresight model needs to be served: MLflow's pyfunc loader, the pickle and
# Foresight's own model code with the array and frame libraries it is written in. A model adds
# its own (``Model.pip_extras``: LightGBM, Prophet).
SERVING_DISTRIBUTIONS: tuple[str, ...] = (
    "mlflow", "cloudpickle", "foresight-aiops", "numpy", "pandas", "pyarrow", "scipy",
)
DECISION_FILE = "decision.txt"


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
    subprocess (most of ``log_model``'s time: docs/ARCHITECTURE.md, *MLflow*) and misses what a
    model imports lazily (the failure predictor's LightGBM). A distribution not installed here is
    left out.
    """
    wanted = dict.fromkeys((*SERVING_DISTRIBUTIONS, *model.serving_distributions()))
    pinned = []
    for name in wanted:
        try:
            pinned.append(f"{name}=={installed_version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


def _mlflow() -> Any:
    """Import MLflow on first use; it is heavy and only the train/detect paths need it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow  # lazy: MLflow takes ~2 s
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MlflowNotInstalledError(
            "MLflow is required for the model registry: pip install 'mlflow>=3.1'"
        ) from exc
    return mlflow


# --------------------------------------------------------------------------- bounded waits

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class MlflowHttpBudget:
    """How long one MLflow REST request may wait, and how often MLflow's client retries it.

    MLflow reads these only from environment variables, at each request; :func:`_http_budget`
    sets them for the duration of a registry call. MLflow's own defaults (120 s timeout, 7
    retries with backoff up to 120 s) keep a flow waiting on a dead server for over 10 minutes.
    The client is the one retry layer for MLflow: the Prefect tasks around it do not retry too.
    """

    timeout_seconds: int = 10
    max_retries: int = 2
    backoff_factor: int = 1
    backoff_jitter: float = 0.5

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def worst_case_seconds(self) -> float:
        """Longest one request can take against a server that never answers: every attempt times
        out, plus urllib3's backoff between them (0, then factor * 2**k, each plus jitter)."""
        backoff = sum(self.backoff_factor * 2**k + self.backoff_jitter for k in range(1, self.max_retries))
        return self.attempts * self.timeout_seconds + backoff

    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(self.timeout_seconds)),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(int(self.max_retries)),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(int(self.backoff_factor)),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": str(float(self.backoff_jitter)),
            # urllib3 sleeps whatever a 429 / 503's Retry-After asks, without a cap: the backoff
            # above is what keeps the wait bounded.
            "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
        }


_ENV_LOCK = threading.Lock()
_env_users = 0
_env_saved: dict[str, str | None] = {}


def split_tracking_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """``(uri without user info, MLflow's credential variables)`` for an http(s) tracking URI.

    MLflow quotes the tracking URI in its own error messages (``API request to
    http://user:pw@host/... failed``), which Prefect then logs: credentials written into the URI
    would reach the console and the run logs. They travel as ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD`` instead (basic auth, exactly what the URI form sends), which
    MLflow reads at every request.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    creds = {"MLFLOW_TRACKING_USERNAME": unquote(user)}
    if password:
        creds["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return urlunsplit(parts._replace(netloc=hostport)), creds


@contextmanager
def _http_budget(budget: MlflowHttpBudget, credentials: dict[str, str] | None = None) -> Iterator[None]:
    """Set MLflow's HTTP budget variables while a registry call runs, then restore them.

    Reference-counted across threads: calls that overlap share the first one's budget (every
    registry in a process is opened from the same settings), and the environment is restored when
    the last one ends, so nothing leaks into the rest of the process (or into tests).
    """
    global _env_users
    with _ENV_LOCK:
        if _env_users == 0:
            values = {**budget.env(), **(credentials or {})}
            _env_saved.clear()
            _env_saved.update({key: os.environ.get(key) for key in values})
            os.environ.update(values)
        _env_users += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _env_users -= 1
            if _env_users == 0:
                for key, value in _env_saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                _env_saved.clear()


class MlflowUnavailableError(DependencyUnavailableError):
    """The MLflow tracking server did not answer within the budget (refused, timed out, or kept
    answering 5xx / 429 through every retry)."""

    def __init__(self, uri: str, budget: MlflowHttpBudget, reason: str) -> None:
        self.uri, self.budget, self.reason = redact_url(uri), budget, reason
        super().__init__(
            f"MLflow at {self.uri} did not answer within {budget.timeout_seconds} s "
            f"({budget.attempts} attempts: {reason})",
            hint="check mlflow.tracking_uri and that the tracking server is running",
        )


def unavailable_reason(exc: BaseException) -> str | None:
    """Why a server did not answer, when ``exc`` says it did not (a connection refused or reset,
    a timeout, retries exhausted on 5xx / 429); None for an answer that was an error.

    MLflow re-raises its HTTP client's errors as ``MlflowException`` with the cause in the text
    (``Max retries exceeded ... Caused by ReadTimeoutError``), and requests reports a read timeout
    after retries as a ``ConnectionError``, so the whole chain's types and text are read.
    """
    chain = list(exception_chain(exc))
    text = " ".join(f"{type(cause).__name__}: {cause}" for cause in chain)
    transport = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
                 MaxRetryError, NewConnectionError, ProtocolError, Urllib3Timeout, ConnectionError, TimeoutError)
    if not any(isinstance(cause, transport) for cause in chain) and "Max retries exceeded" not in text:
        return None
    # Refused first: urllib3's NewConnectionError is also a ConnectTimeoutError.
    if "Connection refused" in text or any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "connection refused"
    if any(isinstance(c, requests.exceptions.Timeout | Urllib3Timeout | TimeoutError) for c in chain) or (
        "timed out" in text or "TimeoutError" in text
    ):
        return "timed out"
    if "error responses" in text or any(isinstance(c, requests.exceptions.RetryError) for c in chain):
        return "it kept answering with errors"
    if "Name or service not known" in text or "name resolution" in text or "nodename nor servname" in text:
        return "unknown host"
    return "connection failed"


def _bounded(method: Callable[P, R]) -> Callable[P, R]:
    """Run a :class:`ModelRegistry` method under its HTTP budget; a server that did not answer
    becomes one :class:`MlflowUnavailableError` line."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        registry: ModelRegistry = args[0]  # type: ignore[assignment]
        with _http_budget(registry.budget, registry._credentials):
            try:
                return method(*args, **kwargs)
            except ForesightError:
                raise
            except Exception as exc:
                reason = unavailable_reason(exc)
                if reason is None:
                    raise
                raise MlflowUnavailableError(registry.tracking_uri, registry.budget, reason) from exc

    return wrapper


_URI_LOCK = threading.Lock()


@contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide (fluent API) tracking and registry URIs at ``uri``, then restore.

    ``mlflow.pyfunc.log_model`` only reads the global URIs; this scopes them to one call so a
    ``ModelRegistry`` never leaks its URI into the process. ``mlflow.set_tracking_uri`` also
    writes ``MLFLOW_TRACKING_URI`` into the environment, so the environment is restored too.
    """
    mlflow = _mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils  # lazy: MLflow takes ~2 s
    from mlflow.tracking._tracking_service import utils as tracking_utils  # lazy: MLflow takes ~2 s

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

    def __init__(self, tracking_uri: str, artifact_location: str, *, budget: MlflowHttpBudget | None = None) -> None:
        # Credentials leave the URI (MLflow would quote them in its errors) and go as variables.
        self.tracking_uri, self._credentials = split_tracking_credentials(tracking_uri)
        # Every experiment stores artifacts under here (a folder or URI), never ./mlruns.
        self.artifact_location = artifact_location.rstrip("/")
        # Timeouts and retries of every request to a remote tracking server (settings.mlflow).
        self.budget = budget or MlflowHttpBudget()
        self._mlflow_client: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        if self._mlflow_client is None:
            mlflow = _mlflow()
            uri = self.tracking_uri
            self._mlflow_client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._mlflow_client

    @_bounded
    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, creating it with artifacts under ``artifact_location``."""
        from mlflow.exceptions import MlflowException  # lazy: MLflow takes ~2 s

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

    @_bounded
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

        The version is created tagged ``foresight.state=pending``: until :meth:`apply` records the
        gate's decision on it, it is not a candidate anyone should serve or compare against.
        ``artifacts`` maps a run folder (e.g. ``"plots"``) to a file or folder to copy there.
        The model is logged as a :class:`foresight.pyfunc.ForesightPyfunc` under ``model`` with a
        signature inferred from ``input_example`` and the model's output on it.
        ``pip_requirements`` default to :func:`serving_requirements` (pinned as installed).
        """
        mlflow = _mlflow()

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
                logged = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=wrapper,
                    signature=signature,
                    input_example=example,
                    pip_requirements=serving_requirements(model) if pip_requirements is None else pip_requirements,
                )
            # Registered here rather than by log_model, so the version carries its state from the
            # moment it exists: a run killed before the gate leaves a version marked pending.
            # MLflow 3 keeps the model as a logged model (``models:/m-...``), not under the run.
            registered = mlflow.register_model(
                logged.model_uri, registered_name,
                await_registration_for=REGISTRATION_WAIT_SECONDS, tags={STATE_TAG: PENDING},
            )
        return CandidateVersion(run_id=run_id, version=str(registered.version))

    def _alias_version(self, registered_name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException  # lazy: MLflow takes ~2 s

        try:
            registered = self._client.get_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        version = (registered.aliases or {}).get(alias)
        return None if version is None else str(version)

    @_bounded
    def champion(self, registered_name: str) -> ChampionInfo | None:
        """The current champion of ``registered_name`` with its run's metrics, or None if none yet."""
        version = self._alias_version(registered_name, CHAMPION)
        if version is None:
            return None
        model_version = self._client.get_model_version(registered_name, version)
        run_id = model_version.run_id or ""
        metrics = dict(self._client.get_run(run_id).data.metrics) if run_id else {}
        return ChampionInfo(version=version, run_id=run_id, metrics=metrics)

    @_bounded
    def load_model(self, registered_name: str, alias: str = CHAMPION) -> Model:
        """The Foresight model behind ``registered_name@alias``, unwrapped from its pyfunc."""
        mlflow = _mlflow()
        if self._alias_version(registered_name, alias) is None:
            raise AliasNotFoundError(registered_name, alias)
        with _fluent_uris(self.tracking_uri):
            loaded = mlflow.pyfunc.load_model(f"models:/{registered_name}@{alias}")
        return loaded.unwrap_python_model().unwrap()

    @_bounded
    def champion_artifact_text(self, registered_name: str, artifact_path: str) -> str | None:
        """The text of ``artifact_path`` in the champion's run (e.g. the page budget's calibration,
        ``page_budget/page_budget.json``), or None when there is no champion or no such artifact."""

        from mlflow.exceptions import MlflowException  # lazy: MLflow takes ~2 s

        champion = self.champion(registered_name)
        if champion is None or not champion.run_id:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self._client.download_artifacts(champion.run_id, artifact_path, tmp)
            except (MlflowException, OSError):
                return None  # logged before the artifact existed, or never logged by this run
            path = Path(local)
            return path.read_text() if path.is_file() else None

    @_bounded
    def apply(self, registered_name: str, version: str, decision: Decision, run_id: str) -> None:
        """Move the aliases as ``decision`` says and record its reason on the version and the run.

        The alias goes first: a version holding an alias is never taken for an abandoned one,
        whatever happens to the run after it. ``foresight.state=gated`` comes last.
        """
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
        client.set_model_version_tag(registered_name, version, STATE_TAG, GATED)

    @_bounded
    def abandon_interrupted(
        self, registered_name: str, *, older_than_seconds: float | None = None, now: float | None = None
    ) -> list[str]:
        """Tag ``abandoned`` (with the reason, on the version and its run) every version of
        ``registered_name`` a train run created but never gated: still ``pending``, holding no
        alias, older than ``older_than_seconds`` (default :data:`PENDING_GRACE_SECONDS`).

        Such a version is what a run killed or failed between register and gate leaves behind;
        tagged, it no longer reads as a candidate waiting for a decision (the gate only ever
        follows aliases). Versions from before this tag existed are left alone. Returns the
        versions tagged.
        """
        from mlflow.exceptions import MlflowException  # lazy: MLflow takes ~2 s

        client = self._client
        try:
            registered = client.get_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        aliased = {str(v) for v in (registered.aliases or {}).values()}
        grace = PENDING_GRACE_SECONDS if older_than_seconds is None else older_than_seconds
        cutoff_ms = ((time.time() if now is None else now) - grace) * 1000
        reason = ("abandoned: the train run that registered it stopped before the gate decided "
                  "(killed or failed between register and alias)")
        abandoned = []
        for version in self._versions(registered_name):
            if (version.tags or {}).get(STATE_TAG) != PENDING or str(version.version) in aliased:
                continue
            if (version.creation_timestamp or 0) > cutoff_ms:
                continue  # maybe a run still on its way to the gate
            client.set_model_version_tag(registered_name, str(version.version), REASON_TAG, reason)
            client.set_model_version_tag(registered_name, str(version.version), STATE_TAG, ABANDONED)
            if version.run_id:
                client.set_tag(version.run_id, STATE_TAG, ABANDONED)
            abandoned.append(str(version.version))
        return abandoned

    def _versions(self, registered_name: str) -> Iterator[Any]:
        """Every version of ``registered_name``, page by page."""
        escaped = registered_name.replace("'", "\\'")
        token = None
        while True:
            page = self._client.search_model_versions(f"name = '{escaped}'", page_token=token)
            yield from page
            token = page.token
            if not token:
                return
