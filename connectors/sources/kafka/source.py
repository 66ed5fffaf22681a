"""The ``kafka`` source: read a bounded batch of metric and log messages, acknowledge after storage.

Each fetch joins the consumer group, polls until ``max_messages`` were read, or no message came
for ``poll_timeout`` seconds, or ``max_duration`` passed, then leaves the group (the consumer is
always closed). Nothing is committed during the fetch (``enable_auto_commit`` is off): the
returned batch's ``on_stored`` first produces rejected messages to ``dead_letter_topic`` (when
set) and then commits exactly the offsets of the messages in the batch, per partition. The ingest
flow calls it only after the lake write, so a crash anywhere before means the messages are read
again (at-least-once); the lake's upsert on ``(unique_id, ds)`` makes the re-read harmless.

Offsets are the watermark, so the source is not ``incremental`` (it ignores the time window).
The commit is sent by a short-lived client that is not a group member: the broker accepts it
while the group is empty, and refuses it (a clear error, nothing lost) if another consumer of
the group has joined since, which would then re-read the batch itself.

Message formats and what is rejected versus passed to the data contract: see
:mod:`connectors.sources.kafka.messages`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.sources.base import SOURCES, SourceBatch, Window
from connectors.sources.kafka.batches import decode_batch
from connectors.sources.kafka.messages import KafkaMessage, Reject, commit_offsets

log = logging.getLogger(__name__)

REASON_HEADER = "foresight.reason"
ORIGIN_HEADER = "foresight.origin"
SOURCE_HEADER = "foresight.source"
_POLL_SLICE_MS = 200  # one poll's wait: short, so the stop conditions are checked often


# -- errors ------------------------------------------------------------------------------------
class KafkaSourceError(RuntimeError):
    """Base of this source's errors; ``.source`` names the configured source."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"kafka source {source!r}: {message}")


class KafkaOptionsError(KafkaSourceError, ValueError):
    """An option is missing or invalid; ``.option`` names it."""

    def __init__(self, source: str, option: str, problem: str) -> None:
        self.option = option
        super().__init__(source, f"option {option!r}: {problem}")


class KafkaUnavailableError(KafkaSourceError):
    """The brokers could not be reached (or stopped answering); nothing was committed."""

    def __init__(self, source: str, bootstrap_servers: Sequence[str], during: str, cause: BaseException) -> None:
        self.bootstrap_servers = list(bootstrap_servers)
        self.during = during
        super().__init__(
            source, f"brokers {','.join(bootstrap_servers)} unavailable while {during}: {cause}; nothing was committed"
        )


class KafkaJoinTimeoutError(KafkaSourceError):
    """The consumer was not given its partitions in time (group ``group_id``)."""

    def __init__(self, source: str, group_id: str, topics: Sequence[str], seconds: float) -> None:
        self.group_id, self.topics, self.seconds = group_id, list(topics), seconds
        super().__init__(source, f"group {group_id!r} did not assign partitions of {list(topics)} within {seconds:g}s")


class KafkaAcknowledgeError(KafkaSourceError):
    """Dead-lettering or committing failed after the batch was stored; the batch will be re-read.

    ``.offsets`` holds the offsets that were to be committed (``{(topic, partition): offset}``).
    """

    def __init__(self, source: str, step: str, offsets: dict[tuple[str, int], int], cause: BaseException) -> None:
        self.step, self.offsets = step, offsets
        super().__init__(source, f"{step} failed ({cause}); offsets {offsets} not committed, the batch will be re-read")


# -- options -----------------------------------------------------------------------------------
class KafkaOptions(BaseModel):
    """Validated options of a ``kafka`` source (``SourceConfig.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: list[str] = Field(min_length=1)
    group_id: str = Field(min_length=1)
    metrics_topics: list[str] = Field(default_factory=list)
    logs_topics: list[str] = Field(default_factory=list)
    dead_letter_topic: str | None = None
    max_messages: int = Field(default=50_000, gt=0)
    poll_timeout: float = Field(default=5.0, gt=0)  # seconds without a message that end the batch
    max_duration: float = Field(default=300.0, gt=0)  # seconds a batch may take at most
    join_timeout: float = Field(default=60.0, gt=0)  # seconds to wait for the group to assign partitions
    connect_timeout: float = Field(default=30.0, gt=0)  # seconds to reach the brokers
    request_timeout: float = Field(default=30.0, gt=0)  # seconds for one request (commit, produce)
    session_timeout_ms: int = Field(default=10_000, gt=0)
    # Also the rebalance timeout a join may wait for: the poll loop never holds records this long.
    max_poll_interval_ms: int = Field(default=30_000, gt=0)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    default_unit: str = "count"
    client_id: str = "foresight"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @field_validator("bootstrap_servers", "metrics_topics", "logs_topics", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """Accept ``"a:9092,b:9092"`` as well as a list (env vars and YAML both work)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaOptions:
        if not self.metrics_topics and not self.logs_topics:
            raise ValueError("metrics_topics/logs_topics: give at least one topic to read")
        both = sorted(set(self.metrics_topics) & set(self.logs_topics))
        if both:
            raise ValueError(f"metrics_topics/logs_topics: {both} listed as both metrics and logs")
        if self.dead_letter_topic in self.topics:
            raise ValueError(f"dead_letter_topic: {self.dead_letter_topic!r} is also an input topic")
        if self.security_protocol.startswith("SASL"):
            missing = [n for n in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{missing[0]}: required with security_protocol {self.security_protocol}")
        return self

    @property
    def topics(self) -> list[str]:
        return [*self.metrics_topics, *self.logs_topics]


def parse_options(source: str, options: dict[str, Any]) -> KafkaOptions:
    """Validate options, raising :class:`KafkaOptionsError` naming the first bad one."""
    try:
        return KafkaOptions(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = ".".join(str(p) for p in first["loc"]) or _option_in(first["msg"])
        raise KafkaOptionsError(source, option, first["msg"]) from None


def _option_in(message: str) -> str:
    """Model-level messages start with the option they are about (``"name: problem"``)."""
    head = message.removeprefix("Value error, ").split(":", 1)[0]
    return head.strip() or "options"


def client_config(options: KafkaOptions) -> dict[str, Any]:
    """kafka-python settings shared by consumers and producers (secrets revealed only here)."""
    config: dict[str, Any] = {
        "bootstrap_servers": list(options.bootstrap_servers),
        "client_id": options.client_id,
        "security_protocol": options.security_protocol,
        "bootstrap_timeout_ms": int(options.connect_timeout * 1000),
        "request_timeout_ms": int(options.request_timeout * 1000),
    }
    if options.security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = options.sasl_mechanism
        config["sasl_plain_username"] = options.sasl_username
        config["sasl_plain_password"] = _reveal(options.sasl_password)
    if options.security_protocol.endswith("SSL"):
        config["ssl_check_hostname"] = options.ssl_check_hostname
        config.update(
            {k: v for k, v in {"ssl_cafile": options.ssl_cafile, "ssl_certfile": options.ssl_certfile,
                               "ssl_keyfile": options.ssl_keyfile}.items() if v}
        )
        if options.ssl_password is not None:
            config["ssl_password"] = _reveal(options.ssl_password)
    return config


def consumer_config(options: KafkaOptions) -> dict[str, Any]:
    """The batch consumer: manual commits only, bounded group timeouts."""
    return {
        **client_config(options),
        "group_id": options.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": options.auto_offset_reset,
        "session_timeout_ms": options.session_timeout_ms,
        "heartbeat_interval_ms": max(options.session_timeout_ms // 3, 1),
        "max_poll_interval_ms": options.max_poll_interval_ms,
    }


def producer_config(options: KafkaOptions) -> dict[str, Any]:
    """The dead-letter producer: acknowledged by all in-sync replicas, bounded blocking."""
    return {**client_config(options), "acks": "all", "max_block_ms": int(options.request_timeout * 1000)}


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _kafka() -> Any:
    """The kafka-python package, imported on first use."""
    try:
        import kafka  # lazy: kafka-python is optional
    except ImportError as exc:  # pragma: no cover - a locked dependency
        raise ImportError("the kafka source needs kafka-python: pip install 'kafka-python>=3.0'") from exc
    return kafka


# -- the source --------------------------------------------------------------------------------
@SOURCES.register("kafka")
class KafkaSource:
    """Metric samples and log records from Kafka topics, acknowledged only once stored."""

    incremental = False  # offsets are the watermark
    Settings: ClassVar[type[BaseModel]] = KafkaOptions  # its options, checked when the settings load

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = parse_options(name, options)

    def fetch(self, window: Window | None = None) -> SourceBatch:
        """One bounded batch (``window`` is ignored: committed offsets say where to resume)."""
        messages = self._consume()
        metric_topics = set(self.options.metrics_topics)
        decoded = decode_batch(
            [m for m in messages if m.topic in metric_topics],
            [m for m in messages if m.topic not in metric_topics],
            source=self.name,
            default_unit=self.options.default_unit,
        )
        if decoded.label_changes:
            log.warning("kafka source %s: %d series changed their label set within the batch; "
                        "the catalogue keeps each one's last", self.name, decoded.label_changes)
        if decoded.rejects:
            log.warning("kafka source %s: %d of %d message(s) rejected", self.name, len(decoded.rejects), len(messages))
        offsets = commit_offsets(messages)
        log.info("kafka source %s: %d message(s) from %d partition(s)", self.name, len(messages), len(offsets))
        ack = Acknowledgement(self.name, self.options, offsets, decoded.rejects)
        return SourceBatch(
            source=self.name,
            telemetry=decoded.telemetry,
            catalogue=decoded.catalogue,
            logs=decoded.logs if len(decoded.logs) else None,
            rejected=decoded.rejected_frame() if decoded.rejects else None,
            on_stored=ack if messages else None,
            expect_rows=False,  # a quiet topic is not a broken one
        )

    def _consume(self) -> list[KafkaMessage]:
        """Join the group, read one bounded batch, and always leave the group again."""
        kafka = _kafka()
        try:
            consumer = kafka.KafkaConsumer(**consumer_config(self.options))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailableError(self.name, self.options.bootstrap_servers, "connecting", exc) from exc
        try:
            consumer.subscribe(self.options.topics)
            return self._poll_batch(consumer)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailableError(self.name, self.options.bootstrap_servers, "polling", exc) from exc
        finally:
            consumer.close(autocommit=False)

    def _poll_batch(self, consumer: Any) -> list[KafkaMessage]:
        """Poll until ``max_messages``, ``poll_timeout`` of silence once joined, or ``max_duration``."""
        from kafka.structs import MemberState  # lazy: kafka-python is optional

        opts = self.options
        messages: list[KafkaMessage] = []
        started = time.monotonic()
        idle_since: float | None = None
        unjoined_since: float | None = started
        while len(messages) < opts.max_messages:
            records = consumer.poll(timeout_ms=_POLL_SLICE_MS, max_records=opts.max_messages - len(messages))
            now = time.monotonic()
            for batch in records.values():
                messages.extend(KafkaMessage(r.topic, r.partition, r.offset, r.value, r.key) for r in batch)
            if records:
                idle_since = now
            elif consumer.group_metadata().state is not MemberState.STABLE:
                unjoined_since = unjoined_since or now
                if now - unjoined_since > opts.join_timeout:
                    raise KafkaJoinTimeoutError(self.name, opts.group_id, opts.topics, opts.join_timeout)
                continue
            unjoined_since = None
            idle_since = idle_since or now
            if now - idle_since >= opts.poll_timeout or now - started >= opts.max_duration:
                break
        return messages


@dataclass
class Acknowledgement:
    """``on_stored`` of a batch: dead-letter its rejects, then commit its offsets.

    Each step runs once: when the ingest flow retries after a failed commit, rejects already
    produced to the dead-letter topic are not produced again.
    """

    source: str
    options: KafkaOptions
    offsets: dict[tuple[str, int], int]
    rejects: list[Reject]
    dead_lettered: bool = False
    committed: bool = False

    def __call__(self) -> None:
        if not self.dead_lettered and self.rejects and self.options.dead_letter_topic:
            self._dead_letter()
        self.dead_lettered = True
        if not self.committed:
            self._commit()
            self.committed = True

    def _dead_letter(self) -> None:
        kafka = _kafka()
        topic = self.options.dead_letter_topic
        try:
            producer = kafka.KafkaProducer(**producer_config(self.options))
        except kafka.errors.KafkaError as exc:
            raise KafkaAcknowledgeError(self.source, "dead-lettering", self.offsets, exc) from exc
        try:
            futures = [producer.send(topic, value=r.message.value or b"", key=r.message.key,
                                     headers=dead_letter_headers(self.source, r)) for r in self.rejects]
            producer.flush(timeout=self.options.request_timeout)
            for future in futures:
                future.get(timeout=self.options.request_timeout)
        except kafka.errors.KafkaError as exc:
            raise KafkaAcknowledgeError(self.source, "dead-lettering", self.offsets, exc) from exc
        finally:
            producer.close(timeout=self.options.request_timeout)
        log.info("kafka source %s: %d rejected message(s) sent to %s", self.source, len(self.rejects), topic)

    def _commit(self) -> None:
        kafka = _kafka()
        from kafka.structs import OffsetAndMetadata, TopicPartition  # lazy: kafka-python is optional

        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in self.offsets.items()}
        try:
            committer = kafka.KafkaConsumer(**consumer_config(self.options))
        except kafka.errors.KafkaError as exc:
            raise KafkaAcknowledgeError(self.source, "committing", self.offsets, exc) from exc
        try:
            committer.commit(offsets, timeout_ms=int(self.options.request_timeout * 1000))
        except kafka.errors.KafkaError as exc:
            raise KafkaAcknowledgeError(self.source, "committing", self.offsets, exc) from exc
        finally:
            committer.close(autocommit=False)
        log.info("kafka source %s: committed %s for group %s", self.source, self.offsets, self.options.group_id)


def dead_letter_headers(source: str, reject: Reject) -> list[tuple[str, bytes]]:
    """Headers on a dead-lettered message: why it was rejected and where it came from."""
    return [
        (REASON_HEADER, reject.reason.encode()),
        (ORIGIN_HEADER, reject.message.origin.encode()),
        (SOURCE_HEADER, source.encode()),
    ]
