"""moto_server on a free loopback port, and a fault-injecting HTTP proxy to put in front of it."""

from __future__ import annotations

import http.client
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from support.servers import free_port, missing_dependency, server_process

# The locked moto next to this interpreter: a moto_server on PATH may be an older system copy.
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """Run moto_server until the block exits; yields its endpoint URL.

    Skips when moto_server is not installed, except in CI (``CI`` set), where that is a failure.
    """
    if not MOTO_SERVER.exists():
        message = f"moto_server not found at {MOTO_SERVER} (pip install 'moto[server]')"
        missing_dependency(message)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                        health_url=f"{url}/moto-api/data.json", log=log_dir / "moto.log"):
        yield url


def reset_moto(url: str) -> None:
    """Forget every resource moto holds (metrics included), so tests do not see each other's data."""
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials for the standard chain; no profile or config file from the host."""
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS",
                "AWS_RETRY_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


class FaultProxy:
    """Forwards HTTP requests to ``upstream`` but answers the next ``n`` with an error status.

    Counts what it saw, so tests can check how many attempts the client made.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self.requests = 0
        self.failed = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, n: int, statuses: tuple[int, ...] = (500, 503)) -> None:
        """Answer the next ``n`` requests with these statuses in turn instead of forwarding them."""
        with self._lock:
            self._failures = [statuses[i % len(statuses)] for i in range(n)]

    def heal(self) -> None:
        with self._lock:
            self._failures = []

    def _take(self) -> int | None:
        with self._lock:
            self.requests += 1
            if not self._failures:
                return None
            self.failed += 1
            return self._failures.pop(0)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = proxy._take()
                if status is not None:
                    payload = b"injected fault"
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                code, out_headers, payload = proxy._forward(self.command, self.path, headers, body)
                self.send_response(code)
                for key, value in out_headers:
                    if key.lower() not in {"connection", "transfer-encoding", "content-length", "server", "date"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
                pass

        return Handler

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
