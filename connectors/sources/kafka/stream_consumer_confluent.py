"""The stream processor's Kafka client on confluent-kafka (librdkafka; ``stream.client:
confluent``, the default): the same group member and producer as the kafka-python backend
(:mod:`connectors.sources.kafka.stream_consumer`), behind :mod:`connectors.sources.kafka.stream_client`.

Why: librdkafka fetches and decodes records in C on its own threads; kafka-python decodes each
record in Python, which capped one-line-per-message logs at about 50,000 lines per CPU-second
end to end (docs/stream.md has the figures).

What differs from kafka-python, and why it keeps the processor's guarantees:

- Rebalance callbacks (``on_assign``, ``on_revoke``, ``on_lost``) run inside :meth:`poll` /
  :meth:`close` on the processor's own thread, never concurrently with its processing. The
  assignment callback sets each partition's start offset from its checkpoint before fetching
  starts (``assign`` with offsets); a partition without one starts at the group's committed
  offset, else ``auto_offset_reset``.
- Commits are explicit and synchronous (``enable.auto.commit`` off, ``enable.auto.offset.store``
  off: nothing is stored or committed behind the processor's back).
- The producer never drops a message on its own (``message.timeout.ms`` 0: retried until the
  broker takes it); :meth:`ConfluentStreamProducer.flush` raises when something is not
  acknowledged within ``request_timeout``, so a checkpoint waits for its outputs.
- librdkafka's own log lines go to the ``librdkafka`` logger; broker-level errors (connection
  refused while the broker is down) are logged at debug: the processor says once that the broker
  is unreachable and once that it is back.
- The prefetch queue is bounded (``queued.max.messages.kbytes``) so a backlog does not fill memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from connectors.sources.kafka.source import KafkaOptions, KafkaUnavailableError
from connectors.sources.kafka.stream_client import (
    PartitionHooks,
    StreamRecord,
    any_reachable,
    dead_letter_headers,
    incident_headers,
)

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger("librdkafka")

PREFETCH_KIB = 16 * 1024  # librdkafka's default is 64 MiB of prefetched records per consumer


def _confluent() -> Any:
    """The confluent-kafka package, imported on first use."""
    try:
        import confluent_kafka  # lazy: only the confluent backend needs it
    except ImportError as exc:  # pragma: no cover - a locked dependency
        raise ImportError(
            "stream.client 'confluent' needs confluent-kafka: pip install 'confluent-kafka>=2.4' "
            "(or set stream.client: kafka-python)"
        ) from exc
    return confluent_kafka


def client_config(options: KafkaOptions) -> dict[str, Any]:
    """librdkafka settings shared by consumer and producer (secrets revealed only here)."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(options.bootstrap_servers),
        "client.id": options.client_id,
        "security.protocol": options.security_protocol.lower(),
        "socket.connection.setup.timeout.ms": max(int(options.connect_timeout * 1000), 1000),
        "socket.timeout.ms": max(int(options.request_timeout * 1000), 10),
        "logger": librdkafka_log,
        "error_cb": _broker_error,
        "enable.metrics.push": False,  # KIP-714 client telemetry: nothing here collects it
    }
    if options.security_protocol.startswith("SASL"):
        config["sasl.mechanism"] = options.sasl_mechanism
        config["sasl.username"] = options.sasl_username
        config["sasl.password"] = _reveal(options.sasl_password)
    if options.security_protocol.endswith("SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https" if options.ssl_check_hostname else "none"
        for option, key in (
            ("ssl_cafile", "ssl.ca.location"),
            ("ssl_certfile", "ssl.certificate.location"),
            ("ssl_keyfile", "ssl.key.location"),
        ):
            if getattr(options, option):
                config[key] = getattr(options, option)
        if options.ssl_password is not None:
            config["ssl.key.password"] = _reveal(options.ssl_password)
    return config


def consumer_config(options: KafkaOptions) -> dict[str, Any]:
    """The group member: manual commits only, the range assignor, bounded prefetch."""
    return {
        **client_config(options),
        "group.id": options.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": options.auto_offset_reset,
        "session.timeout.ms": options.session_timeout_ms,
        "heartbeat.interval.ms": max(options.session_timeout_ms // 3, 1),
        "max.poll.interval.ms": options.max_poll_interval_ms,
        "partition.assignment.strategy": "range",  # co-partitioned topics: see stream_consumer.py
        "queued.max.messages.kbytes": PREFETCH_KIB,
    }


def producer_config(options: KafkaOptions) -> dict[str, Any]:
    """Acknowledged by all in-sync replicas; never given up on locally (flush reports the wait)."""
    return {**client_config(options), "acks": "all", "linger.ms": 0, "message.timeout.ms": 0}


def _reveal(secret: Any) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _broker_error(error: Any) -> None:
    """librdkafka's client-level errors: it retries by itself; only fatal ones matter here."""
    if error.fatal():
        log.error("kafka client: fatal error %s", error)
    else:
        log.debug("kafka client: %s", error)


class ConfluentStreamConsumer:
    """A group member over the input topics, with manual commits and the range assignor."""

    def __init__(self, options: KafkaOptions, hooks: PartitionHooks, *, source: str = "stream") -> None:
        ck = _confluent()
        self.options, self.source, self.hooks = options, source, hooks
        # what this member owns (librdkafka's assignment() asks its main thread: ~1 ms a call),
        # with the offset each partition was assigned at (its lag before a record is taken; -1: none)
        self._owned: dict[tuple[str, int], int] = {}
        self._reported: set[int] = set()  # message error codes already logged
        try:
            self._consumer = ck.Consumer(consumer_config(options))
            self._consumer.subscribe(
                options.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
        except ck.KafkaException as exc:
            raise KafkaUnavailableError(source, options.bootstrap_servers, "connecting", exc) from exc

    # -- rebalance callbacks (inside poll/close, on the caller's thread) -----------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if not partitions:
            return
        offsets = self.hooks.on_assigned({tp.partition for tp in partitions})
        for tp in partitions:
            start = offsets.get((tp.topic, tp.partition))
            if start is not None:
                tp.offset = int(start)
            self._owned[(tp.topic, tp.partition)] = -1 if start is None else int(start)
        consumer.assign(partitions)  # with the checkpoints' offsets: fetching starts there

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            self.hooks.on_revoked({tp.partition for tp in partitions})
            self._drop(partitions)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            self.hooks.on_lost({tp.partition for tp in partitions})
            self._drop(partitions)

    def _drop(self, partitions: list[Any]) -> None:
        for tp in partitions:
            self._owned.pop((tp.topic, tp.partition), None)

    # -- the interface -------------------------------------------------------------------------------
    def poll(self, timeout_ms: int, max_records: int) -> list[StreamRecord]:
        """At most ``max_records`` records, waiting up to ``timeout_ms`` for the first only.

        (``consume(n, timeout)`` alone waits until ``n`` records are there or the timeout passed:
        on a quiet topic every record would wait ``timeout_ms``. ``poll`` returns with the first,
        then ``consume(n - 1, 0)`` takes what is already fetched.)"""
        first = self._consumer.poll(timeout_ms / 1000)
        if first is None:
            return []
        messages = [first, *self._consumer.consume(max_records - 1, 0)] if max_records > 1 else [first]
        out: list[StreamRecord] = []
        append = out.append
        for m in messages:
            if m.error() is not None:
                self._message_error(m)
                continue
            ts = m.timestamp()[1]
            append(
                StreamRecord(m.topic(), m.partition(), m.offset(), m.value(), m.key(), ts if ts > 0 else 0)
            )
        return out

    def _message_error(self, message: Any) -> None:
        error = message.error()
        if error.fatal():
            raise KafkaUnavailableError(
                self.source, self.options.bootstrap_servers, "polling", _confluent().KafkaException(error)
            )
        if error.code() not in self._reported:  # e.g. a topic that does not exist (yet): once per kind
            self._reported.add(error.code())
            log.warning("stream: consumer error on %s/%s: %s", message.topic(), message.partition(), error)

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit what a checkpoint holds (informational: the checkpoint is what a new owner
        resumes from); False when the group moved on meanwhile (the checkpoint still counts)."""
        if not offsets:
            return True
        ck = _confluent()
        owned = self._owned  # (topic, partition) -> its assigned offset
        commit = [ck.TopicPartition(t, p, int(o)) for (t, p), o in offsets.items() if (t, p) in owned]
        if not commit:
            return True
        try:
            result = self._consumer.commit(offsets=commit, asynchronous=False)
        except ck.KafkaException as exc:
            log.warning("stream: offset commit refused (%s); the checkpoints hold the offsets", exc)
            return False
        refused = [tp for tp in result or () if tp.error is not None]
        if refused:
            log.warning("stream: offset commit refused for %s; the checkpoints hold the offsets", refused)
        return not refused

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each owned partition: the high watermark of the last fetch
        response (cached by librdkafka; its ListOffsets answer from tansu is wrong) less the next
        offset to take (librdkafka's position once a record was taken, before that the offset the
        partition was assigned at). A partition whose end or position is not known yet is left
        out, except an empty one (end 0: nothing to take)."""
        ck = _confluent()
        out = {}
        owned = [ck.TopicPartition(t, p) for t, p in self._owned]
        for tp in self._consumer.position(owned) if owned else ():
            key = (tp.topic, tp.partition)
            _, end = self._consumer.get_watermark_offsets(ck.TopicPartition(*key), cached=True)
            if end is None or end < 0:
                continue
            position = tp.offset if tp.offset >= 0 else self._owned.get(key, -1)
            if position < 0 and end == 0:
                position = 0  # empty: nothing to take
            if position >= 0:
                out[key] = max(int(end) - position, 0)
        return out

    def reachable(self) -> bool:
        """Whether a bootstrap server accepts connections now (librdkafka reconnects by itself)."""
        return any_reachable(self.options.bootstrap_servers)

    def close(self) -> None:
        """Leave the group: the revoke callback checkpoints what this member owns first."""
        self._consumer.close()


class ConfluentStreamProducer:
    """Incident events and dead letters; sends are asynchronous, :meth:`flush` waits for them."""

    def __init__(self, options: KafkaOptions, *, source: str = "stream") -> None:
        ck = _confluent()
        self.options, self.source = options, source
        self._failures: list[Any] = []  # delivery errors since the last flush
        try:
            self._producer = ck.Producer(producer_config(options))
        except ck.KafkaException as exc:
            raise KafkaUnavailableError(source, options.bootstrap_servers, "connecting", exc) from exc

    def incident(self, topic: str, incident_id: str, state: str, body: Mapping[str, Any]) -> None:
        value = json.dumps(body, default=str, sort_keys=True).encode()
        self._send(topic, incident_id.encode(), value, incident_headers(state))

    def dead_letter(self, topic: str, record: StreamRecord, reason: str) -> None:
        self._send(topic, record.key, record.value or b"", dead_letter_headers(record, reason, self.source))

    def _send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        deadline = time.monotonic() + self.options.request_timeout
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError as exc:  # the local queue is full: let deliveries drain it
                if time.monotonic() > deadline:
                    raise KafkaUnavailableError(
                        self.source, self.options.bootstrap_servers, "producing", exc
                    ) from exc
                self._producer.poll(0.1)
        self._producer.poll(0)  # serve delivery reports of earlier sends

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def flush(self) -> None:
        """Wait until everything sent is acknowledged; raises the first failure (or a timeout:
        the unacknowledged messages stay queued and are retried, the next flush waits again)."""
        ck = _confluent()
        remaining = self._producer.flush(self.options.request_timeout)
        failures, self._failures = self._failures, []
        if failures:
            raise KafkaUnavailableError(
                self.source, self.options.bootstrap_servers, "producing", ck.KafkaException(failures[0])
            )
        if remaining:
            cause = TimeoutError(
                f"{remaining} message(s) not acknowledged within {self.options.request_timeout:g}s"
            )
            raise KafkaUnavailableError(self.source, self.options.bootstrap_servers, "producing", cause)

    def close(self) -> None:
        """Give queued sends ``request_timeout`` to go out (what is still queued is not
        checkpointed either: the replay after a restart sends it again)."""
        self._producer.flush(self.options.request_timeout)
