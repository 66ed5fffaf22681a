"""``foresight bench stream``: raw log lines through Kafka and the stream processor, timed end to
end and per stage, with peak memory.

1. **produce** (not part of the pipeline's figure): ``lines`` synthetic raw lines
   (:mod:`bench.stream_lines`) to a fresh logs topic, one line per message or batched
   (always with confluent-kafka, so both clients read the same record batches).
2. **end to end**: the real :class:`~streaming.processor.StreamProcessor` (its consumer group,
   miner, aggregates, metrics, checkpoints and lake writes, with the ``stream`` settings'
   defaults) consumes the topic until every offset is checkpointed. Timed from the moment it owns
   its partitions (the group join is excluded) to its last checkpoint; ``per core`` divides by the
   process' CPU seconds (all threads, the Kafka client's included).
3. **stages**, each alone over the same data in this process: *consume* (a plain consumer of the
   measured client, ``client``, with the processor's settings reads every record), *decode* (JSON to timed lines), *parse*
   (template mining), *aggregate* (per service and minute counts), *write* (the changed minutes
   as telemetry and catalogue rows upserted into a lake).

Peak memory is the process' peak RSS after the end-to-end run (the stages hold every record in
memory at once, so their peak is reported apart). Pure wiring over a broker given by address:
``foresight bench stream`` starts a throwaway tansu broker with the local stack's launcher.
"""

from __future__ import annotations

import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stream_lines import lines, messages
from connectors.sinks.checkpoint_store import CheckpointStore
from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sources.kafka.log_batches import decode_timed_logs
from connectors.sources.kafka.stream_client import open_consumer, open_producer, topic_options
from connectors.sources.kafka.stream_consumer_confluent import consumer_config
from features.logs.aggregate import LogAggregator
from features.logs.miner import TemplateMiner
from foresight.lake import Lake
from foresight.settings import DetectConfig, StreamConfig
from models.incidents.settings import PipelineSettings
from streaming.keyed_scoring import KeyScorer
from streaming.metrics import StreamMetrics
from streaming.processor import ProcessorConfig, StreamProcessor


@dataclass(frozen=True)
class Stage:
    name: str
    lines: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.lines / self.wall if self.wall else float("inf")

    @property
    def per_core(self) -> float:
        return self.lines / self.cpu if self.cpu else float("inf")


@dataclass
class StreamFigures:
    lines: int
    messages: int
    batch_lines: int
    partitions: int
    client: str
    produce: Stage
    end_to_end: Stage
    stages: list[Stage] = field(default_factory=list)
    peak_rss_mib: float = 0.0  # after the end-to-end run
    stages_peak_rss_mib: float = 0.0
    templates: int = 0
    rows_written: int = 0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, n: int, work: Callable[[], Any]) -> tuple[Stage, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return Stage(name, n, time.perf_counter() - wall, time.process_time() - cpu), result


def run(
    bootstrap: str,
    *,
    n_lines: int = 1_000_000,
    batch_lines: int = 500,
    partitions: int = 1,
    stages: bool = True,
    workdir: Path | None = None,
    client: str = "confluent",
) -> StreamFigures:
    """Produce, process end to end, then time the stages; topics are fresh (a random suffix)."""
    from kafka.admin import KafkaAdminClient, NewTopic  # lazy: kafka-python, like every Kafka edge

    tag = uuid.uuid4().hex[:8]
    logs_topic, metrics_topic = f"bench-logs-{tag}", f"bench-metrics-{tag}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(logs_topic, partitions, 1), NewTopic(metrics_topic, partitions, 1)]
            + [NewTopic(f"bench-{kind}-{tag}", 1, 1) for kind in ("incidents", "dead")]
        )
    finally:
        admin.close()
    with tempfile.TemporaryDirectory(prefix="foresight-bench-stream-") as tmp:
        work = workdir or Path(tmp)
        produce, n_messages = _produce(bootstrap, logs_topic, n_lines, batch_lines)
        e2e, processor_templates = _end_to_end(
            bootstrap, tag, logs_topic, metrics_topic, work, n_lines, client
        )
        figures = StreamFigures(
            n_lines, n_messages, batch_lines, partitions, client, produce, e2e, peak_rss_mib=peak_rss_mib()
        )
        figures.templates = processor_templates
        if stages:
            figures.stages, figures.rows_written = _stages(
                bootstrap, logs_topic, n_lines, work / "stage-lake", client
            )
            figures.stages_peak_rss_mib = peak_rss_mib()
    return figures


def _produce(bootstrap: str, topic: str, n_lines: int, batch_lines: int) -> tuple[Stage, int]:
    """The input topic's messages, sent with confluent-kafka whichever client is measured (the same
    record batches for both; kafka-python took ~170 s for a million one-line messages here)."""
    from confluent_kafka import Producer  # lazy: confluent-kafka

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "linger.ms": 20,
            "batch.size": 1 << 20,
            "message.max.bytes": 8 << 20,
            "enable.metrics.push": False,
        }
    )
    sent = 0

    def send() -> None:
        nonlocal sent
        for service, value, _ in messages(lines(n_lines), batch_lines=batch_lines):
            while True:
                try:
                    producer.produce(topic, value=value, key=service.encode())
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
            sent += 1
        if producer.flush(300):
            raise RuntimeError(f"the benchmark's messages were not all acknowledged by {bootstrap}")

    stage, _ = _timed("produce", n_lines, send)
    return stage, sent


def _end_to_end(
    bootstrap: str, tag: str, logs_topic: str, metrics_topic: str, work: Path, n_lines: int, client: str
) -> tuple[Stage, int]:
    defaults = StreamConfig()
    options = topic_options([bootstrap], f"bench-{tag}", metrics_topic, logs_topic, f"bench-dead-{tag}")
    pipeline = PipelineSettings.from_detect(DetectConfig())
    config = ProcessorConfig(
        group_id=f"bench-{tag}",
        metrics_topic=metrics_topic,
        logs_topic=logs_topic,
        incidents_topic=f"bench-incidents-{tag}",
        dead_letter_topic=f"bench-dead-{tag}",
        checkpoint_seconds=defaults.checkpoint_seconds,
        checkpoint_messages=defaults.checkpoint_messages,
        lake_seconds=defaults.lake_seconds,
        retain_minutes=defaults.retain_minutes,
    )
    from prometheus_client import CollectorRegistry  # lazy: only the processor's metrics need it

    processor = StreamProcessor(
        config,
        consumer_factory=lambda hooks: open_consumer(client, options, hooks),
        producer=open_producer(client, options),
        checkpoints=CheckpointStore(work / "checkpoints"),
        lake=Lake(work / "lake"),
        outbox=Outbox(work / "outbox.jsonl"),
        metrics=StreamMetrics(CollectorRegistry()),
        new_scorer=lambda key: KeyScorer(key, pipeline.stream, identity_window=pipeline.rollup.resolve_after),
        new_miner=lambda state: TemplateMiner() if state is None else TemplateMiner.from_state(state),
    )
    ends = _end_offsets(bootstrap, logs_topic)
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), name="stream-processor", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not processor.states and time.monotonic() < deadline:
        time.sleep(0.01)
    if not processor.states:
        stop.set()
        raise RuntimeError("the stream processor was not given its partitions within 60 s")
    wall, cpu = time.perf_counter(), time.process_time()
    while thread.is_alive() and not _caught_up(processor, logs_topic, ends):
        time.sleep(0.02)
    templates = sum(len(s.miner.templates()) for s in list(processor.states.values()))
    stop.set()
    thread.join(120)  # the loop's final checkpoint writes the last minutes to the lake
    stage = Stage("end to end", n_lines, time.perf_counter() - wall, time.process_time() - cpu)
    store = CheckpointStore(work / "checkpoints")
    checkpointed = {
        p: c.offsets.get((logs_topic, p), 0) for p in ends if (c := store.load(config.group_id, p))
    }
    if any(checkpointed.get(p, 0) < end for p, end in ends.items() if end):
        raise RuntimeError(f"the processor stopped at {checkpointed}, before the end offsets {ends}")
    return stage, templates


def _caught_up(processor: StreamProcessor, topic: str, ends: dict[int, int]) -> bool:
    states = dict(processor.states)
    return all(p in states and states[p].offsets.get((topic, p), 0) >= end for p, end in ends.items() if end)


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition  # lazy: kafka-python

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _stages(
    bootstrap: str, topic: str, n_lines: int, lake_path: Path, client: str
) -> tuple[list[Stage], int]:
    """Each stage alone over the same data (every record held in memory)."""
    ends = _end_offsets(bootstrap, topic)
    read = _read_confluent if client == "confluent" else _read_kafka_python
    values: list[bytes] = []
    consumed, _ = _timed("consume", n_lines, lambda: read(bootstrap, topic, ends, values))
    now_us = int(time.time() * 1e6)

    def decode() -> list[Any]:
        out: list[Any] = []
        for value in values:
            timed = decode_timed_logs(value, now_us=now_us, max_future_s=300.0)
            if isinstance(timed, str):
                raise ValueError(f"the benchmark's own message was rejected: {timed}")
            out.extend(timed)
        return out

    decoded, timed_lines = _timed("decode", n_lines, decode)
    miner = TemplateMiner()
    parsed, ids = _timed("parse", n_lines, lambda: [miner.add(t.message).template_id for t in timed_lines])
    aggregator = LogAggregator()

    def aggregate() -> None:
        add = aggregator.add
        for t, template in zip(timed_lines, ids, strict=True):
            add(t.service, t.ts_seconds, t.level, template)

    aggregated, _ = _timed("aggregate", n_lines, aggregate)
    lake = Lake(lake_path)

    def write() -> int:
        telemetry, catalogue = aggregator.take_changed()
        lake.upsert("telemetry", telemetry)
        lake.upsert("catalogue", catalogue)
        return len(telemetry)

    written, rows = _timed("write", n_lines, write)
    return [consumed, decoded, parsed, aggregated, written], rows


def _read_kafka_python(bootstrap: str, topic: str, ends: dict[int, int], values: list[bytes]) -> None:
    """Every record's value into ``values``, with the processor's kafka-python client settings
    (stream_consumer: check_crcs off), without a group."""
    from kafka import KafkaConsumer, TopicPartition  # lazy: kafka-python

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, check_crcs=False)
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        while any(consumer.position(tp) < ends[tp.partition] for tp in tps):
            for batch in consumer.poll(timeout_ms=200, max_records=500).values():
                values.extend(r.value for r in batch)
    finally:
        consumer.close()


def _read_confluent(bootstrap: str, topic: str, ends: dict[int, int], values: list[bytes]) -> None:
    """The same with the processor's confluent-kafka settings, polled as the processor polls."""
    from confluent_kafka import Consumer, TopicPartition  # lazy: confluent-kafka

    config = consumer_config(
        topic_options([bootstrap], f"bench-stage-{topic}", topic, f"{topic}-unused", None)
    )
    consumer = Consumer(config)
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        left = {p: end for p, end in ends.items() if end}
        while left:
            for m in consumer.consume(ProcessorConfig.max_records, ProcessorConfig.poll_ms / 1000):
                if m.error() is not None:
                    raise RuntimeError(f"the benchmark's consumer failed: {m.error()}")
                partition, offset = int(m.partition() or 0), int(m.offset() or 0)
                values.append(m.value() or b"")
                if offset + 1 >= left.get(partition, 0):
                    left.pop(partition, None)
    finally:
        consumer.close()
