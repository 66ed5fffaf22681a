"""Bounded waits on a remote MLflow tracking server: the HTTP budget, credentials kept out of the
URI, and the one error a server that did not answer becomes.

Every call to a remote tracking server runs under an :class:`MlflowHttpBudget` (per-request
timeout, retries and backoff of MLflow's HTTP client, from ``settings.mlflow``), so a dead server
fails a call in seconds with one :class:`MlflowUnavailableError` line instead of MLflow's default
minutes. :func:`bounded` wraps a method of an object that carries its budget
(:class:`foresight.model_registry.ModelRegistry`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from foresight.errors import DependencyUnavailableError, ForesightError, exception_chain
from foresight.redact import redact_url

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class MlflowHttpBudget:
    """How long one MLflow REST request may wait, and how often MLflow's client retries it.

    MLflow reads these only from environment variables, at each request; :func:`http_budget`
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
def http_budget(budget: MlflowHttpBudget, credentials: dict[str, str] | None = None) -> Iterator[None]:
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
    transport = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        Urllib3Timeout,
        ConnectionError,
        TimeoutError,
    )
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


class BudgetedClient(Protocol):
    """What :func:`bounded` needs of the object whose method it wraps."""

    tracking_uri: str
    budget: MlflowHttpBudget

    @property
    def http_credentials(self) -> dict[str, str]: ...


def bounded(method: Callable[P, R]) -> Callable[P, R]:
    """Run a method of a :class:`BudgetedClient` under its HTTP budget; a server that did not
    answer becomes one :class:`MlflowUnavailableError` line."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        client: BudgetedClient = args[0]  # type: ignore[assignment]
        with http_budget(client.budget, client.http_credentials):
            try:
                return method(*args, **kwargs)
            except ForesightError:
                raise
            except Exception as exc:
                reason = unavailable_reason(exc)
                if reason is None:
                    raise
                raise MlflowUnavailableError(client.tracking_uri, client.budget, reason) from exc

    return wrapper
