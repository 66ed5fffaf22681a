"""The model registry in MLflow: experiments, registered versions and the champion/challenger aliases.

The promotion rule itself is pure and lives in :mod:`foresight.promotion` (:func:`~foresight.promotion.decide`).
:class:`ModelRegistry` is the thin edge over ``mlflow.MlflowClient``: one experiment per model
family, one registered model per family, aliases ``champion`` / ``challenger`` on versions, and
the decision's reason tagged on the version and the run.

Beside it: :mod:`foresight.mlflow_runs` logs a model as a run and a registered version, and
:mod:`foresight.mlflow_http` bounds every call to a remote tracking server (each public method runs
under the registry's :class:`~foresight.mlflow_http.MlflowHttpBudget`).

Interrupted registrations: a version is tagged ``foresight.state=pending`` when it is created and
``gated`` once the gate's alias and reason are on it; a later train run tags pending versions that
never got that far ``abandoned`` (:meth:`ModelRegistry.abandon_interrupted`).

MLflow is imported inside methods (it is heavy and optional for most commands).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from foresight.lineage import RunLineage
from foresight.mlflow_http import MlflowHttpBudget, bounded, split_tracking_credentials
from foresight.mlflow_runs import (
    CandidateVersion,
    ensure_experiment,
    fluent_uris,
    import_mlflow,
    log_and_register,
)
from foresight.promotion import CHALLENGER, CHAMPION, Decision

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

# What each registered model is, as its MLflow description (set by every train run).
MODEL_DESCRIPTIONS: dict[str, str] = {
    "capacity-forecaster": (
        "Foresight's capacity forecaster: per-series forecasts with prediction intervals of CPU, memory, "
        "disk and request rates, chosen per series from `forecast.models` on a rolling-origin backtest and "
        "gated on MASE against seasonal naive. The forecast flow serves `@champion` for capacity plans "
        "and rightsizing."),
    "anomaly-detector": (
        "Foresight's incident pipeline: the anomaly detector, the incident builder (stream or roll-up) with "
        "its settings, and the page budget's calibration. Gated on the event F1 of the pages it would have "
        "sent on held-out time against a rolling z-score roll-up. The detect flow serves `@champion`."),
    "failure-predictor": (
        "Foresight's failure predictor: per-service risk of an incident within the horizon from windowed "
        "telemetry features, gated on pooled event F1 over rolling origins against a utilisation rule. "
        "The detect flow serves `@champion` and pages on its risk."),
}
DECISION_TAG, REASON_TAG = "foresight.decision", "foresight.reason"
# A version's place in the register -> gate sequence: ``pending`` from its creation until the gate's
# alias and reason are on it (``gated``); ``abandoned`` when the run that created it died in between.
STATE_TAG = "foresight.state"
PENDING, GATED, ABANDONED = "pending", "gated", "abandoned"
# A pending version younger than this may belong to a train run still between register and gate
# (seconds apart in one task); older ones were left by a run that was killed or failed there.
PENDING_GRACE_SECONDS = 600.0
# The page budget's calibrated opening thresholds per service, logged on the anomaly detector's run.
PAGE_BUDGET_ARTIFACT = "page_budget/page_budget.json"
DECISION_FILE = "decision.txt"


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


class ModelRegistry:
    """Experiments, runs, registered versions and champion/challenger aliases in one MLflow store."""

    def __init__(
        self, tracking_uri: str, artifact_location: str, *, budget: MlflowHttpBudget | None = None
    ) -> None:
        # Credentials leave the URI (MLflow would quote them in its errors) and go as variables.
        self.tracking_uri, self._credentials = split_tracking_credentials(tracking_uri)
        # Every experiment stores artifacts under here (a folder or URI), never ./mlruns.
        self.artifact_location = artifact_location.rstrip("/")
        # Timeouts and retries of every request to a remote tracking server (settings.mlflow).
        self.budget = budget or MlflowHttpBudget()
        self._mlflow_client: MlflowClient | None = None

    @property
    def http_credentials(self) -> dict[str, str]:
        """MLflow's credential variables taken out of the tracking URI (set only during a call)."""
        return self._credentials

    @property
    def _client(self) -> MlflowClient:
        if self._mlflow_client is None:
            mlflow = import_mlflow()
            uri = self.tracking_uri
            self._mlflow_client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._mlflow_client

    @property
    def mlflow_client(self) -> MlflowClient:
        """The underlying client, for an operation defined beside the registry (call it under
        :func:`~foresight.mlflow_http.bounded`, e.g. :func:`foresight.manual_promotion.promote_by_hand`)."""
        return self._client

    @bounded
    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, creating it with artifacts under ``artifact_location``."""
        return ensure_experiment(self._client, name, self.artifact_location)

    @bounded
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
        lineage: RunLineage | None = None,
    ) -> CandidateVersion:
        """Log one fitted model as a run plus a new registered version; returns both ids.

        The version is created tagged ``foresight.state=pending``: until :meth:`apply` records the
        gate's decision on it, it is not a candidate anyone should serve or compare against.
        What is logged and how: :func:`foresight.mlflow_runs.log_and_register` (``lineage``: the
        run's name, data, code and description); the registered model gets its
        :data:`MODEL_DESCRIPTIONS` entry.
        """
        return log_and_register(
            model,
            client=self._client,
            tracking_uri=self.tracking_uri,
            experiment=experiment,
            artifact_location=self.artifact_location,
            registered_name=registered_name,
            params=params,
            metrics=metrics,
            artifacts=artifacts,
            input_example=input_example,
            tags=tags,
            pip_requirements=pip_requirements,
            version_tags={STATE_TAG: PENDING},
            lineage=lineage,
            model_description=MODEL_DESCRIPTIONS.get(registered_name),
        )

    def _alias_version(self, registered_name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException  # lazy: MLflow is heavy (see the module docstring)

        try:
            registered = self._client.get_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        version = (registered.aliases or {}).get(alias)
        return None if version is None else str(version)

    @bounded
    def champion(self, registered_name: str) -> ChampionInfo | None:
        """The current champion of ``registered_name`` with its run's metrics, or None if none yet."""
        version = self._alias_version(registered_name, CHAMPION)
        if version is None:
            return None
        model_version = self._client.get_model_version(registered_name, version)
        run_id = model_version.run_id or ""
        metrics = dict(self._client.get_run(run_id).data.metrics) if run_id else {}
        return ChampionInfo(version=version, run_id=run_id, metrics=metrics)

    @bounded
    def load_model(self, registered_name: str, alias: str = CHAMPION) -> Model:
        """The Foresight model behind ``registered_name@alias``, unwrapped from its pyfunc."""
        mlflow = import_mlflow()
        if self._alias_version(registered_name, alias) is None:
            raise AliasNotFoundError(registered_name, alias)
        with fluent_uris(self.tracking_uri):
            loaded = mlflow.pyfunc.load_model(f"models:/{registered_name}@{alias}")
        return loaded.unwrap_python_model().unwrap()

    @bounded
    def champion_artifact_text(self, registered_name: str, artifact_path: str) -> str | None:
        """The text of ``artifact_path`` in the champion's run (e.g. the page budget's calibration,
        ``page_budget/page_budget.json``), or None when there is no champion or no such artifact."""
        from mlflow.exceptions import MlflowException  # lazy: MLflow is heavy (see the module docstring)

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

    @bounded
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

    @bounded
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
        from mlflow.exceptions import MlflowException  # lazy: MLflow is heavy (see the module docstring)

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
        reason = (
            "abandoned: the train run that registered it stopped before the gate decided "
            "(killed or failed between register and alias)"
        )
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

    @bounded
    def list_versions(self, registered_name: str) -> list[dict[str, Any]]:
        """Every version of ``registered_name``, newest first: its aliases, the gate's decision and
        reason, its state and its run's ``model`` parameter (empty when the model is missing)."""
        from mlflow.exceptions import MlflowException  # lazy: MLflow is heavy (see the module docstring)

        try:
            registered = self._client.get_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        aliases: dict[str, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        rows = []
        for version in self._versions(registered_name):
            tags = version.tags or {}
            params = self._client.get_run(version.run_id).data.params if version.run_id else {}
            rows.append({
                "registered_model": registered_name, "version": str(version.version),
                "aliases": ",".join(sorted(aliases.get(str(version.version), []))),
                "model": params.get("model", ""), "decision": tags.get(DECISION_TAG, ""),
                "reason": tags.get(REASON_TAG, ""), "state": tags.get(STATE_TAG, ""),
                "created_ms": version.creation_timestamp, "run_id": version.run_id or "",
            })
        return sorted(rows, key=lambda row: -int(row["version"]))

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
