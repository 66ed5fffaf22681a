"""Real Prometheus and node_exporter on loopback for integration tests.

History is backfilled with ``promtool tsdb create-blocks-from openmetrics`` into a fresh TSDB, then
Prometheus serves it; command lines, config and the backfill are the local stack's
(:mod:`foresight.cli.local_stack.servers`). ``support.fault_proxy.FaultProxy`` sits between client
and server to answer 503, stall past the client's timeout, or drop connections when the server
behind it is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from foresight.cli.local_stack.servers import (
    INSTALL_HINTS,
    backfill_tsdb,
    find_binary,
    node_exporter_spec,
    prometheus_config,
    prometheus_spec,
)
from support.servers import free_port, missing_dependency, running_server

BINARIES = {
    "prometheus": "prometheus",
    "promtool": "promtool",
    "node_exporter": "prometheus-node-exporter",
}


def require_binary(key: str) -> str:
    """The binary's path; skip the test when it is missing, except in CI where that is a failure."""
    name = BINARIES[key]
    path = find_binary(name)
    if path is None:
        message = f"{name} not found on PATH (install with: {INSTALL_HINTS[name]})"
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
    backfill_tsdb(promtool, source, tsdb, timeout=120)


def write_config(path: Path, *, scrape_targets: dict[str, str] | None = None, interval: str = "1s") -> Path:
    """A Prometheus config scraping ``job -> host:port`` targets (none: serve backfilled data only)."""
    path.write_text(prometheus_config(scrape_targets or {}, interval=interval))
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
    pid: int | None = None
    _stack: list = field(default_factory=list)

    def start(self) -> None:
        spec = prometheus_spec(require_binary("prometheus"), self.port, config=self.config, tsdb=self.tsdb,
                               retention="400d", extra=(f"--query.lookback-delta={self.lookback}", "--log.level=warn"))
        context = running_server(spec, self.log, timeout=60)
        self.pid = context.__enter__()
        self._stack.append(context)

    def stop(self) -> None:
        while self._stack:
            self._stack.pop().__exit__(None, None, None)
        self.pid = None


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
    port = free_port()
    spec = node_exporter_spec(require_binary("node_exporter"), port, collectors=("cpu", "meminfo", "loadavg"))
    with running_server(spec, workdir / "node_exporter.log", timeout=30):
        yield f"127.0.0.1:{port}"


