"""Real Prometheus, node_exporter and a fault-injecting proxy on loopback for integration tests.

History is backfilled with ``promtool tsdb create-blocks-from openmetrics`` into a fresh TSDB, then
Prometheus serves it. :class:`FaultProxy` sits between client and server to answer 503, stall
past the client's timeout, or drop connections when the server behind it is down.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import requests

from support.servers import free_port, missing_dependency, server_process

BINARIES = {
    "prometheus": "prometheus",
    "promtool": "promtool",
    "node_exporter": "prometheus-node-exporter",
}
INSTALL_HINT = "apt-get install -y prometheus prometheus-node-exporter prometheus-pushgateway"


def require_binary(key: str) -> str:
    """The binary's path; skip the test when it is missing, except in CI where that is a failure."""
    name = BINARIES[key]
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (install with: {INSTALL_HINT})"
        missing_dependency(message)
    return path


@dataclass
class SyntheticSeries:
    """One backfilled series: its metric name, labels and samples (NaN values allowed)."""

    metric: str
    labels: dict[str, str]
    ds: pd.DatetimeIndex
    values: np.ndarray
    kind: str = "gauge"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ds": self.ds, "y": self.values})


def write_openmetrics(path: Path, series: list[SyntheticSeries]) -> Path:
    """OpenMetrics text for ``promtool``: one family per metric, samples in time order."""
    families: dict[str, list[SyntheticSeries]] = {}
    for s in series:
        families.setdefault(s.metric, []).append(s)
    with open(path, "w") as out:
        for metric, members in families.items():
            family = metric.removesuffix("_total") if members[0].kind == "counter" else metric
            out.write(f"# TYPE {family} {members[0].kind}\n")
            for s in members:
                label_text = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                seconds = ((s.ds - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s")).astype(str)
                values = np.char.mod("%.17g", s.values).astype(object)
                values[np.isnan(s.values)] = "NaN"
                values[np.isposinf(s.values)] = "+Inf"
                prefix = f"{metric}{{{label_text}}} "
                out.write("".join(prefix + v + " " + t + "\n" for v, t in zip(values, seconds, strict=True)))
        out.write("# EOF\n")
    return path


def backfill(tsdb: Path, series: list[SyntheticSeries]) -> None:
    """Write the series into TSDB blocks under ``tsdb`` with promtool."""
    promtool = require_binary("promtool")
    tsdb.mkdir(parents=True, exist_ok=True)
    source = write_openmetrics(tsdb.parent / "backfill.om", series)
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(tsdb)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({done.returncode}): {done.stderr[-2000:]}")


def write_config(path: Path, *, scrape_targets: dict[str, str] | None = None, interval: str = "1s") -> Path:
    """A Prometheus config scraping ``job -> host:port`` targets (none: serve backfilled data only)."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}", "scrape_configs:"]
    for job, target in (scrape_targets or {}).items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{target}']"]
    if not scrape_targets:
        lines[-1] = "scrape_configs: []"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class PrometheusServer:
    """A running Prometheus: its URL, data folder and process (restartable on the same port)."""

    url: str
    port: int
    tsdb: Path
    config: Path
    log: Path
    lookback: str = "30s"
    process: subprocess.Popen | None = None
    _stack: list = field(default_factory=list)

    def args(self) -> list[str]:
        return [require_binary("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={self.tsdb}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=400d",
                f"--query.lookback-delta={self.lookback}", "--log.level=warn"]

    def start(self) -> None:
        context = server_process(self.args(), health_url=f"{self.url}/-/ready", log=self.log, timeout=60)
        self.process = context.__enter__()
        self._stack.append(context)

    def stop(self) -> None:
        while self._stack:
            self._stack.pop().__exit__(None, None, None)
        self.process = None


@contextmanager
def prometheus(workdir: Path, *, series: list[SyntheticSeries] | None = None,
               scrape_targets: dict[str, str] | None = None, lookback: str = "30s") -> Iterator[PrometheusServer]:
    """Prometheus on a free loopback port, serving backfilled ``series`` and scraping targets."""
    workdir.mkdir(parents=True, exist_ok=True)
    tsdb = workdir / "tsdb"
    if series:
        backfill(tsdb, series)
    port = free_port()
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", port=port, tsdb=tsdb,
                              config=write_config(workdir / "prometheus.yml", scrape_targets=scrape_targets),
                              log=workdir / "prometheus.log", lookback=lookback)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def node_exporter(workdir: Path) -> Iterator[str]:
    """node_exporter on a free loopback port with a few cheap collectors; yields ``host:port``."""
    binary = require_binary("node_exporter")
    port = free_port()
    args = [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
            "--collector.cpu", "--collector.meminfo", "--collector.loadavg"]
    with server_process(args, health_url=f"http://127.0.0.1:{port}/metrics", log=workdir / "node_exporter.log",
                        timeout=30):
        yield f"127.0.0.1:{port}"


class FaultProxy:
    """An HTTP proxy to ``upstream`` that can answer 503 or stall for its first requests.

    ``fail_first`` requests get a Prometheus-shaped 503; ``delay_first`` requests sleep ``delay``
    seconds before forwarding. When the upstream is unreachable the client connection is closed
    without an answer, as a crashed server would. ``queries`` records each query's form fields.
    """

    def __init__(self, upstream: str, *, fail_first: int = 0, delay_first: int = 0, delay: float = 0.0,
                 on_request: Callable[[int], None] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail_first, self.delay_first, self.delay = fail_first, delay_first, delay
        self.on_request = on_request  # called with the request's number before it is forwarded
        self.queries: list[dict[str, str]] = []
        self.answered: list[int] = []
        self._count = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                n = proxy._next()
                with proxy._lock:
                    proxy.queries.append(fields)
                if n <= proxy.fail_first:
                    self._answer(503, b'{"status":"error","errorType":"unavailable","error":"injected 503"}')
                    return
                if n <= proxy.delay_first:
                    time.sleep(proxy.delay)
                if proxy.on_request is not None:
                    proxy.on_request(n)
                try:
                    upstream = requests.post(proxy.upstream + self.path, data=body, timeout=60,
                                             headers={"Content-Type": self.headers.get("Content-Type", "")})
                except requests.ConnectionError:
                    self.close_connection = True  # no answer at all: the server is gone
                    return
                self._answer(upstream.status_code, upstream.content)

            def _answer(self, status: int, payload: bytes) -> None:
                with proxy._lock:
                    proxy.answered.append(status)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler
