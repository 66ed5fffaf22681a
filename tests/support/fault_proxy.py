"""A fault-injecting HTTP proxy for tests: put it between a client and a real loopback server.

It forwards every request unchanged, and on demand answers with an error status instead
(``fail_first`` at construction, ``fail_next`` / ``heal`` at any time), stalls before
forwarding (``delay_first`` requests sleep ``delay`` seconds), or calls a hook with each
request's number (e.g. to stop the upstream mid-run). When the upstream is unreachable the
client's connection is closed without an answer, as a crashed server would. It records what it
saw: ``requests`` (count), ``failed`` (injected errors), ``queries`` (form fields of URL-encoded
bodies, e.g. Prometheus range queries) and ``answered`` (every status it sent back).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "server", "date"}


class FaultProxy:
    def __init__(self, upstream: str, *, fail_first: int = 0, fail_status: int = 503, delay_first: int = 0,
                 delay: float = 0.0, on_request: Callable[[int], None] | None = None) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._failures = [fail_status] * fail_first
        self.delay_first, self.delay = delay_first, delay
        self.on_request = on_request  # called with the request's number before it is forwarded
        self.requests = 0
        self.failed = 0
        self.queries: list[dict[str, str]] = []
        self.answered: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, n: int, statuses: tuple[int, ...] = (500, 503)) -> None:
        """Answer the next ``n`` requests with these statuses in turn instead of forwarding them."""
        with self._lock:
            self._failures = [statuses[i % len(statuses)] for i in range(n)]

    def heal(self) -> None:
        with self._lock:
            self._failures = []

    def _admit(self, body: bytes, content_type: str) -> tuple[int, int | None]:
        """Count the request, record its form fields; its number and the status to inject, if any."""
        with self._lock:
            self.requests += 1
            if content_type.startswith("application/x-www-form-urlencoded"):
                self.queries.append({k: v[0] for k, v in parse_qs(body.decode()).items()})
            if not self._failures:
                return self.requests, None
            self.failed += 1
            return self.requests, self._failures.pop(0)

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
                n, status = proxy._admit(body, self.headers.get("Content-Type", ""))
                if status is not None:
                    # Prometheus' error shape; other clients only look at the status.
                    error = {"status": "error", "errorType": "unavailable", "error": f"injected {status}"}
                    self._answer(status, [("Content-Type", "application/json")], json.dumps(error).encode())
                    return
                if n <= proxy.delay_first:
                    time.sleep(proxy.delay)
                if proxy.on_request is not None:
                    proxy.on_request(n)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                try:
                    code, out_headers, payload = proxy._forward(self.command, self.path, headers, body)
                except OSError:
                    self.close_connection = True  # no answer at all: the server is gone
                    return
                self._answer(code, [(k, v) for k, v in out_headers if k.lower() not in _HOP_BY_HOP], payload)

            def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                with proxy._lock:
                    proxy.answered.append(status)
                try:
                    self.send_response(status)
                    for key, value in headers:
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
                pass

        return Handler
