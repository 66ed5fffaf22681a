"""The stream processor's Kafka client (connectors/sources/kafka/stream_client.py), each backend
against the session's real broker (tansu): a group member that starts each assigned partition at
the offset its hooks return, yields keys and timestamps, commits only what it is given, reports
lag from the fetches, and checkpoints on leaving; a producer whose incident events and dead
letters carry their keys and headers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

import pytest

from connectors.sources.kafka.source import KafkaUnavailableError
from connectors.sources.kafka.stream_client import (
    CLIENTS,
    StreamRecord,
    open_consumer,
    open_producer,
    topic_options,
)
from support.kafka import Broker, committed, create_topics, produce, read_all
from support.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Hooks:
    """Records what the client reports; partition 0 of the metrics topic resumes at offset 3."""

    def __init__(self, start: Mapping[tuple[str, int], int]) -> None:
        self.start = dict(start)
        self.assigned: set[int] = set()
        self.revoked: set[int] = set()

    def on_assigned(self, partitions: set[int]) -> Mapping[tuple[str, int], int]:
        self.assigned |= partitions
        return self.start

    def on_revoked(self, partitions: set[int]) -> None:
        self.revoked |= partitions

    def on_lost(self, partitions: set[int]) -> None:
        raise AssertionError(f"partitions {partitions} lost in a one-member group")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_member_starts_at_its_hooks_offsets_commits_what_it_is_given_and_reports_lag(
    kafka_broker: Broker, client: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    metrics, logs = f"cm-{tag}", f"cl-{tag}"
    create_topics(kafka_broker.bootstrap, {metrics: 2, logs: 2})
    produce(kafka_broker.bootstrap, metrics, [b"m%d" % i for i in range(20)], [i % 2 for i in range(20)])
    options = topic_options(
        [kafka_broker.bootstrap], f"g-{tag}", metrics, logs, None, session_timeout_ms=6000, request_timeout=10
    )
    hooks = Hooks({(metrics, 0): 3})
    consumer = open_consumer(client, options, hooks)
    records: list[StreamRecord] = []
    deadline = time.monotonic() + 60
    try:
        while not records and time.monotonic() < deadline:
            records.extend(consumer.poll(200, 1))
        assert 0 < sum(consumer.lag().values()) < 17  # one record taken, the rest fetched or known
        while len(records) < 17 and time.monotonic() < deadline:
            records.extend(consumer.poll(200, 500))
        assert hooks.assigned == {0, 1}
        firsts = {p: min(r.offset for r in records if r.partition == p) for p in (0, 1)}
        assert firsts == {0: 3, 1: 0}  # checkpointed offset on 0; the earliest on 1 (none committed)
        assert len(records) == 17 and {r.topic for r in records} == {metrics}
        assert all(r.timestamp_ms > 1_600_000_000_000 for r in records)
        assert {r.value for r in records if r.partition == 0} == {b"m%d" % i for i in range(6, 20, 2)}
        caught_up = {(metrics, 0): 0, (metrics, 1): 0, (logs, 0): 0, (logs, 1): 0}  # logs: empty
        deadline = time.monotonic() + 10
        while consumer.lag() != caught_up and time.monotonic() < deadline:
            consumer.poll(100, 500)
        assert consumer.lag() == caught_up
        assert consumer.commit({(metrics, 0): 10, (metrics, 1): 4, ("not-owned", 0): 1})
        assert consumer.reachable()
    finally:
        consumer.close()
    assert hooks.revoked == {0, 1}  # leaving the group checkpoints first
    assert committed(kafka_broker.bootstrap, f"g-{tag}", metrics, 2) == {0: 10, 1: 4}


@pytest.mark.parametrize("client", CLIENTS)
def test_incident_events_and_dead_letters_carry_their_keys_and_headers(
    kafka_broker: Broker, client: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    incidents, dead = f"ci-{tag}", f"cd-{tag}"
    create_topics(kafka_broker.bootstrap, {incidents: 1, dead: 1})
    options = topic_options([kafka_broker.bootstrap], f"g-{tag}", "m", "l", dead, request_timeout=10)
    producer = open_producer(client, options)
    producer.incident(incidents, "inc-1", "open", {"incident_id": "inc-1", "service": "cart"})
    producer.dead_letter(
        dead, StreamRecord("logs", 1, 42, b"{not json", b"cart", 0), "message: malformed JSON"
    )
    producer.flush()
    producer.close()
    [event] = read_all(kafka_broker.bootstrap, incidents, 1, timeout=10)
    assert event.key == b"inc-1" and json.loads(event.value)["service"] == "cart"
    assert dict(event.headers) == {"foresight.incident_state": b"open"}
    [letter] = read_all(kafka_broker.bootstrap, dead, 1, timeout=10)
    assert letter.key == b"cart" and letter.value == b"{not json"
    assert dict(letter.headers) == {
        "foresight.reason": b"message: malformed JSON",
        "foresight.origin": b"logs/1/42",
        "foresight.source": b"stream",
    }


def test_the_confluent_producer_keeps_what_a_dead_broker_did_not_take_and_says_so() -> None:
    options = topic_options([f"127.0.0.1:{free_port()}"], "g", "m", "l", "dead", request_timeout=1)
    producer = open_producer("confluent", options)
    producer.dead_letter("dead", StreamRecord("logs", 0, 7, b"x", None, 0), "why")
    began = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match="1 message\\(s\\) not acknowledged within 1s"):
        producer.flush()
    with pytest.raises(KafkaUnavailableError, match="not acknowledged"):  # still queued, not dropped
        producer.flush()
    assert time.monotonic() - began < 10
