"""HTTP executor for Prometheus range queries: bounded concurrency, one retry layer, clear errors.

Transient failures (connection errors, timeouts, 5xx, 429, truncated bodies) are retried with
exponential backoff; a request that keeps failing raises :class:`PrometheusUnavailableError`
naming the query and range, and the remaining requests of that batch are abandoned (a partial
pull must not advance a watermark). Client errors (bad PromQL: 400 ``bad_data``, 422
``execution``) are not retried: :class:`PrometheusQueryError` carries Prometheus' own message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from connectors.sources.prometheus.query import RangeChunk, range_query_params
from foresight.redact import redact_url

log = logging.getLogger(__name__)

QUERY_RANGE_PATH = "/api/v1/query_range"
_RETRYABLE_EXCEPTIONS = (
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class PrometheusError(RuntimeError):
    """Base class: a range query against Prometheus did not produce a result."""

    def __init__(self, message: str, *, query: str, chunk: RangeChunk) -> None:
        self.query, self.chunk = query, chunk
        super().__init__(message)


class PrometheusQueryError(PrometheusError):
    """Prometheus refused the query (4xx or ``status: error``); retrying cannot help."""

    def __init__(self, *, query: str, chunk: RangeChunk, status_code: int, error_type: str, error: str) -> None:
        self.status_code, self.error_type, self.error = status_code, error_type, error
        super().__init__(
            f"Prometheus rejected {query!r} over {chunk.describe()}: HTTP {status_code} {error_type}: {error}",
            query=query, chunk=chunk,
        )


class PrometheusUnavailableError(PrometheusError):
    """A request kept failing after every retry; ``.attempts`` and ``.last_error`` say how."""

    def __init__(self, *, url: str, query: str, chunk: RangeChunk, attempts: int, last_error: str) -> None:
        self.url, self.attempts, self.last_error = redact_url(url), attempts, redact_url(last_error)
        super().__init__(
            f"Prometheus at {self.url} failed {query!r} over {chunk.describe()} after {attempts} attempt(s): "
            f"{self.last_error}",
            query=query, chunk=chunk,
        )


class _Retryable(Exception):
    """Internal: one attempt failed in a way worth retrying."""


@dataclass(frozen=True)
class RangeRequest:
    """One query over one chunk; ``key`` lets the caller group results (e.g. the series name)."""

    key: str
    query: str
    chunk: RangeChunk


@dataclass
class RangeOutcome:
    """A request's matrix result, or the query error that isolates it."""

    request: RangeRequest
    result: list[dict[str, Any]] = field(default_factory=list)
    error: PrometheusQueryError | None = None


@dataclass
class ClientStats:
    """Counters for one client's lifetime (reported by the source, asserted by tests)."""

    requests: int = 0
    retries: int = 0
    query_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def make_session(
    *, bearer_token: str | None = None, basic_auth: tuple[str, str] | None = None,
    verify: bool | str = True, cert: str | tuple[str, str] | None = None, pool_size: int = 4,
) -> requests.Session:
    """A session carrying auth and TLS settings, with a connection pool sized for the workers."""
    if bearer_token is not None and basic_auth is not None:
        raise ValueError("use either a bearer token or basic auth, not both")
    session = requests.Session()
    if bearer_token is not None:
        session.headers["Authorization"] = f"Bearer {bearer_token}"
    session.auth = basic_auth
    session.verify = verify
    session.cert = cert
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PrometheusClient:
    """Runs range queries against one Prometheus; the only place Prometheus I/O is retried."""

    def __init__(
        self, url: str, *, session: requests.Session | None = None, timeout: float = 30.0,
        retries: int = 3, backoff: float = 0.5, max_backoff: float = 10.0, max_concurrency: int = 4,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        self.url = url.rstrip("/")
        self.session = session or make_session(pool_size=max_concurrency)
        self.timeout, self.retries = timeout, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.max_concurrency = max_concurrency
        self.stats = ClientStats()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_range(self, query: str, chunk: RangeChunk, *, abort: threading.Event | None = None) -> list[dict[str, Any]]:
        """The matrix result of one chunk, retrying transient failures with exponential backoff."""
        attempts, last = 0, ""
        while True:
            attempts += 1
            try:
                return self._attempt(query, chunk)
            except _Retryable as exc:
                last = str(exc)
            if attempts > self.retries or (abort is not None and abort.is_set()):
                raise PrometheusUnavailableError(
                    url=self.url, query=query, chunk=chunk, attempts=attempts, last_error=last
                )
            delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
            log.warning("Prometheus %s over %s failed (%s); retry %d/%d in %.2fs",
                        query, chunk.describe(), last, attempts, self.retries, delay)
            self.stats.add(retries=1)
            if abort is not None and abort.wait(delay):
                raise PrometheusUnavailableError(
                    url=self.url, query=query, chunk=chunk, attempts=attempts, last_error=f"{last} (abandoned)"
                )
            if abort is None:
                time.sleep(delay)

    def query_ranges(self, requests_: Sequence[RangeRequest]) -> list[RangeOutcome]:
        """Run requests concurrently (at most ``max_concurrency`` at once), results in request order.

        Query errors are isolated into their outcome; the first request that stays unavailable
        cancels the rest and raises, since a partial pull is not a safe place to resume from.
        """
        abort = threading.Event()
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="prometheus") as pool:
            futures = [pool.submit(self._outcome, req, abort) for req in requests_]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                abort.set()
                for future in futures:
                    future.cancel()
                raise _exception(failed)
            return [f.result() for f in futures]

    def _outcome(self, request: RangeRequest, abort: threading.Event) -> RangeOutcome:
        if abort.is_set():
            raise PrometheusUnavailableError(url=self.url, query=request.query, chunk=request.chunk,
                                             attempts=0, last_error="abandoned after another request failed")
        try:
            return RangeOutcome(request, self.query_range(request.query, request.chunk, abort=abort))
        except PrometheusQueryError as exc:
            self.stats.add(query_errors=1)
            return RangeOutcome(request, error=exc)
        except PrometheusUnavailableError:
            abort.set()  # before this worker takes another request: stop the batch at once
            raise

    def _attempt(self, query: str, chunk: RangeChunk) -> list[dict[str, Any]]:
        """One POST (form-encoded, so long PromQL fits); classifies the failure for the retry loop."""
        params = range_query_params(query, chunk, timeout=pd.Timedelta(seconds=self.timeout))
        self.stats.add(requests=1)
        try:
            response = self.session.post(self.url + QUERY_RANGE_PATH, data=params, timeout=self.timeout)
        except _RETRYABLE_EXCEPTIONS as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}: {_error_text(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            if response.ok:  # a 2xx with a cut-off body: the connection broke mid-answer
                raise _Retryable(f"unreadable JSON in HTTP {response.status_code}: {exc}") from exc
            body = {}
        if not response.ok or body.get("status") != "success":
            raise PrometheusQueryError(
                query=query, chunk=chunk, status_code=response.status_code,
                error_type=str(body.get("errorType", "unknown")),
                error=str(body.get("error") or response.text[:500]),
            )
        data = body.get("data") or {}
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(query=query, chunk=chunk, status_code=response.status_code,
                                       error_type="bad_result", error=f"expected a matrix, got {data.get('resultType')!r}")
        return list(data.get("result") or [])


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('errorType', '')}: {body.get('error', '')}".strip(": ")
    except ValueError:
        return response.text[:200].strip() or response.reason or ""


def _exception(future: Future[RangeOutcome]) -> BaseException:
    exc = future.exception()
    assert exc is not None
    return exc
