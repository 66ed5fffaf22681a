"""``foresight stream`` as real processes against a real broker (tansu), one broker per session.

- end to end, with a ``kill -9`` mid-stream and a restart: every incident of an uninterrupted
  stream is paged exactly once (same ids after the replay from the checkpoint), log aggregates
  are exact despite the replay, poison messages reach the quarantine and the dead-letter topic
  with their reason;
- two processors in one group over two partitions, one killed: the other takes its partition
  over through the checkpoint, nothing lost, nothing paged twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
import yaml

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointStore
from foresight.lake import Lake
from foresight.quarantine import read_rejected
from support.kafka import Broker, create_topics, read_all
from support.stream_scenario import Message, interleave, log_messages, metric_messages, reference_incidents

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# The processor mines log templates with features.logs.miner (its own branch until merged).
pytest.importorskip("features.logs.miner", reason="features.logs.miner (the template miner) is not installed")

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"cart": 0, "search": 1}
PER_STEP_LINES = 3


def _produce(bootstrap: str, messages: Sequence[Message | tuple[str, int, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = []
        for m in messages:
            if isinstance(m, Message):
                futures.append(
                    producer.send(m.topic, key=m.key.encode(), value=m.value, partition=m.partition)
                )
            else:
                topic, partition, value = m
                futures.append(producer.send(topic, value=value, partition=partition))
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)


class Topics:
    def __init__(self, bootstrap: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.metrics, self.logs = f"metrics-{tag}", f"logs-{tag}"
        self.incidents, self.dead = f"incidents-{tag}", f"dead-{tag}"
        self.group = f"stream-{tag}"
        create_topics(bootstrap, {self.metrics: 2, self.logs: 2, self.incidents: 1, self.dead: 1})

    def rename(self, messages: list[Message]) -> list[Message]:
        names = {"metrics": self.metrics, "logs": self.logs}
        return [Message(names[m.topic], m.key, m.partition, m.value, m.step) for m in messages]


def _config(tmp: Path, broker: Broker, topics: Topics, **stream: object) -> Path:
    home = tmp / "home"
    config = {
        "home": str(home),
        "detect": {"call_graph": {}},
        "stream": {
            "bootstrap_servers": [broker.bootstrap],
            "group_id": topics.group,
            "metrics_topic": topics.metrics,
            "logs_topic": topics.logs,
            "incidents_topic": topics.incidents,
            "dead_letter_topic": topics.dead,
            "metrics_port": 0,
            "kafka_options": {
                "session_timeout_ms": 6000,
                "max_poll_interval_ms": 20000,
                "request_timeout": 10,
                "connect_timeout": 5,
            },
            **stream,
        },
    }
    path = tmp / "foresight.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FORESIGHT_HOME": str(config.parent / "home")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "foresight.cli", "stream", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def _wait(what: str, condition: Callable[[], bool], timeout: float, logs: Sequence[Path] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


def _checkpoints(home: Path, group: str) -> dict[int, Checkpoint]:
    store = CheckpointStore(home / "lake" / "_stream_checkpoints")
    return {p: c for p in (0, 1) if (c := store.load(group, p)) is not None}


def _offsets(home: Path, group: str) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for c in _checkpoints(home, group).values():
        out.update(c.offsets)
    return out


def _outbox(home: Path) -> list[dict]:
    path = home / "outbox" / "pagerduty-events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _expected_offsets(
    messages: Sequence[Message], extra: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    counts = pd.Series([(m.topic, m.partition) for m in messages]).value_counts()
    return {k: int(v) + extra.get(k, 0) for k, v in counts.items()}


def _pages(home: Path) -> tuple[list[str], list[str]]:
    events = _outbox(home)
    return (
        [e["payload"]["custom_details"]["incident_id"] for e in events if e["event_action"] == "trigger"],
        [e["dedup_key"] for e in events if e["event_action"] == "resolve"],
    )


def test_end_to_end_with_kill_9_and_restart_pages_each_incident_once(
    kafka_broker: Broker, tmp_path: Path, processes: list
) -> None:
    topics = Topics(kafka_broker.bootstrap)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    steps, faults = 200, {"cart": (120, 135), "search": (165, 180)}
    scenario = interleave(
        metric_messages(SERVICES, steps, faults, end=end),
        log_messages(SERVICES, steps, faults, end=end, per_step=PER_STEP_LINES),
    )
    reference = reference_incidents(scenario)
    opened = [i for i, s in reference if s == "open"]
    assert len(opened) >= 2, reference  # the scenario itself: one fault per service raises an incident
    messages = topics.rename(scenario)
    future = (end + pd.Timedelta(hours=2)).isoformat()  # a producer whose clock is two hours ahead
    poison = [
        (topics.metrics, 0, b"{not json"),
        (
            topics.logs,
            1,
            json.dumps(
                {"ts": "2026-01-01T00:00:00", "service": "cart", "level": "INFO", "message": "naive"}
            ).encode(),
        ),
        (
            topics.metrics,
            1,
            json.dumps(
                {"metric": "cpu_pct", "service": "search", "resource": "i-1", "ts": future, "value": 1.0}
            ).encode(),
        ),
    ]
    config = _config(tmp_path, kafka_broker, topics, checkpoint_messages=300, checkpoint_seconds=3600)
    home, log = tmp_path / "home", tmp_path / "stream.log"
    first = [m for m in messages if m.step < 150]
    _produce(kafka_broker.bootstrap, [*first[:500], *poison, *first[500:]])
    processes.append(_start(config, log))
    # Killed once cart's incident was paged: work since the last checkpoint (every 300 messages)
    # dies with it and is replayed after the restart.
    _wait("cart's page", lambda: any("cart" in str(e) for e in _outbox(home)), 90, [log])
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    killed_at = _offsets(home, topics.group)
    _produce(kafka_broker.bootstrap, [m for m in messages if m.step >= 150])
    # The restart checkpoints every half second, so the test sees when it has read everything.
    processes.append(_start(_config(tmp_path, kafka_broker, topics, checkpoint_seconds=0.5), log))
    expected = _expected_offsets(
        messages, {(topics.metrics, 0): 1, (topics.logs, 1): 1, (topics.metrics, 1): 1}
    )
    _wait("everything read", lambda: _offsets(home, topics.group) == expected, 90, [log])
    processes[1].send_signal(signal.SIGTERM)
    assert processes[1].wait(30) == 0, log.read_text()[-3000:]

    assert _offsets(home, topics.group) == expected
    assert 0 < sum(killed_at.values()) < len(first) + len(poison)  # killed mid-stream, after a checkpoint
    triggers, resolves = _pages(home)
    assert sorted(triggers) == sorted(opened)  # same ids after the replay: one page each, none lost
    assert len(resolves) == len(set(resolves)) == len([s for _, s in reference if s == "resolved"])
    on_topic = {
        (json.loads(r.value)["incident_id"], json.loads(r.value)["state"])
        for r in read_all(kafka_broker.bootstrap, topics.incidents, 100, timeout=5)
    }
    assert on_topic == set(reference)

    lake = Lake(home / "lake")
    telemetry = lake.read("telemetry")
    lines = telemetry[telemetry["unique_id"].astype(str).str.endswith("/logs/log_lines")]
    assert len(lines) == steps * len(SERVICES)  # one row per service and minute, exact after the replay
    assert set(lines["y"]) == {float(PER_STEP_LINES)}
    ratio = telemetry[telemetry["unique_id"].astype(str) == "cart/logs/log_error_ratio"].set_index("ds")["y"]
    assert ratio.max() == pytest.approx(2 / 3) and ratio.min() == 0.0

    dead = read_all(kafka_broker.bootstrap, topics.dead, 3, timeout=10)
    reasons = sorted(dict(r.headers)["foresight.reason"].decode() for r in dead)
    skewed = [r for r in reasons if "clock skew" in r]
    assert len(skewed) == 1 and skewed[0].startswith("ts: 7")  # ~7,200 s ahead
    assert sorted(set(reasons) - set(skewed)) == [
        "message: malformed JSON",
        "ts: naive timestamp (no timezone)",
    ]
    assert {dict(r.headers)["foresight.origin"].decode().split("/")[0] for r in dead} == {
        topics.metrics,
        topics.logs,
    }
    rejected = read_rejected(lake)
    assert sorted(set(rejected["reason"])) == reasons


def test_a_killed_consumer_s_partition_is_taken_over_through_its_checkpoint(
    kafka_broker: Broker, tmp_path: Path, processes: list
) -> None:
    topics = Topics(kafka_broker.bootstrap)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    steps, faults = 190, {"cart": (110, 125), "search": (160, 175)}
    scenario = interleave(
        metric_messages(SERVICES, steps, faults, end=end, seed=3),
        log_messages(SERVICES, steps, faults, end=end, per_step=1),
    )
    reference = reference_incidents(scenario)
    opened = [i for i, s in reference if s == "open"]
    messages = topics.rename(scenario)
    config = _config(tmp_path, kafka_broker, topics, checkpoint_seconds=0.5)
    home = tmp_path / "home"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes.extend(_start(config, log) for log in logs)
    owners = lambda: {p: c.written_by.rsplit(":", 1)[1] for p, c in _checkpoints(home, topics.group).items()}  # noqa: E731
    _wait("each processor owning one partition", lambda: len(set(owners().values())) == 2, 90, logs)
    first = [m for m in messages if m.step < 140]
    _produce(kafka_broker.bootstrap, first)
    _wait(
        "the first half checkpointed",
        lambda: _offsets(home, topics.group) == _expected_offsets(first, {}),
        60,
        logs,
    )
    victim = processes[1]
    victim_partition = next(p for p, pid in owners().items() if pid == str(victim.pid))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    _produce(kafka_broker.bootstrap, [m for m in messages if m.step >= 140])
    survivor = str(processes[0].pid)
    _wait(
        "the survivor owning both partitions with everything read",
        lambda: (
            set(owners().values()) == {survivor}
            and _offsets(home, topics.group) == _expected_offsets(messages, {})
        ),
        90,
        logs,
    )
    processes[0].send_signal(signal.SIGTERM)
    assert processes[0].wait(30) == 0

    triggers, resolves = _pages(home)
    assert sorted(triggers) == sorted(opened)
    assert len(resolves) == len(set(resolves)) == len([s for _, s in reference if s == "resolved"])
    taken_over = [s for s, p in SERVICES.items() if p == victim_partition]
    assert any(taken_over[0] in str(e) for e in _outbox(home) if e["event_action"] == "trigger")
