"""Bounded waits: a dead or silent MLflow or forecast store fails a run in seconds, with one line
naming it (credentials masked), and Prefect retries only what waiting could clear.

"Dead" is a loopback port nothing listens on (connection refused); "silent" is a loopback socket
that accepts connections and never answers (what a hung server or a black-holed route looks
like to a client). Each call runs in a helper thread with a hard bound, so a regression fails
the test at the bound instead of hanging the suite for MLflow's default ten minutes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from flows.resources import open_forecast_store, open_registry
from foresight.errors import ConfigError, DependencyUnavailableError
from foresight.settings import Settings
from support.servers import free_port

pytestmark = pytest.mark.slow  # a second or more each: make test runs them, make test-fast does not

MLFLOW_ENV = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
              "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER",
              "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def within(seconds: float, call: Callable[[], Any]) -> tuple[BaseException | None, Any, float]:
    """Run ``call`` with a hard bound: (its exception or None, its result, seconds taken).
    Fails the test when it is still waiting after ``seconds`` (the thread is left to die)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=run, name="bounded-call", daemon=True)
    worker.start()
    worker.join(seconds)
    elapsed = time.monotonic() - start
    if worker.is_alive():
        pytest.fail(f"still waiting after {seconds:.0f} s: the wait is not bounded")
    return outcome.get("error"), outcome.get("result"), elapsed


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port whose connections are accepted by the kernel and never answered."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in MLFLOW_ENV:
        monkeypatch.delenv(key, raising=False)


def _one_line(exc: BaseException) -> str:
    line = str(exc)
    assert "\n" not in line, line
    return line


# -- MLflow --------------------------------------------------------------------------------------
def test_a_dead_mlflow_fails_a_registry_call_in_seconds_with_one_line(tmp_path: Path, clean_mlflow_env: None) -> None:
    port = free_port()
    settings = Settings(home=tmp_path, mlflow={"tracking_uri": f"http://alice:hunter2@127.0.0.1:{port}"})
    registry = open_registry(settings)

    error, _, elapsed = within(60, lambda: registry.champion("capacity-forecaster"))

    assert isinstance(error, DependencyUnavailableError), repr(error)
    line = _one_line(error)
    assert line.startswith(f"MLflow at http://127.0.0.1:{port} did not answer within 10 s "
                           "(3 attempts: connection refused)")
    assert "mlflow.tracking_uri" in line and "hunter2" not in line
    # Nor in MLflow's own error underneath, which Prefect logs: the URI it was given had none.
    cause: BaseException | None = error
    while cause is not None:
        assert "hunter2" not in str(cause), f"{type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    assert elapsed < 20, f"a refused connection took {elapsed:.1f} s"
    # The budget was MLflow's for the call only: nothing left behind in the process.
    assert not any(key in os.environ for key in MLFLOW_ENV)


def test_mlflow_credentials_travel_as_basic_auth_never_in_the_uri(tmp_path: Path, clean_mlflow_env: None) -> None:
    """The user info of the tracking URI reaches the server as basic auth (what the URI form
    sends) while no message can quote it: MLflow never sees it in the URI."""
    import base64
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str | None]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such model"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://alice:hunter2@127.0.0.1:{server.server_address[1]}"
        registry = open_registry(Settings(home=tmp_path, mlflow={"tracking_uri": uri}))
        error, champion, _ = within(30, lambda: registry.champion("capacity-forecaster"))
    finally:
        server.shutdown()
    assert error is None and champion is None, repr(error)
    expected = "Basic " + base64.b64encode(b"alice:hunter2").decode()
    assert seen and all(auth == expected for _, auth in seen), seen
    assert "hunter2" not in registry.tracking_uri and "hunter2" not in repr(registry.__dict__.get("tracking_uri"))
    assert not any(key in os.environ for key in MLFLOW_ENV)


def test_a_silent_mlflow_times_out_as_the_settings_say(tmp_path: Path, clean_mlflow_env: None) -> None:
    with silent_server() as port:
        settings = Settings(home=tmp_path, mlflow={"tracking_uri": f"http://127.0.0.1:{port}",
                                                   "request_timeout_seconds": 1, "max_retries": 1})
        error, _, elapsed = within(30, lambda: open_registry(settings).champion("anomaly-detector"))

    assert isinstance(error, DependencyUnavailableError), repr(error)
    assert _one_line(error).startswith(f"MLflow at http://127.0.0.1:{port} did not answer within 1 s "
                                       "(2 attempts: timed out)")
    assert elapsed < 15


def test_an_mlflow_that_keeps_failing_gets_exactly_its_retries(tmp_path: Path, clean_mlflow_env: None) -> None:
    from support.fault_proxy import FaultProxy

    with FaultProxy(f"http://127.0.0.1:{free_port()}", fail_first=100, fail_status=503) as proxy:
        settings = Settings(home=tmp_path, mlflow={"tracking_uri": proxy.url, "max_retries": 1, "backoff_factor": 0})
        error, _, elapsed = within(30, lambda: open_registry(settings).champion("failure-predictor"))

    assert isinstance(error, DependencyUnavailableError), repr(error)
    assert "(2 attempts: it kept answering with errors)" in _one_line(error)
    assert proxy.answered == [503, 503], "one request, one retry: the client is the only retry layer"
    assert elapsed < 15


@pytest.mark.parametrize("field,value", [("request_timeout_seconds", 0), ("max_retries", 11),
                                         ("backoff_factor", -1), ("backoff_jitter", 60.0)])
def test_mlflow_budgets_out_of_range_are_refused(tmp_path: Path, field: str, value: float) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        Settings(home=tmp_path, mlflow={field: value})


@pytest.mark.integration
def test_the_detect_flow_fails_within_a_minute_when_mlflow_is_dead(
    prefect_harness: None, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, clean_mlflow_env: None
) -> None:
    from flows.detect import detect

    port = free_port()
    monkeypatch.setenv("FORESIGHT_MLFLOW__TRACKING_URI", f"http://127.0.0.1:{port}")

    error, state, elapsed = within(60, lambda: detect(return_state=True))

    assert error is None, repr(error)
    assert state.is_failed()
    cause = state.result(raise_on_failure=False)
    assert isinstance(cause, DependencyUnavailableError), repr(cause)
    assert f"MLflow at http://127.0.0.1:{port} did not answer" in _one_line(cause)
    print(f"\ndetect against a dead MLflow failed after {elapsed:.1f} s")


# -- Prefect retries -----------------------------------------------------------------------------
class _NoChampionRegistry:
    def __init__(self) -> None:
        self.calls = 0

    def champion(self, name: str) -> None:
        self.calls += 1
        return None


@pytest.mark.integration
def test_a_missing_champion_is_not_retried(prefect_harness: None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.forecast_plan as forecast_plan

    registry = _NoChampionRegistry()
    monkeypatch.setattr(forecast_plan, "open_registry", lambda settings: registry)
    state = forecast_plan.load_champion_forecaster(Settings(home=tmp_path), return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), forecast_plan.NoChampionError)
    assert registry.calls == 1


@pytest.mark.integration
def test_an_empty_lake_is_not_retried(prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.train as train

    opened: list[str] = []
    real_open_lake = train.open_lake

    def counting_open_lake(settings: Settings) -> Any:
        opened.append(settings.lake_location)
        return real_open_lake(settings)

    monkeypatch.setattr(train, "open_lake", counting_open_lake)
    state = train.load_training_data(Settings(home=tmp_path), return_state=True)
    assert isinstance(state.result(raise_on_failure=False), train.NoTrainingDataError)
    assert len(opened) == 1, "no telemetry yet cannot clear by waiting"


@pytest.mark.integration
def test_a_transient_error_is_retried_and_a_permanent_one_is_not(prefect_harness: None) -> None:
    from prefect import task

    from flows.forecast_plan import NoChampionError
    from flows.retries import retry_unless_permanent

    calls = {"flaky": 0, "permanent": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_permanent)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionResetError(104, "connection reset by peer")
        return "answered"

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_permanent)
    def permanent() -> None:
        calls["permanent"] += 1
        raise NoChampionError("capacity-forecaster has no champion yet")

    assert flaky() == "answered"
    assert permanent(return_state=True).is_failed()
    assert calls == {"flaky": 3, "permanent": 1}


# -- the forecast store --------------------------------------------------------------------------
def _store_settings(home: Path, url: str, **sinks: Any) -> Settings:
    return Settings(home=home, sinks={"forecast_store_url": url, **sinks})


def test_a_dead_postgres_store_fails_at_once_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql+psycopg://foresight:s3cret@127.0.0.1:{port}/forecasts"

    error, _, elapsed = within(30, lambda: open_forecast_store(_store_settings(tmp_path, url)))

    assert isinstance(error, DependencyUnavailableError), repr(error)
    line = _one_line(error)
    assert line.startswith(f"forecast store at postgresql+psycopg://foresight:***@127.0.0.1:{port}/forecasts "
                           "did not answer (connection refused)")
    assert "sinks.forecast_store_url" in line and "s3cret" not in line
    assert elapsed < 15


def test_a_silent_postgres_store_gives_up_after_the_connect_timeout(tmp_path: Path) -> None:
    with silent_server() as port:
        url = f"postgresql+psycopg://foresight@127.0.0.1:{port}/forecasts"
        settings = _store_settings(tmp_path, url, forecast_store_connect_timeout_seconds=2)
        error, _, elapsed = within(30, lambda: open_forecast_store(settings))

    assert isinstance(error, DependencyUnavailableError), repr(error)
    assert "did not answer (no answer within 2 s)" in _one_line(error)
    assert elapsed < 15


@pytest.mark.integration
def test_a_store_database_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from support.postgres import PG_ADMIN_URL, temporary_database

    with temporary_database():  # skips (outside CI) when no PostgreSQL answers
        url = make_url(PG_ADMIN_URL).set(database="foresight_no_such_db").render_as_string(hide_password=False)
        with pytest.raises(ConfigError, match="refused to open: .*does not exist") as info:
            open_forecast_store(_store_settings(tmp_path, url))
    assert not info.value.retryable


@pytest.mark.integration
def test_the_store_cancels_a_statement_past_its_timeout() -> None:
    from connectors.sinks.forecast_store import engine_options
    from support.postgres import temporary_database

    with temporary_database() as url:
        engine = create_engine(url, **engine_options(url, statement_timeout_seconds=1))
        try:
            start = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout"), engine.connect() as conn:
                conn.execute(text("SELECT pg_sleep(10)"))
            assert time.monotonic() - start < 8
        finally:
            engine.dispose()


def test_engine_options_bound_connecting_and_statements_on_postgres_only() -> None:
    from connectors.sinks.forecast_store import engine_options

    assert engine_options("postgresql+psycopg://u:p@db/f", connect_timeout_seconds=7, statement_timeout_seconds=30) == {
        "connect_args": {"connect_timeout": 7, "options": "-c statement_timeout=30000"}, "pool_timeout": 7.0}
    assert engine_options("sqlite:///forecasts.db") == {}
    # What the URL sets itself wins; 0 means no statement limit.
    assert engine_options("postgresql+psycopg://db/f?connect_timeout=3")["connect_args"] == {
        "options": "-c statement_timeout=300000"}
    assert engine_options("postgresql+psycopg://db/f", statement_timeout_seconds=0)["connect_args"] == {
        "connect_timeout": 10}


def test_the_default_mlflow_budget_bounds_a_silent_server_well_under_detects_interval(tmp_path: Path) -> None:
    from foresight.mlflow_http import MlflowHttpBudget

    budget = open_registry(Settings(home=tmp_path)).budget
    assert budget == MlflowHttpBudget(timeout_seconds=10, max_retries=2, backoff_factor=1, backoff_jitter=0.5)
    assert budget.worst_case_seconds() < 60  # detect runs every 5 minutes


def test_the_mlflow_budget_is_scoped_to_registry_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from foresight.mlflow_http import MlflowHttpBudget, http_budget

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")  # a user's own setting survives
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with http_budget(MlflowHttpBudget(timeout_seconds=3, max_retries=1)):
        with http_budget(MlflowHttpBudget(timeout_seconds=9)):  # nested calls share the outer budget
            assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
