"""The stream processor's Kafka client, whichever library implements it: the records it yields,
the hooks it calls when partitions move, the two small interfaces the processor uses, and the
choice of backend by name (``stream.client``, docs/stream.md).

Backends: ``confluent`` (:mod:`connectors.sources.kafka.stream_consumer_confluent`, librdkafka:
records are decoded in C) and ``kafka-python`` (:mod:`connectors.sources.kafka.stream_consumer`,
pure Python). Both are a group member over the input topics with the range assignor and manual
commits, and a producer for incident events and dead letters.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol, get_args

from connectors.sources.kafka.source import ORIGIN_HEADER, REASON_HEADER, SOURCE_HEADER, KafkaOptions

STATE_HEADER = "foresight.incident_state"

ClientName = Literal["confluent", "kafka-python"]
CLIENTS: tuple[str, ...] = get_args(ClientName)


class StreamRecord(NamedTuple):
    """One consumed record, independent of the client library (a tuple: one is built per message)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None
    timestamp_ms: int

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class PartitionHooks(Protocol):
    """What the processor does when partitions move (kafka-python: on its IO thread; confluent:
    inside ``poll`` on the processor's thread). Partitions are numbers (both topics' same number)."""

    def on_revoked(self, partitions: set[int]) -> None: ...  # checkpoint, then forget

    def on_lost(self, partitions: set[int]) -> None: ...  # forget without writing (someone else owns them)

    def on_assigned(self, partitions: set[int]) -> Mapping[tuple[str, int], int]: ...  # offsets to seek to


class StreamConsumer(Protocol):
    """A group member over the input topics: manual commits, the range assignor, the hooks above."""

    def poll(self, timeout_ms: int, max_records: int) -> list[StreamRecord]: ...

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool: ...

    def lag(self) -> dict[tuple[str, int], int]: ...

    def reachable(self) -> bool: ...

    def close(self) -> None: ...


class StreamProducer(Protocol):
    """Incident events and dead letters; sends are asynchronous, ``flush`` waits for them."""

    def incident(self, topic: str, incident_id: str, state: str, body: Mapping[str, Any]) -> None: ...

    def dead_letter(self, topic: str, record: StreamRecord, reason: str) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class UnknownClientError(ValueError):
    """``stream.client`` names no backend; ``.client`` is the name given."""

    def __init__(self, client: str) -> None:
        self.client = client
        super().__init__(f"unknown stream Kafka client {client!r}; choose one of {', '.join(CLIENTS)}")


def open_consumer(client: str, options: KafkaOptions, hooks: PartitionHooks) -> StreamConsumer:
    """The named backend's group member (``client``: one of :data:`CLIENTS`)."""
    if client == "confluent":
        from connectors.sources.kafka import stream_consumer_confluent  # lazy: it imports this module

        return stream_consumer_confluent.ConfluentStreamConsumer(options, hooks)
    if client == "kafka-python":
        from connectors.sources.kafka import stream_consumer  # lazy: it imports this module

        return stream_consumer.KafkaPythonStreamConsumer(options, hooks)
    raise UnknownClientError(client)


def open_producer(client: str, options: KafkaOptions) -> StreamProducer:
    """The named backend's producer for incident events and dead letters."""
    if client == "confluent":
        from connectors.sources.kafka import stream_consumer_confluent  # lazy: it imports this module

        return stream_consumer_confluent.ConfluentStreamProducer(options)
    if client == "kafka-python":
        from connectors.sources.kafka import stream_consumer  # lazy: it imports this module

        return stream_consumer.KafkaPythonStreamProducer(options)
    raise UnknownClientError(client)


def incident_headers(state: str) -> list[tuple[str, bytes]]:
    """Headers on an incident event: its state (``open``, ``resolved``, ...)."""
    return [(STATE_HEADER, state.encode())]


def dead_letter_headers(record: StreamRecord, reason: str, source: str) -> list[tuple[str, bytes]]:
    """Headers on a dead letter: why it was rejected, where it came from, which processor."""
    return [
        (REASON_HEADER, reason.encode()),
        (ORIGIN_HEADER, record.origin.encode()),
        (SOURCE_HEADER, source.encode()),
    ]


def any_reachable(servers: Sequence[str], timeout: float = 1.0) -> bool:
    """True when a TCP connection to one of ``servers`` (``host:port``) opens within ``timeout``."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def topic_options(
    bootstrap_servers: Sequence[str],
    group_id: str,
    metrics_topic: str,
    logs_topic: str,
    dead_letter_topic: str | None,
    **extra: Any,
) -> KafkaOptions:
    """The kafka source's validated options for the stream's inputs."""
    return KafkaOptions(
        bootstrap_servers=list(bootstrap_servers),
        group_id=group_id,
        metrics_topics=[metrics_topic],
        logs_topics=[logs_topic],
        dead_letter_topic=dead_letter_topic,
        **extra,
    )
