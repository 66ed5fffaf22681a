"""``foresight stream`` as a real process against a real broker: topics of its own, its config,
starting it, waiting on what it wrote (checkpoints, outbox), producing a scenario's messages."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kafka import KafkaProducer
from mlflow.tracking import MlflowClient

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointStore
from support.kafka import create_topics
from support.stream_scenario import Message

REPO = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, messages: Sequence[Message | tuple[str, int, bytes]]) -> None:
    """Send scenario messages (keyed, to their partition) or raw ``(topic, partition, value)``;
    wait until every one is acknowledged."""
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
    """Uniquely named input (2 partitions), incident and dead-letter topics, and a group."""

    def __init__(self, bootstrap: str, partitions: int = 2) -> None:
        tag = uuid.uuid4().hex[:8]
        self.metrics, self.logs = f"metrics-{tag}", f"logs-{tag}"
        self.incidents, self.dead = f"incidents-{tag}", f"dead-{tag}"
        self.group = f"stream-{tag}"
        self.partitions = partitions
        create_topics(
            bootstrap, {self.metrics: partitions, self.logs: partitions, self.incidents: 1, self.dead: 1}
        )

    def rename(self, messages: list[Message]) -> list[Message]:
        names = {"metrics": self.metrics, "logs": self.logs}
        return [Message(names[m.topic], m.key, m.partition, m.value, m.step) for m in messages]


@functools.cache
def _migrated_mlflow_db() -> Path:
    """An empty MLflow SQLite database, created (schema migrations run) once per test session."""
    path = Path(tempfile.mkdtemp(prefix="foresight-mlflow-template-")) / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    return path


def write_config(tmp: Path, bootstrap: str, topics: Topics, **stream: object) -> Path:
    """A foresight.yaml under ``tmp`` (home ``tmp/home``) for a processor on ``topics``.

    The home starts with a copy of a session-wide empty MLflow database: a processor looks up
    the champion at start, and creating the database there costs seconds per processor."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "mlflow.db").exists():
        shutil.copyfile(_migrated_mlflow_db(), home / "mlflow.db")
    config = {
        "home": str(home),
        "detect": {"call_graph": {}},
        "stream": {
            "bootstrap_servers": [bootstrap],
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


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``foresight stream --config config`` in the background, output appended to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FORESIGHT_HOME": str(config.parent / "home")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "foresight.cli", "stream", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )


def wait_for(what: str, condition: Callable[[], bool], timeout: float, logs: Sequence[Path] = ()) -> None:
    """Poll ``condition`` until true; fail with the end of ``logs`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


def checkpoints(home: Path, group: str, partitions: int = 2) -> dict[int, Checkpoint]:
    store = CheckpointStore(home / "lake" / "_stream_checkpoints")
    return {p: c for p in range(partitions) if (c := store.load(group, p)) is not None}


def checkpointed_offsets(home: Path, group: str, partitions: int = 2) -> dict[tuple[str, int], int]:
    """The next offset of every input topic partition, as the checkpoints hold them."""
    out: dict[tuple[str, int], int] = {}
    for c in checkpoints(home, group, partitions).values():
        out.update(c.offsets)
    return out


def expected_offsets(
    messages: Sequence[Message], extra: dict[tuple[str, int], int] | None = None
) -> dict[tuple[str, int], int]:
    """The offsets once ``messages`` (plus ``extra`` others per topic partition) are all read."""
    extra = extra or {}
    counts = pd.Series([(m.topic, m.partition) for m in messages]).value_counts()
    return {k: int(v) + extra.get(k, 0) for k, v in counts.items()}


def outbox(home: Path) -> list[dict]:
    path = home / "outbox" / "pagerduty-events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pages(home: Path) -> tuple[list[str], list[str]]:
    """Incident ids triggered and dedup keys resolved in the outbox."""
    events = outbox(home)
    return (
        [e["payload"]["custom_details"]["incident_id"] for e in events if e["event_action"] == "trigger"],
        [e["dedup_key"] for e in events if e["event_action"] == "resolve"],
    )
