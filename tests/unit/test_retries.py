"""Which errors a Prefect task retries: only those waiting could clear, one retry layer per call."""

from __future__ import annotations

import importlib
import urllib.error

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from kafka.errors import KafkaTimeoutError
from sqlalchemy.exc import OperationalError

from connectors.sinks.grafana import GrafanaError
from flows.forecast_plan import NoChampionError
from flows.resources import NoTelemetryError
from flows.retries import is_retryable, retry_unless_permanent
from flows.train import NoTrainingDataError
from foresight.errors import ConfigError, DependencyUnavailableError, ForesightError, NotReadyError

FLOW_MODULES = ("flows.detect", "flows.detection_sinks", "flows.forecast_plan", "flows.ingest", "flows.publish",
                "flows.train")
# Tasks whose only I/O is MLflow: its HTTP client retries each request (settings.mlflow).
MLFLOW_TASKS = {("flows.detect", "load_champions"), ("flows.forecast_plan", "load_champion_forecaster"),
                ("flows.train", "load_champion"), ("flows.train", "register_and_gate")}


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as exc:  # noqa: BLE001 - building a chained exception
        return exc


@pytest.mark.parametrize("exc", [
    NoChampionError("capacity-forecaster has no champion yet"),
    NoTrainingDataError("no telemetry in the lake"),
    NoTelemetryError("no telemetry in the lake"),
    ConfigError("forecast.horizon must be >= 1"),
    ForesightError("a problem that waiting will not fix"),
    ValueError("bad input"), KeyError("unique_id"), TypeError("wrong type"),
    FileNotFoundError("missing.csv"),
    GrafanaError("POST /api/annotations", 400, {"message": "bad request"}),
    urllib.error.HTTPError("http://pushgateway", 400, "Bad Request", None, None),  # type: ignore[arg-type]
    RuntimeError("something unknown"),
    _caused(RuntimeError("wrapped"), ValueError("a contract violation")),
], ids=lambda exc: type(exc).__name__)
def test_errors_that_waiting_cannot_clear_are_not_retried(exc: BaseException) -> None:
    assert not is_retryable(exc)


@pytest.mark.parametrize("exc", [
    DependencyUnavailableError("MLflow at http://127.0.0.1:1 did not answer"),
    ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out"),
    requests.exceptions.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow"),
    OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    GrafanaError("POST /api/annotations", 503, "unavailable"),
    urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
    OSError("AWS Error NETWORK_CONNECTION during GetObject"),
    _caused(RuntimeError("while writing the batch"), ConnectionResetError(104, "reset")),
    _caused(RuntimeError("kafka source: committing failed"), KafkaTimeoutError("no answer")),
], ids=lambda exc: type(exc).__name__)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert is_retryable(exc)


def test_not_ready_errors_keep_the_types_callers_catch() -> None:
    assert issubclass(NoChampionError, NotReadyError) and issubclass(NoChampionError, LookupError)
    assert issubclass(NoTrainingDataError, NotReadyError) and issubclass(NoTrainingDataError, RuntimeError)
    assert issubclass(NoTelemetryError, NotReadyError) and issubclass(NoTelemetryError, ValueError)


def _tasks() -> list[tuple[str, str, object]]:
    from prefect import Task

    found = []
    for module_name in FLOW_MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if isinstance(value, Task) and value.__module__ == module_name:
                found.append((module_name, name, value))
    return found


def test_every_task_that_retries_asks_the_shared_condition_first() -> None:
    retrying = [(m, n, t) for m, n, t in _tasks() if t.retries]  # type: ignore[attr-defined]
    assert len(retrying) >= 8
    wrong = [f"{m}.{n}" for m, n, t in retrying if t.retry_condition_fn is not retry_unless_permanent]  # type: ignore[attr-defined]
    assert wrong == [], "these tasks would retry a missing champion or a bad config"


def test_tasks_that_only_talk_to_mlflow_leave_retries_to_its_client() -> None:
    tasks = {(m, n): t for m, n, t in _tasks()}
    assert MLFLOW_TASKS <= set(tasks)
    stacked = [f"{m}.{n}" for (m, n) in MLFLOW_TASKS if tasks[(m, n)].retries]  # type: ignore[attr-defined]
    assert stacked == [], "MLflow's client already retries: task retries would multiply the wait"


class _State:
    def __init__(self, data: object) -> None:
        self.data = data

    def result(self, raise_on_failure: bool = True) -> object:
        return self.data


def test_the_condition_reads_the_exception_from_the_failed_state() -> None:
    assert retry_unless_permanent(None, None, _State(ConnectionError("refused"))) is True
    assert retry_unless_permanent(None, None, _State(NoChampionError("none yet"))) is False
