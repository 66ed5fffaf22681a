"""When a Prefect task may retry: only when waiting could clear the error.

Every task with ``retries`` passes ``retry_condition_fn=retry_unless_permanent``. Prefect calls
it with the failed state; a missing champion, no telemetry yet, a bad config, a schema or
contract violation fail the run at once instead of after every retry delay, and a dead server
(refused, timed out, 5xx / 429) is retried as the task's decorator says.

The rule (:func:`is_retryable`), first match wins, walking the exception and its causes:
a :class:`foresight.errors.ForesightError` says itself (``retryable``); so does any exception
with a boolean ``retryable`` or ``retriable`` attribute (``connectors.sinks.pagerduty_retry.DeliveryError``,
kafka-python's errors); an HTTP answer is retryable when its status is 429 or 5xx; connection
problems and timeouts (the built-in ones, requests', urllib3's, botocore's, SQLAlchemy's
``OperationalError``, DuckDB's I/O errors) are; programming and data errors (``ValueError``,
``KeyError``, ``TypeError`` ...) and anything unknown are not.
"""

from __future__ import annotations

from typing import Any

from foresight.errors import ForesightError, exception_chain

# Errors no wait can fix: bad input, bad config, bugs. LookupError covers KeyError, IndexError and
# NotReadyError (no champion, no telemetry); ValueError covers ConfigError and contract failures.
_PERMANENT: tuple[type[BaseException], ...] = (
    ValueError, LookupError, TypeError, AttributeError, NotImplementedError, AssertionError, ImportError,
    ArithmeticError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
)
# Errors of talking to a server, by module and class name, so this module imports no client library.
_TRANSIENT_NAMES: frozenset[tuple[str, str]] = frozenset({
    ("requests.exceptions", "ConnectionError"), ("requests.exceptions", "Timeout"),
    ("requests.exceptions", "ConnectTimeout"), ("requests.exceptions", "ReadTimeout"),
    ("requests.exceptions", "ChunkedEncodingError"),
    ("urllib3.exceptions", "TimeoutError"), ("urllib3.exceptions", "NewConnectionError"),
    ("urllib3.exceptions", "ProtocolError"), ("urllib3.exceptions", "MaxRetryError"),
    ("botocore.exceptions", "ConnectionError"), ("botocore.exceptions", "HTTPClientError"),
    ("sqlalchemy.exc", "OperationalError"), ("sqlalchemy.exc", "DisconnectionError"),
    ("sqlalchemy.exc", "TimeoutError"),
    ("psycopg", "OperationalError"),
    ("_duckdb", "IOException"), ("_duckdb", "ConnectionException"),  # the lake's SQL reading S3
})
# OSErrors that are not about files (sockets, name resolution, urllib's URLError) are transient.
_OS_TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (``status``, ``status_code``, ``code`` or its
    ``response.status_code``), if any."""
    for name in ("status", "status_code", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) and 100 <= value <= 599 else None


def _transient_by_name(exc: BaseException) -> bool:
    return any((klass.__module__, klass.__name__) in _TRANSIENT_NAMES for klass in type(exc).__mro__)


def _verdict(exc: BaseException) -> bool | None:
    """True / False when this exception alone decides; None to look at its cause."""
    if isinstance(exc, ForesightError):
        return bool(exc.retryable)
    for name in ("retryable", "retriable"):  # ours / PagerDuty delivery; kafka-python's KafkaError
        own = getattr(exc, name, None)
        if isinstance(own, bool):
            return own
    status = _status(exc)
    if status is not None and status >= 400:
        return status == 429 or status >= 500
    if _transient_by_name(exc) or isinstance(exc, _OS_TRANSIENT):
        return True
    if isinstance(exc, _PERMANENT):
        return False
    if type(exc) is OSError or type(exc).__name__ == "URLError":  # sockets, DNS, urllib: not files
        return True
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether running the same task again soon could succeed (see the module docstring)."""
    for cause in exception_chain(exc):
        verdict = _verdict(cause)
        if verdict is not None:
            return verdict
    return False


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only an error that waiting could clear."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            result = state.result(raise_on_failure=False)
        except Exception as raised:  # noqa: BLE001 - a result that cannot be read raises its error
            result = raised
        exc = result if isinstance(result, BaseException) else None
    # A failed state without an exception (e.g. a returned Failed state) keeps Prefect's default.
    return True if exc is None else is_retryable(exc)
