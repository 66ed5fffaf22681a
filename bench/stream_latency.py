"""``foresight bench stream-latency``: from the produce time of the sample that opens an incident to
the incident on the ``incidents`` topic, with ``series`` series at one sample per ``step`` seconds.

- **Processor**: ``foresight stream`` in its own process (``sys.executable -m foresight.cli``), as
  deployed, over fresh topics; its ``/metrics`` are scraped every second for consumer lag,
  processing lag and messages taken.
- **Warm-up (compressed time)**: ``warmup_steps`` steps of history for every series, produced as
  fast as the client goes (event times ``step`` seconds apart, ending where the live phase
  starts), so each service's engine has a baseline; the live phase starts once the processor has
  taken all of it.
- **Live (real time)**: ``live_steps`` steps, one every ``step`` seconds of wall clock; each
  service sends its samples at its own offset in the step (``services`` evenly spread, as
  scrapers do), so the input is a steady ``series / step`` samples a second. Event time continues
  the warm-up's, so it runs behind the wall clock by the warm-up's length; latency is wall clock.
- **Faults**: ``faulty`` services get latency and error rate eight times their level from live
  step 2 (half of them) and live step 5 (the other half) onwards, so incidents open mid-stream.
- **Latency** of an incident: the time its ``open`` message was read from the ``incidents``
  topic (a consumer polling every 50 ms) minus the produce time of the last sample of the
  service's step it opened at (the sample that completed that step and so raised it).
- **Keeping up**: consumer lag sampled each second in the live phase: its maximum, its trend
  (least-squares slope, messages per second) and its mean in the last third against the first.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.stream_probes import IncidentReader, LagSample, sample_lag, scrape

SERIES = (
    ("latency_p95", "seconds", 0.2),
    ("error_rate", "ratio", 0.01),
    ("cpu_pct", "percent", 40.0),
    ("request_rate", "requests_per_second", 100.0),
)
FAULTY_METRICS = ("latency_p95", "error_rate")


@dataclass
class LatencyFigures:
    series: int
    services: int
    step: float
    warmup_steps: int
    live_steps: int
    latencies: list[float] = field(default_factory=list)  # seconds, one per faulty service's incident
    faulty: int = 0
    other_incidents: int = 0  # opened on services without a fault (false alarms of the run)
    warmup_seconds: float = 0.0
    produced: int = 0
    lag: list[LagSample] = field(default_factory=list)
    live_from: float = 0.0  # wall clock of live step 0
    drain_seconds: float = float("nan")  # after the last live send, until every message was taken

    def processing_lag_max(self) -> float:
        """Largest processing lag sampled after the first live step (before it, the gauge still
        holds the warm-up backlog's last value)."""
        later = [s.processing_lag for s in self.lag if s.at >= self.live_from + self.step]
        return max(later, default=float("nan"))

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    @property
    def lag_slope(self) -> float:
        """Trend of the consumer lag in the live phase, messages per second (least squares)."""
        if len(self.lag) < 3:
            return float("nan")
        t = np.array([s.at for s in self.lag])
        return float(np.polyfit(t - t[0], [s.consumer_lag for s in self.lag], 1)[0])

    def lag_thirds(self) -> tuple[float, float]:
        """Mean consumer lag in the first and the last third of the live phase."""
        n = max(len(self.lag) // 3, 1)
        lags = [s.consumer_lag for s in self.lag]
        return float(np.mean(lags[:n])), float(np.mean(lags[-n:]))


def run(
    bootstrap: str,
    *,
    series: int = 10_000,
    services: int = 100,
    step: float = 10.0,
    warmup_steps: int = 20,
    live_steps: int = 9,
    faulty: int = 20,
    partitions: int = 4,
    seed: int = 0,
) -> LatencyFigures:
    """Start a processor, warm it up, stream live with faults; the processor is always stopped."""
    per_service = series // services
    instances = max(per_service // len(SERIES), 1)
    figures = LatencyFigures(instances * len(SERIES) * services, services, step, warmup_steps, live_steps)
    names = [f"svc-{i:03d}" for i in range(services)]
    fault_from = {name: (2 if i % 2 == 0 else 5) for i, name in enumerate(names[:faulty])}
    figures.faulty = len(fault_from)
    topics = _topics(bootstrap, partitions)
    with tempfile.TemporaryDirectory(prefix="foresight-bench-latency-") as tmp:
        work = Path(tmp)
        port = _free_port()
        process = _start_processor(work, bootstrap, topics, port)
        try:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            _wait(
                lambda: scrape(metrics_url).get("owned", 0) >= partitions,
                120,
                "the processor's partitions",
                work,
            )
            reader = IncidentReader(bootstrap, topics["incidents"])
            reader.start()
            producer = _producer(bootstrap)
            rng = np.random.default_rng(seed)
            t_live = float(int(time.time()))  # event time of live step 0 (whole seconds: ids match exactly)
            base = t_live - warmup_steps * step
            started = time.perf_counter()
            for k in range(warmup_steps):
                for name in names:
                    _send_step(
                        producer, topics["metrics"], name, instances, base + k * step, rng, faulty=False
                    )
            producer.flush()
            figures.produced = warmup_steps * len(names) * instances * len(SERIES)
            _wait(
                lambda: (
                    scrape(metrics_url).get("taken", 0) >= figures.produced
                    and scrape(metrics_url).get("consumer_lag", 1) == 0
                ),
                600,
                "the warm-up to be taken",
                work,
            )
            figures.warmup_seconds = time.perf_counter() - started
            sent_at = _live(
                producer,
                topics["metrics"],
                names,
                instances,
                t_live,
                step,
                live_steps,
                fault_from,
                rng,
                metrics_url,
                figures,
            )
            producer.flush()
            total = figures.produced + live_steps * len(names) * instances * len(SERIES)
            last_send = max(sent_at.values())
            _wait(lambda: scrape(metrics_url).get("taken", 0) >= total, 120, "every live sample taken", work)
            figures.drain_seconds = max(time.time() - last_send, 0.0)
            time.sleep(1.0)  # incidents of the last step reach the reader
            reader.stop()
            for body, received in reader.opened:
                service, at = body["key"], _epoch(body["at"])
                if service in fault_from and (service, at) in sent_at:
                    figures.latencies.append(received - sent_at[(service, at)])
                else:
                    figures.other_incidents += 1
            producer.close(timeout=10)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    return figures


def _live(
    producer: Any,
    topic: str,
    names: list[str],
    instances: int,
    t_live: float,
    step: float,
    live_steps: int,
    fault_from: dict[str, int],
    rng: np.random.Generator,
    metrics_url: str,
    figures: LatencyFigures,
) -> dict[tuple[str, float], float]:
    """The live phase at real pace; returns the produce time of each (service, step)'s last sample."""
    sent_at: dict[tuple[str, float], float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample_lag, args=(metrics_url, figures.lag, stop), daemon=True)
    wall0 = figures.live_from = time.time() + 1.0
    sampler.start()
    try:
        for k in range(live_steps):
            ds = t_live + k * step
            for i, name in enumerate(names):
                slot = wall0 + k * step + i * step / len(names)
                pause = slot - time.time()
                if pause > 0:
                    time.sleep(pause)
                faulty = name in fault_from and k >= fault_from[name]
                sent_at[(name, ds)] = _send_step(producer, topic, name, instances, ds, rng, faulty=faulty)
        time.sleep(max(wall0 + live_steps * step - time.time(), 0.0))  # the last step's samples are taken
    finally:
        stop.set()
        sampler.join(5)
    return sent_at


def _send_step(
    producer: Any,
    topic: str,
    service: str,
    instances: int,
    ds: float,
    rng: np.random.Generator,
    *,
    faulty: bool,
) -> float:
    """Every series of ``service`` at ``ds``; returns the produce time of the last sample."""
    noise = 1 + 0.05 * rng.standard_normal(instances * len(SERIES))
    key = service.encode()
    last = 0.0
    j = 0
    for i in range(instances):
        for metric, unit, level in SERIES:
            value = level * (8.0 if faulty and metric in FAULTY_METRICS else float(noise[j]))
            j += 1
            body = {
                "metric": metric,
                "service": service,
                "resource": f"i-{i:02d}",
                "ts": ds,
                "value": value,
                "unit": unit,
            }
            last = time.time()
            producer.send(topic, key=key, value=json.dumps(body).encode())
    return last


def _topics(bootstrap: str, partitions: int) -> dict[str, str]:
    from kafka.admin import KafkaAdminClient, NewTopic  # lazy: kafka-python

    tag = uuid.uuid4().hex[:8]
    topics = {name: f"latency-{name}-{tag}" for name in ("metrics", "logs", "incidents", "dead")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(topics["metrics"], partitions, 1),
                NewTopic(topics["logs"], partitions, 1),
                NewTopic(topics["incidents"], 1, 1),
                NewTopic(topics["dead"], 1, 1),
            ]
        )
    finally:
        admin.close()
    return topics


def _producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer  # lazy: kafka-python

    return KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=2, batch_size=1 << 20)


def _start_processor(
    work: Path, bootstrap: str, topics: dict[str, str], port: int
) -> subprocess.Popen[bytes]:
    config = work / "foresight.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(work / "home"),
                "detect": {"call_graph": {}},
                "stream": {
                    "bootstrap_servers": [bootstrap],
                    "group_id": f"latency-{uuid.uuid4().hex[:8]}",
                    "metrics_topic": topics["metrics"],
                    "logs_topic": topics["logs"],
                    "incidents_topic": topics["incidents"],
                    "dead_letter_topic": topics["dead"],
                    "metrics_port": port,
                },
            }
        )
    )
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
        "FORESIGHT_HOME": str(work / "home"),
    }
    log = (work / "stream.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "foresight.cli", "stream", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
    )


def _wait(condition: Any, timeout: float, what: str, work: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    log = (work / "stream.log").read_text(errors="replace")[-2000:] if (work / "stream.log").exists() else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}; processor log:\n{log}")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
