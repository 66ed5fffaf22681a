"""Open the stores a flow needs from the settings (one place, so every flow agrees)."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from connectors.sinks.forecast_store import ForecastStore, engine_options
from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sources.base import SOURCES
from foresight.errors import ConfigError, DependencyUnavailableError, ForesightError, NotReadyError
from foresight.lake import Lake
from foresight.mlflow_http import MlflowHttpBudget
from foresight.model_registry import ModelRegistry
from foresight.plugins import UnknownPluginError, settings_problems
from foresight.redact import redact_url
from foresight.settings import Settings, SettingsProblem, load_settings
from models.forecasting.base import FORECASTERS
from models.incidents.settings import detect_config_problems
from models.legacy_paths import install as install_legacy_paths
from models.response.rules import response_problems
from simulator import CALL_GRAPH


class NoTelemetryError(NotReadyError, ValueError):
    """The lake holds no telemetry yet (run the ingest flow first): never retried."""


def settings_for_run(config_file: str | None) -> Settings:
    """Settings at a flow's entry point: the optional YAML file plus ``FORESIGHT_*`` env, and the
    plug-ins they name checked (:func:`plugin_problems`)."""
    settings = load_settings(config_file, checks=(plugin_problems,))
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


def plugin_problems(settings: Settings) -> list[SettingsProblem]:
    """The plug-ins the settings name, checked against their registries' typed settings (which
    core's settings cannot see): each source's ``kind`` and ``options``, the forecast candidates,
    the detect section's detector, its parameters and the stream settings. A typo, a wrong type or
    an out-of-range value fails every flow at start-up, as a bad key anywhere in the settings
    does, naming the key (and for an unknown one the choices)."""
    problems: list[SettingsProblem] = []
    for i, source in enumerate(settings.sources):
        problems += settings_problems(SOURCES, source.kind, source.options,
                                      name_key=("sources", i, "kind"), settings_key=("sources", i, "options"))
    for i, model in enumerate(settings.forecast.models):
        try:
            FORECASTERS.get(model)
        except UnknownPluginError as exc:
            problems.append((("forecast", "models", i), str(exc)))
    problems += response_problems(settings)  # fault types and the webhooks / commands response rules name
    return problems + [(("detect", *key), problem) for key, problem in detect_config_problems(settings.detect)]


def open_lake(settings: Settings) -> Lake:
    return Lake(settings.lake_location)


def open_registry(settings: Settings) -> ModelRegistry:
    """The MLflow registry, its requests bounded by ``settings.mlflow``'s timeout and retries;
    models registered under earlier module paths load too (:mod:`models.legacy_paths`)."""
    install_legacy_paths()

    cfg = settings.mlflow
    budget = MlflowHttpBudget(timeout_seconds=cfg.request_timeout_seconds, max_retries=cfg.max_retries,
                              backoff_factor=cfg.backoff_factor, backoff_jitter=cfg.backoff_jitter)
    return ModelRegistry(settings.tracking_uri, settings.artifact_location, budget=budget)


class ForecastStoreUnavailableError(DependencyUnavailableError):
    """The forecast store's database did not answer (refused, timed out, went away)."""


def open_forecast_store(settings: Settings) -> ForecastStore:
    """The forecast store with its schema in place; connecting is bounded by
    ``sinks.forecast_store_connect_timeout_seconds``, and a database that cannot be reached or
    refuses the credentials is one line naming the store (password masked), not a traceback wall."""
    url, sinks = settings.forecast_store_url, settings.sinks
    options = engine_options(url, connect_timeout_seconds=sinks.forecast_store_connect_timeout_seconds,
                             statement_timeout_seconds=sinks.forecast_store_statement_timeout_seconds)
    store = ForecastStore(url, engine=create_engine(url, **options))
    try:
        store.create_schema()
    except (OperationalError, DBAPIError) as exc:
        store.dispose()
        raise _store_error(url, exc, sinks.forecast_store_connect_timeout_seconds) from exc
    return store


def _store_error(url: str, exc: Exception, timeout_seconds: int) -> ForesightError:
    """One line for a store that could not be opened: unreachable (retryable) or misconfigured."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    where = f"forecast store at {redact_url(url)}"
    lowered = detail.lower()
    if any(word in lowered for word in ("authentication failed", "does not exist", "permission denied",
                                        "no password supplied", "unable to open database file")):
        return ConfigError(f"{where} refused to open: {detail}",
                           hint="check sinks.forecast_store_url (host, database, user and password)")
    if "timeout" in lowered or "timed out" in lowered:
        reason = f"no answer within {timeout_seconds} s"
    elif "refused" in lowered:
        reason = "connection refused"
    else:
        reason = detail
    return ForecastStoreUnavailableError(f"{where} did not answer ({reason})",
                                         hint="check sinks.forecast_store_url and that the database is running")


def open_outbox(settings: Settings) -> Outbox:
    return Outbox(settings.outbox_path)


def known_call_graph(settings: Settings) -> dict[str, list[str]] | None:
    """The configured call graph, or the simulator's own topology when it is a source."""
    if settings.detect.call_graph is not None:
        return settings.detect.call_graph
    if any(source.kind == "simulator" for source in settings.sources):
        return {caller: list(callees) for caller, callees in CALL_GRAPH.items()}
    return None
