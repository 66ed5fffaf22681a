"""A local development stack: Prometheus (+ node_exporter, pushgateway), Kafka (tansu) and CloudWatch (moto).

Every server runs in the background on a fixed loopback port (:class:`StackPorts`), in its own
session, with a pid file and a log under ``$FORESIGHT_HOME/stack/``. :meth:`LocalStack.up`
starts what is not running and waits until each answers its health check; ``status`` says which
are up; ``down`` stops them (SIGTERM to the process group, SIGKILL after a grace period). The
servers' command lines are in :mod:`~foresight.cli.local_stack.servers`, starting and stopping
them in :mod:`~foresight.cli.local_stack.launcher` (which the integration tests use too).

Seeding (``up(seed_days=N)``) loads the built-in simulator's last ``N`` days so ingestion shows
real history (:mod:`~foresight.cli.local_stack.seeding`).

Memory storage: tansu and moto forget everything when stopped; Prometheus keeps its TSDB.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from foresight.cli.local_stack.launcher import ServiceSpec, StackError
from foresight.cli.local_stack.seeding import (
    INCIDENT_LABELS_FILE,
    backfill_prometheus,
    seed_cloudwatch,
    seed_kafka,
    simulated_batch,
    write_incident_labels,
)
from foresight.cli.local_stack.servers import (
    moto_spec,
    node_exporter_spec,
    prometheus_config,
    prometheus_spec,
    pushgateway_spec,
    require_binaries,
    tansu_spec,
)
from foresight.cli.local_stack.supervisor import ServiceStatus, Supervisor

__all__ = ["LocalStack", "SeedReport", "ServiceStatus", "StackPorts"]

STATE_DIR = "stack"


# -- what runs where ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StackPorts:
    """Loopback ports; moto uses 5055 so MLflow's usual 5000 stays free."""

    prometheus: int = 9090
    node_exporter: int = 9100
    pushgateway: int = 9091
    kafka: int = 9092
    moto: int = 5055


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


def scrape_targets(ports: StackPorts) -> dict[str, str]:
    """What the stack's Prometheus scrapes: itself, node_exporter and the pushgateway."""
    return {"prometheus": f"127.0.0.1:{ports.prometheus}", "node": f"127.0.0.1:{ports.node_exporter}",
            "pushgateway": f"127.0.0.1:{ports.pushgateway}"}


def service_specs(binaries: dict[str, str], ports: StackPorts, state: Path) -> list[ServiceSpec]:
    """The stack's servers in start order (Prometheus last, so its scrape targets are up)."""
    return [
        node_exporter_spec(binaries["prometheus-node-exporter"], ports.node_exporter),
        pushgateway_spec(binaries["prometheus-pushgateway"], ports.pushgateway, state / "pushgateway.data"),
        tansu_spec(binaries["tansu"], ports.kafka),
        moto_spec(binaries["moto_server"], ports.moto),
        prometheus_spec(binaries["prometheus"], ports.prometheus, config=state / "prometheus.yml",
                        tsdb=state / "prometheus-tsdb"),
    ]


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

    @property
    def _supervisor(self) -> Supervisor:
        return Supervisor(self.state)

    def log(self, name: str) -> Path:
        return self._supervisor.log(name)

    def _specs(self, binaries: dict[str, str] | None = None) -> list[ServiceSpec]:
        names = ("prometheus", "promtool", "prometheus-node-exporter", "prometheus-pushgateway", "tansu",
                 "moto_server")
        return service_specs(binaries or {n: n for n in names}, self.ports, self.state)

    def status(self) -> list[ServiceStatus]:
        """Each server: its pid if the process lives, and whether it answers its health check."""
        return self._supervisor.status(self._specs())

    def up(self, *, seed_days: int = 0, seed: int = 7, timeout: float = 60.0) -> SeedReport | None:
        """Start every server that is not running and wait for all to be healthy; optionally seed.

        Seeding backfills Prometheus before it starts, so it needs a stopped stack; the other
        two hold memory only, so they are seeded once they answer.
        """
        binaries = require_binaries()
        specs = service_specs(binaries, self.ports, self.state)
        self.state.mkdir(parents=True, exist_ok=True)
        running = [s.name for s in specs if self._supervisor.read_pid(s.name)]
        if seed_days and running:
            raise StackError(f"cannot seed: {', '.join(running)} already running under {self.state}; "
                             "run `foresight stack down` first")
        (self.state / "ports.json").write_text(json.dumps(asdict(self.ports)))
        (self.state / "prometheus.yml").write_text(
            prometheus_config(scrape_targets(self.ports), interval="15s", honor_labels=("pushgateway",)))
        report, batch = None, None
        if seed_days:
            batch = simulated_batch(seed_days, seed=seed)
            report = SeedReport(seed_days)
            report.prometheus_samples = backfill_prometheus(binaries["promtool"], self.state / "prometheus-tsdb",
                                                            batch, workdir=self.state)
            report.incident_labels = self.state / INCIDENT_LABELS_FILE
            report.incidents = write_incident_labels(batch, report.incident_labels)
        # one at a time, Prometheus last: its scrape targets are up when it starts
        started = self._supervisor.start([[s] for s in specs], timeout=timeout)
        if batch is not None and report is not None:
            try:
                report.cloudwatch_datapoints = seed_cloudwatch(f"http://127.0.0.1:{self.ports.moto}", batch)
                report.kafka_metric_messages, report.kafka_log_messages = seed_kafka(
                    f"127.0.0.1:{self.ports.kafka}", batch)
            except Exception:
                self._supervisor.stop(started, grace=10.0)
                raise
        return report

    def down(self, *, grace: float = 10.0) -> list[str]:
        """Stop every server the pid files name; returns those that were running."""
        return self._supervisor.stop([s.name for s in reversed(self._specs())], grace=grace)
