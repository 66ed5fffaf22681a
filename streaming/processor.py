"""The stream processor: records from the consumer in, state per partition, outputs, checkpoints.

One loop (:meth:`StreamProcessor.run`): poll; under the state lock take each record of a
partition this member owns (a record at an offset the partition's state has already passed is
skipped: the seek after a rebalance can race a fetch), score metric samples
(:class:`~streaming.keyed_scoring.KeyScorer` per key), mine and count log lines (with
``log_features``, sealed log minutes feed the scorers' log series too), send rejects to
the dead-letter topic; publish the incident events the batch raised (outbox, then topic); every
``lake_seconds`` upsert the changed log minutes to the lake (:meth:`write_aggregates`; minutes not
yet written are part of the state, so a checkpoint need not wait for the lake); and every
``checkpoint_seconds`` or ``checkpoint_messages``, :meth:`checkpoint`: rejects to the quarantine,
every send acknowledged, *then* one checkpoint file per owned partition (state + offsets), *then*
the Kafka commit. A crash anywhere replays the messages
after the last checkpoint into the state that checkpoint holds: the same steps, incidents and
ids, whose outputs are idempotent (upserts, the outbox's dedup key, topic consumers deduping by
id and state). At-least-once in, idempotent out.

Rebalances (on the consumer's IO thread, under the same lock): revoked partitions are
checkpointed first and forgotten; lost ones (this member was evicted) are forgotten unwritten;
assigned ones load their checkpoint and seek to its offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointStore
from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sinks.pagerduty_page_links import PageLinks
from connectors.sources.kafka.log_batches import decode_timed_logs
from connectors.sources.kafka.stream_client import StreamConsumer, StreamProducer, StreamRecord
from connectors.sources.kafka.stream_messages import decode_timed_metric
from foresight.lake import Lake
from foresight.quarantine import write_rejected
from streaming.incident_outputs import publish, response_records
from streaming.keyed_scoring import IncidentEvent, KeyScorer, StepResult
from streaming.log_counting import CountedLines, count_lines, export
from streaming.metrics import StreamMetrics
from streaming.partition_state import MinerFactory, PartitionState
from streaming.record_samples import record_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessorConfig:
    """Topics, group and cadence of one processor (from ``Settings.stream``)."""

    group_id: str
    metrics_topic: str
    logs_topic: str
    incidents_topic: str
    dead_letter_topic: str
    checkpoint_seconds: float = 10.0
    checkpoint_messages: int = 10_000
    lake_seconds: float = (
        60.0  # log aggregates to the lake this often (their pending minutes are checkpointed)
    )
    max_future_seconds: float = 300.0
    retain_minutes: int = 10
    log_features: bool = False  # log minutes sealed for the scorers (built with log_series)
    log_grace_seconds: float = 5.0  # a log minute is sealed once a partition's logs are this far past it
    poll_ms: int = 200
    max_records: int = 500  # per poll: the lock a rebalance waits for is held this long at most
    broker_probe_seconds: float = 5.0  # idle this long: check the brokers still answer
    source: str = "stream"
    model_version: str = "unregistered"
    page_links: PageLinks = field(default_factory=PageLinks)  # what a page links (sinks settings)


@dataclass
class _Pending:
    """Outputs taken from the state but not yet durable; a checkpoint waits for them."""

    rejects: list[tuple[str, str, str]] = field(default_factory=list)  # origin, raw, reason
    events: list[IncidentEvent] = field(default_factory=list)


class StreamProcessor:
    """Wires consumer, state, outputs and checkpoints; see the module docstring."""

    def __init__(
        self,
        config: ProcessorConfig,
        *,
        consumer_factory: Callable[[StreamProcessor], StreamConsumer],
        producer: StreamProducer,
        checkpoints: CheckpointStore,
        lake: Lake,
        outbox: Outbox,
        metrics: StreamMetrics,
        new_scorer: Callable[[str], KeyScorer],
        new_miner: MinerFactory,
        clock: Callable[[], float] = time.time,
        responder: Callable[[list[dict[str, Any]]], Any] | None = None,
    ) -> None:
        self.config = config
        self.responder = responder  # automated response on incident events (docs/response.md)
        self.producer, self.checkpoints, self.lake, self.outbox = producer, checkpoints, lake, outbox
        self.metrics, self.new_scorer, self.new_miner, self.clock = metrics, new_scorer, new_miner, clock
        self.states: dict[int, PartitionState] = {}
        self._checkpointed_at: dict[int, float] = {}
        self._lock = threading.RLock()
        self._pending = _Pending()
        self._since_checkpoint = 0
        self._last_checkpoint = self._last_lake_write = self._last_probe = clock()
        self._broker_down_since: float | None = None
        self.consumer = consumer_factory(self)

    # -- rebalance hooks (consumer IO thread) ------------------------------------------------------
    def on_assigned(self, partitions: set[int]) -> Mapping[tuple[str, int], int]:
        offsets: dict[tuple[str, int], int] = {}
        with self._lock:
            for p in sorted(partitions - set(self.states)):
                saved = self.checkpoints.load(self.config.group_id, p)
                grace = self.config.log_grace_seconds if self.config.log_features else None
                state = saved.state if saved is not None else PartitionState(p, retain_minutes=self.config.retain_minutes)
                state.feed_logs(grace)  # also when the setting changed since the checkpoint
                state.restore_miner(self.new_miner)
                self.states[p] = state
                self._checkpointed_at[p] = self.clock()
                if saved is not None:
                    offsets.update(saved.offsets)
                log.info(
                    "stream: partition %d assigned (%s)",
                    p,
                    f"checkpoint of {saved.written_at}, offsets {saved.offsets}"
                    if saved
                    else "no checkpoint",
                )
            self.metrics.owned_partitions.set(len(self.states))
        return offsets

    def on_revoked(self, partitions: set[int]) -> None:
        with self._lock:
            mine = partitions & set(self.states)
            if mine:
                self.checkpoint(mine)
            self._forget(mine)

    def on_lost(self, partitions: set[int]) -> None:
        with self._lock:
            log.warning(
                "stream: partitions %s lost (evicted from the group); their state is dropped unwritten, "
                "their new owner resumes from the last checkpoint",
                sorted(partitions),
            )
            self._forget(partitions & set(self.states))

    def _forget(self, partitions: set[int]) -> None:
        for p in partitions:
            self.states.pop(p, None)
            self._checkpointed_at.pop(p, None)
            self.metrics.open_incidents.labels(partition=str(p)).set(0)
        self.metrics.owned_partitions.set(len(self.states))

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; then checkpoint, commit and leave the group."""
        try:
            while not stop.is_set():
                records = self.consumer.poll(self.config.poll_ms, self.config.max_records)
                with self._lock:
                    offsets = self.process(records)
                    if self.clock() - self._last_lake_write >= self.config.lake_seconds:
                        self.write_aggregates()
                    if self._checkpoint_due():
                        offsets.update(self.checkpoint(set(self.states)))
                self._watch_broker(bool(records), probe_now=bool(offsets))
                if offsets and self._broker_down_since is None:  # a commit would block until it times out
                    self.consumer.commit(offsets)
                self._observe_lag()
            with self._lock:
                self.write_aggregates()
                offsets = self.checkpoint(set(self.states))
            self.consumer.commit(offsets)
        finally:
            self.consumer.close()  # the revoke hook checkpoints anything taken since
            self.producer.close()

    def _checkpoint_due(self) -> bool:
        return (
            self._since_checkpoint >= self.config.checkpoint_messages
            or self.clock() - self._last_checkpoint >= self.config.checkpoint_seconds
        )

    def process(self, records: list[StreamRecord]) -> dict[tuple[str, int], int]:
        """Take a poll's records (call with the lock held) and publish the incident events they
        raise; checkpoint every ``checkpoint_messages``. Returns the offsets checkpointed."""
        checkpointed: dict[tuple[str, int], int] = {}
        now = self.clock()
        now_us = int(now * 1e6)
        logged = CountedLines()  # the poll's log metrics move once, at its end
        produced_ms: dict[str, int] = {}  # topic -> Kafka timestamp of its last record taken
        try:
            for record in records:
                state = self.states.get(record.partition)
                if state is None or state.offsets.get((record.topic, record.partition), -1) > record.offset:
                    continue  # not ours (revoked meanwhile) or already taken
                if record.topic == self.config.metrics_topic:
                    self._metric(state, record, now_us)
                else:
                    self._log(state, record, now_us, logged)
                state.seen(record.topic, record.offset)
                self._since_checkpoint += 1
                if record.timestamp_ms > 0:
                    produced_ms[record.topic] = record.timestamp_ms
                if self._since_checkpoint >= self.config.checkpoint_messages:
                    checkpointed.update(self.checkpoint(set(self.states)))
        finally:
            export(self.metrics, logged)
            for topic, timestamp_ms in produced_ms.items():
                self.metrics.processing_lag.labels(topic=topic).set(max(now - timestamp_ms / 1000, 0.0))
        if self._pending.events:
            self._publish_events()
        return checkpointed

    def _metric(self, state: PartitionState, record: StreamRecord, now_us: int) -> None:
        timed = decode_timed_metric(record.value, now_us=now_us, max_future_s=self.config.max_future_seconds)
        if isinstance(timed, str):
            return self._reject(record, timed)
        result = state.score(record_sample(record, timed), self.new_scorer)
        outcome = "late" if result.late else "unscored" if result.unscored else "scored"
        self.metrics.messages.labels(topic=record.topic, outcome=outcome).inc()
        self._scored(state, result)

    def _scored(self, state: PartitionState, result: StepResult) -> None:
        for service, level in result.evidence.items():
            self.metrics.anomaly_score.labels(service=service).set(level)
        if result.events:
            self._pending.events.extend(result.events)
            self.metrics.open_incidents.labels(partition=str(state.partition)).set(state.open_incidents())

    def _log(self, state: PartitionState, record: StreamRecord, now_us: int, logged: CountedLines) -> None:
        # one line or a batch of them (connectors.sources.kafka.log_batches): all counted, or rejected whole
        lines = decode_timed_logs(record.value, now_us=now_us, max_future_s=self.config.max_future_seconds)
        if isinstance(lines, str):
            return self._reject(record, lines)
        count_lines(state.miner, state.logs, lines, topic=record.topic, into=logged)
        if state.log_minutes is not None:
            self._scored(state, state.logs_counted([line[3] for line in lines]))

    def _reject(self, record: StreamRecord, reason: str) -> None:
        """A poison message: to the dead-letter topic now, to the quarantine at the next checkpoint."""
        self.producer.dead_letter(self.config.dead_letter_topic, record, reason)
        raw = "" if record.value is None else record.value.decode("utf-8", "backslashreplace")
        self._pending.rejects.append((record.origin, raw, reason))
        self.metrics.messages.labels(topic=record.topic, outcome="rejected").inc()

    def _publish_events(self) -> None:
        events, self._pending.events = self._pending.events, []
        try:
            publish(
                events,
                outbox=self.outbox,
                topic=self.producer,
                topic_name=self.config.incidents_topic,
                model_version=self.config.model_version,
                links=self.config.page_links,
            )
        except Exception:
            self._pending.events = events + self._pending.events  # retried before the next checkpoint
            raise
        if self.responder is not None and events:
            try:
                self.responder(response_records(events))
            except Exception:  # noqa: BLE001 - a response problem must not stall the stream; detect retries it
                log.exception("stream: automated response on %d incident events failed", len(events))
        for event in events:
            self.metrics.incident_events.labels(state=event.state).inc()
            log.info(
                "stream: incident %s %s (%s, evidence %.1f)",
                event.incident_id,
                event.state,
                event.incident.get("service"),
                event.score,
            )

    # -- checkpoints ---------------------------------------------------------------------------------
    def checkpoint(self, partitions: set[int]) -> dict[tuple[str, int], int]:
        """Make every output durable, then write each partition's state with its offsets (lock held).
        Returns the offsets to commit; nothing when an output failed (state stays in memory and the
        next checkpoint retries)."""
        try:
            self._flush_outputs()
        except Exception as exc:  # a checkpoint must never get ahead of its outputs
            log.warning("stream: outputs not durable (%s: %s); checkpoint postponed", type(exc).__name__, exc)
            return {}
        offsets: dict[tuple[str, int], int] = {}
        now = self.clock()
        for p in sorted(partitions):
            state = self.states.get(p)
            if state is None:
                continue
            self.checkpoints.save(
                Checkpoint(
                    self.config.group_id, p, dict(state.offsets), state, pd.Timestamp(now, unit="s", tz="UTC")
                )
            )
            self._checkpointed_at[p] = now
            offsets.update(state.offsets)
            self.metrics.checkpoints.inc()
        self._since_checkpoint, self._last_checkpoint = 0, now
        return offsets

    def _flush_outputs(self) -> None:
        """Everything a checkpoint must not get ahead of: incident events, rejects, Kafka sends.
        (Log aggregates need not be written first: their pending minutes are in the state.)"""
        if self._pending.events:
            self._publish_events()
        if self._pending.rejects:
            frame = pd.DataFrame(self._pending.rejects, columns=["origin", "raw", "reason"])
            write_rejected(self.lake, self.config.source, frame)
            self._pending.rejects = []
        self.producer.flush()

    def write_aggregates(self) -> int:
        """Upsert every owned partition's changed log minutes (full counts) and new catalogue rows
        to the lake (lock held); a failure leaves them pending for the next try. Rows written."""
        self._last_lake_write = self.clock()
        owned = [s for s in self.states.values() if s.logs.pending]
        if not owned:
            return 0
        parts = [s.logs.changed_rows() for s in owned]
        telemetry = pd.concat([t for t, _ in parts], ignore_index=True)
        catalogue = pd.concat([c for _, c in parts], ignore_index=True).drop_duplicates("unique_id")
        fresh = catalogue[~catalogue["unique_id"].isin(set().union(*(s.catalogued for s in owned)))]
        try:
            self.lake.upsert("telemetry", telemetry)
            if len(fresh):
                self.lake.upsert("catalogue", fresh)
        except Exception as exc:  # retried at the next write; the checkpoint keeps the minutes pending
            log.warning(
                "stream: log aggregates not written (%s: %s); retried in %gs",
                type(exc).__name__,
                exc,
                self.config.lake_seconds,
            )
            return 0
        for state in owned:
            state.logs.mark_written()
            state.catalogued.update(fresh["unique_id"].astype(str))
        return len(telemetry)

    def _watch_broker(self, got_records: bool, *, probe_now: bool = False) -> None:
        """Say once that the brokers stopped answering and once that they are back (the Kafka
        client retries by itself, logging every attempt). Probed when idle: every
        ``broker_probe_seconds``, every second while down, and before a commit (``probe_now``)."""
        now = self.clock()
        down = self._broker_down_since is not None
        if got_records:
            up = True
        elif probe_now or now - self._last_probe >= (1.0 if down else self.config.broker_probe_seconds):
            self._last_probe = now
            up = self.consumer.reachable()
        else:
            return
        self.metrics.broker_reachable.set(1 if up else 0)
        if not up and not down:
            self._broker_down_since = now
            log.warning(
                "stream: broker unreachable: nothing is consumed or sent until it is back; the state stays "
                "in memory, checkpoints hold their offsets, pending outputs are retried before the next one"
            )
        elif up and self._broker_down_since is not None:
            with self._lock:
                offsets = {f"{t}/{p}": o for s in self.states.values() for (t, p), o in s.offsets.items()}
            log.info(
                "stream: broker reachable again after %.0fs; resuming at offsets %s",
                now - self._broker_down_since,
                offsets,
            )
            self._broker_down_since = None

    def _observe_lag(self) -> None:
        now = self.clock()
        with self._lock:
            ages = [now - t for t in self._checkpointed_at.values()]
        self.metrics.checkpoint_age.set(max(ages, default=0.0))
        for (topic, partition), lag in self.consumer.lag().items():
            self.metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

