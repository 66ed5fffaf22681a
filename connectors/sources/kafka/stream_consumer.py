"""The stream processor's Kafka client on kafka-python (``stream.client: kafka-python``): one
consumer in a group over a metrics and a logs topic, its rebalance hooks, and one producer for
incident events and dead letters. The interface and the other backend:
:mod:`connectors.sources.kafka.stream_client`.

Partitions are the unit of state. Both input topics must have the same number of partitions and
producers key both by the same key (the service): Kafka's default partitioner then puts a
service's metrics and logs in the same partition number, and the range assignor (the only one
configured here) gives a consumer the same partition numbers of both topics. A *partition* below
is that number: the state of partition 3 covers ``metrics/3`` and ``logs/3``.

The consumer never commits on its own (``enable_auto_commit`` off). Rebalance hooks run on
kafka-python's IO thread: :class:`PartitionHooks` receives partition numbers and must checkpoint
(revoked), drop (lost) or load (assigned) state promptly and thread-safely; the seek to a loaded
checkpoint's offsets happens here, before fetching starts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from connectors.sources.kafka.source import (
    KafkaOptions,
    KafkaUnavailableError,
    _kafka,
    consumer_config,
    producer_config,
)
from connectors.sources.kafka.stream_client import (
    PartitionHooks,
    StreamRecord,
    any_reachable,
    dead_letter_headers,
    incident_headers,
)

log = logging.getLogger(__name__)


def _listener_class() -> type:
    kafka = _kafka()

    class _Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc,name-defined]
        def __init__(self, consumer: Any, hooks: PartitionHooks) -> None:
            self.consumer, self.hooks = consumer, hooks

        def on_partitions_revoked(self, revoked: Any) -> None:
            if revoked:
                self.hooks.on_revoked({tp.partition for tp in revoked})

        def on_partitions_lost(self, lost: Any) -> None:
            if lost:
                self.hooks.on_lost({tp.partition for tp in lost})

        def on_partitions_assigned(self, assigned: Any) -> None:
            if not assigned:
                return
            from kafka.structs import TopicPartition  # lazy: kafka-python is optional

            offsets = self.hooks.on_assigned({tp.partition for tp in assigned})
            owned = {(tp.topic, tp.partition) for tp in assigned}
            for (topic, partition), offset in offsets.items():
                if (topic, partition) in owned:
                    self.consumer.seek(TopicPartition(topic, partition), offset)

    return _Listener


class KafkaPythonStreamConsumer:
    """A group member over the input topics, with manual commits and the range assignor."""

    def __init__(self, options: KafkaOptions, hooks: PartitionHooks, *, source: str = "stream") -> None:
        kafka = _kafka()
        from kafka.coordinator.assignors.range import RangePartitionAssignor  # lazy: kafka-python is optional

        self.options, self.source = options, source
        # check_crcs off, as librdkafka's default: kafka-python computes CRC-32C in pure Python
        # (without the optional crc32c wheel), which cost more than everything else per record
        # (docs/stream.md, `foresight bench stream`); TCP and the broker still check the data.
        config = {
            **consumer_config(options),
            "partition_assignment_strategy": [RangePartitionAssignor],
            "check_crcs": False,
        }
        try:
            self._consumer = kafka.KafkaConsumer(**config)
            self._consumer.subscribe(options.topics, listener=_listener_class()(self._consumer, hooks))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailableError(source, options.bootstrap_servers, "connecting", exc) from exc

    def partition_counts(self) -> dict[str, int]:
        """Partitions per input topic (an unknown topic counts 0)."""
        return {t: len(self._consumer.partitions_for_topic(t) or ()) for t in self.options.topics}

    def poll(self, timeout_ms: int, max_records: int) -> list[StreamRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [
            StreamRecord(r.topic, r.partition, r.offset, r.value, r.key, int(r.timestamp or 0))
            for batch in batches.values()
            for r in batch
        ]

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit what a checkpoint holds (informational: the checkpoint is what a new owner
        resumes from); False when the group moved on meanwhile (the checkpoint still counts)."""
        if not offsets:
            return True
        kafka = _kafka()
        from kafka.structs import OffsetAndMetadata, TopicPartition  # lazy: kafka-python is optional

        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        commit = {
            TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
            for (t, p), o in offsets.items()
            if (t, p) in owned
        }
        if not commit:
            return True
        try:
            self._consumer.commit(commit)
            return True
        except kafka.errors.KafkaError as exc:
            log.warning("stream: offset commit refused (%s); the checkpoints hold the offsets", exc)
            return False

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each owned partition (from the last fetch's high watermark)."""
        out = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is not None:
                out[(tp.topic, tp.partition)] = max(int(end) - int(self._consumer.position(tp) or 0), 0)
        return out

    def reachable(self) -> bool:
        """Whether a bootstrap server accepts connections now (kafka-python retries on its own and
        logs every attempt; this is the one yes/no the processor reports)."""
        return any_reachable(self.options.bootstrap_servers)

    def close(self) -> None:
        """Leave the group: the revoke hook checkpoints what this member owns first."""
        self._consumer.close(autocommit=False)


class KafkaPythonStreamProducer:
    """Incident events and dead letters; sends are asynchronous, :meth:`flush` waits for them."""

    def __init__(self, options: KafkaOptions, *, source: str = "stream") -> None:
        kafka = _kafka()
        self.options, self.source = options, source
        try:
            self._producer = kafka.KafkaProducer(**producer_config(options), linger_ms=0)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailableError(source, options.bootstrap_servers, "connecting", exc) from exc
        self._futures: list[Any] = []

    def incident(self, topic: str, incident_id: str, state: str, body: Mapping[str, Any]) -> None:
        value = json.dumps(body, default=str, sort_keys=True).encode()
        self._futures.append(
            self._producer.send(
                topic, key=incident_id.encode(), value=value, headers=incident_headers(state)
            )
        )

    def dead_letter(self, topic: str, record: StreamRecord, reason: str) -> None:
        headers = dead_letter_headers(record, reason, self.source)
        self._futures.append(
            self._producer.send(topic, key=record.key, value=record.value or b"", headers=headers)
        )

    def flush(self) -> None:
        """Wait until everything sent is acknowledged; raises the first failure."""
        kafka = _kafka()
        futures, self._futures = self._futures, []
        try:
            self._producer.flush(timeout=self.options.request_timeout)
            for future in futures:
                future.get(timeout=self.options.request_timeout)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailableError(
                self.source, self.options.bootstrap_servers, "producing", exc
            ) from exc

    def close(self) -> None:
        self._producer.close(timeout=self.options.request_timeout)
