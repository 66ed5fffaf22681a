"""Benchmark the Prometheus source against plain ``requests`` + ``json`` on the same queries.

Backfills ``n_series`` series x ``days`` at one minute into a throwaway local Prometheus (Debian's
``prometheus`` and ``promtool``), then measures (a) Foresight's ``PrometheusSource.fetch`` plus
the lake upsert and (b) the very same range requests fetched sequentially with ``requests`` and
decoded with ``json`` only (no frames, no lake): the floor any client pays. Prints both rates.

    python -m bench.prometheus_ingest [n_series] [days]
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from connectors.sources.base import Window
from connectors.sources.prometheus.query import range_query_params
from connectors.sources.prometheus.source import PrometheusSource
from foresight.lake import Lake

GROUP_SIZE = 10  # series per configured PromQL expression (one query per group and chunk)


@dataclass
class IngestFigures:
    """Samples per second for Foresight's source (+ lake upsert) and for plain requests + json."""

    samples: int
    foresight_seconds: float
    fetch_seconds: float
    plain_seconds: float

    @property
    def foresight_rate(self) -> float:
        return self.samples / self.foresight_seconds

    @property
    def plain_rate(self) -> float:
        return self.samples / self.plain_seconds

    @property
    def ratio(self) -> float:
        """Foresight's throughput as a share of the plain client's."""
        return self.foresight_rate / self.plain_rate


def run(n_series: int = 100, days: int = 7, seed: int = 3) -> IngestFigures:
    """Backfill, serve, time both clients on the same window; the server is always stopped."""
    for binary in ("prometheus", "promtool"):
        if shutil.which(binary) is None:
            raise RuntimeError(f"{binary} not found: apt-get install -y prometheus")
    with tempfile.TemporaryDirectory(prefix="foresight-bench-prom-") as tmp:
        work = Path(tmp)
        end = pd.Timestamp.now(tz="UTC").floor("min")
        ds = pd.date_range(end - pd.Timedelta(days=days), end, freq="60s", inclusive="left")
        _backfill(work, ds, n_series, seed)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_prometheus(work, port)
        try:
            _wait_ready(url, server)
            groups = [{"name": f"bench_{g}", "promql": f'bench_metric{{group="g{g}"}}', "unit": "count"}
                      for g in range(-(-n_series // GROUP_SIZE))]
            source = PrometheusSource(name="bench", url=url, series=groups, step="60s")
            window = Window(ds[0], end)
            lake = Lake(work / "lake")
            _plain(url, source, window)  # warm-up: both timed clients then find the same server caches
            started = time.perf_counter()
            batch = source.fetch(window)
            fetched = time.perf_counter()
            lake.upsert("telemetry", batch.telemetry)
            done = time.perf_counter()
            plain_samples, plain_seconds = _plain(url, source, window)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if plain_samples != len(batch.telemetry):
        raise RuntimeError(f"clients disagree: plain decoded {plain_samples}, source {len(batch.telemetry)} samples")
    return IngestFigures(len(batch.telemetry), done - started, fetched - started, plain_seconds)


def _plain(url: str, source: PrometheusSource, window: Window) -> tuple[int, float]:
    """The same requests, one after another, decoded with json; returns (samples, seconds)."""
    samples = 0
    started = time.perf_counter()
    with requests.Session() as session:
        for request in source.requests_for(window):
            response = session.post(f"{url}/api/v1/query_range", data=range_query_params(request.query, request.chunk),
                                    timeout=60)
            response.raise_for_status()
            samples += sum(len(s["values"]) for s in json.loads(response.content)["data"]["result"])
    return samples, time.perf_counter() - started


def _backfill(work: Path, ds: pd.DatetimeIndex, n_series: int, seed: int) -> None:
    """OpenMetrics text for n_series random-walk gauges, turned into TSDB blocks by promtool."""
    rng = np.random.default_rng(seed)
    seconds = ((ds - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s")).astype(str).to_numpy()
    path = work / "bench.om"
    with open(path, "w") as out:
        out.write("# TYPE bench_metric gauge\n")
        for i in range(n_series):
            values = np.round(50 + np.cumsum(rng.normal(0, 1, len(ds))), 3).astype(str)
            prefix = f'bench_metric{{group="g{i // GROUP_SIZE}",instance="host-{i}",job="bench"}} '
            lines = np.char.add(np.char.add(np.char.add(prefix, values), " "), seconds)
            out.write("\n".join(lines.tolist()) + "\n")
        out.write("# EOF\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(work / "tsdb")],
                   check=True, capture_output=True, timeout=600)


def _start_prometheus(work: Path, port: int) -> subprocess.Popen[bytes]:
    config = work / "prometheus.yml"
    config.write_text("scrape_configs: []\n")
    return subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=400d", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prometheus exited with {server.returncode}")
        try:
            if requests.get(f"{url}/-/ready", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"prometheus at {url} not ready within {timeout:.0f}s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str]) -> None:
    n_series, days = (int(argv[0]) if argv else 100), (int(argv[1]) if len(argv) > 1 else 7)
    figures = run(n_series, days)
    print(f"{figures.samples} samples ({n_series} series x {days} days at 1 min)")
    print(f"foresight fetch + lake upsert: {figures.foresight_rate:,.0f} samples/s "
          f"({figures.foresight_seconds:.2f}s, of which fetch {figures.fetch_seconds:.2f}s)")
    print(f"plain requests + json:         {figures.plain_rate:,.0f} samples/s ({figures.plain_seconds:.2f}s)")
    print(f"ratio foresight / plain:       {figures.ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
