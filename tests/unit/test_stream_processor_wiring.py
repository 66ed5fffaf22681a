"""The stream processor's wiring with the Kafka clients replaced at their boundary (records in,
sends and commits recorded); lake, outbox and checkpoints are the real ones on a temp dir.
The real broker: tests/integration/test_stream_processor_kafka.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connectors.sinks.checkpoint_store import CheckpointStore
from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sources.kafka.stream_client import StreamRecord
from foresight.lake import Lake
from foresight.quarantine import read_rejected
from models.incidents.settings import StreamSettings
from streaming.keyed_scoring import KeyScorer
from streaming.metrics import StreamMetrics
from streaming.processor import ProcessorConfig, StreamProcessor

END = pd.Timestamp.now(tz="UTC").floor("min")
SERIES = (("latency_p95", "seconds", 0.2), ("error_rate", "ratio", 0.01))


@dataclass
class Match:
    template_id: str
    template: str
    is_new: bool


class WordMiner:
    """Test double of the template miner: a line's first word is its template."""

    def __init__(self, seen: list[str] | None = None) -> None:
        self.seen = list(seen or [])

    def add(self, content: str) -> Match:
        word = content.split()[0]
        new = word not in self.seen
        if new:
            self.seen.append(word)
        return Match(f"T-{word}", word, new)

    def to_state(self) -> dict[str, Any]:
        return {"seen": self.seen}


@dataclass
class FakeConsumer:
    commits: list[dict] = field(default_factory=list)
    up: bool = True
    probes: int = 0

    def reachable(self) -> bool:
        self.probes += 1
        return self.up

    def poll(self, timeout_ms: int, max_records: int) -> list[StreamRecord]:
        return []

    def commit(self, offsets: dict) -> bool:
        self.commits.append(dict(offsets))
        return True

    def lag(self) -> dict:
        return {}

    def close(self) -> None:
        pass


@dataclass
class FakeProducer:
    incidents: list[tuple[str, str]] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)
    fail_flush: bool = False

    def incident(self, topic: str, incident_id: str, state: str, body: dict) -> None:
        self.incidents.append((incident_id, state))

    def dead_letter(self, topic: str, record: StreamRecord, reason: str) -> None:
        self.dead.append((record.origin, reason))

    def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker gone")

    def close(self) -> None:
        pass


def _processor(
    tmp_path: Path,
    producer: FakeProducer | None = None,
    clock: Callable[[], float] = time.time,
    *,
    log_series: tuple[str, ...] = (),
) -> StreamProcessor:
    config = ProcessorConfig(
        group_id="g",
        metrics_topic="metrics",
        logs_topic="logs",
        incidents_topic="incidents",
        dead_letter_topic="dead",
        checkpoint_seconds=3600,
        checkpoint_messages=10**9,
        log_features=bool(log_series),
    )
    return StreamProcessor(
        config,
        consumer_factory=lambda hooks: FakeConsumer(),  # type: ignore[arg-type,return-value]
        producer=producer or FakeProducer(),  # type: ignore[arg-type]
        checkpoints=CheckpointStore(tmp_path / "ckpt"),
        lake=Lake(tmp_path / "lake"),
        outbox=Outbox(tmp_path / "outbox.jsonl"),
        metrics=StreamMetrics(CollectorRegistry()),
        new_scorer=lambda key: KeyScorer(
            key, StreamSettings(), identity_window=pd.Timedelta(minutes=30), log_series=log_series
        ),
        new_miner=lambda state: WordMiner(None if state is None else state["seen"]),
        clock=clock,
    )


def _records(steps: int = 240, fault: tuple[int, int] = (200, 212)) -> list[StreamRecord]:
    out: list[StreamRecord] = []
    offsets = {"metrics": 0, "logs": 0}

    def add(topic: str, body: Any) -> None:
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        out.append(StreamRecord(topic, 0, offsets[topic], value, b"cart", 0))
        offsets[topic] += 1

    start = END - pd.Timedelta(minutes=steps)
    for i in range(steps):
        ts = (start + pd.Timedelta(minutes=i)).isoformat()
        for metric, unit, base in SERIES:
            value = base * (8 if fault[0] <= i < fault[1] else 1 + 0.03 * ((i * 7919) % 13 - 6) / 6)
            add(
                "metrics",
                {
                    "metric": metric,
                    "service": "cart",
                    "resource": "i-1",
                    "ts": ts,
                    "value": value,
                    "unit": unit,
                },
            )
        add(
            "logs",
            {"ts": ts, "service": "cart", "level": "ERROR" if i % 2 else "INFO", "message": f"w{i % 3} x"},
        )
        if i == 10:
            add("metrics", b"\xff\xfe")
    return out


def _outbox(tmp_path: Path) -> list[tuple[str, str]]:
    return [(e["dedup_key"], e["event_action"]) for e in Outbox(tmp_path / "outbox.jsonl").read()]


def test_records_become_pages_topic_events_aggregates_and_rejects_then_one_checkpoint(tmp_path: Path) -> None:
    proc = _processor(tmp_path)
    proc.on_assigned({0})
    records = _records()
    proc.process(records)
    assert [s for _, s in proc.producer.incidents] == ["open", "resolved"]  # type: ignore[attr-defined]
    assert [a for _, a in _outbox(tmp_path)] == ["trigger", "resolve"]
    assert proc.producer.dead == [("metrics/0/22", "message: not valid UTF-8")]  # type: ignore[attr-defined]
    offsets = proc.checkpoint({0})
    assert offsets == {("metrics", 0): 481, ("logs", 0): 240}
    saved = CheckpointStore(tmp_path / "ckpt").load("g", 0)
    assert (
        saved is not None
        and saved.offsets == offsets
        and saved.state.miner_state == {"seen": ["w0", "w1", "w2"]}
    )
    assert proc.write_aggregates() == 2160 and proc.write_aggregates() == 0  # 9 series x 240 minutes, once
    lake = Lake(tmp_path / "lake")
    telemetry = lake.read("telemetry")
    lines = telemetry[telemetry["unique_id"] == "cart/logs/log_lines"]
    assert len(lines) == 240 and set(lines["y"]) == {1.0}
    assert set(lake.read("catalogue")["unique_id"]) >= {
        "cart/logs/log_error_ratio",
        "cart/logs/log_template_T-w1",
    }
    assert list(read_rejected(lake)["reason"]) == ["message: not valid UTF-8"]
    exposed = generate_latest(proc.metrics.registry).decode()
    assert 'foresight_stream_log_lines_total{level="error",service="cart"} 120.0' in exposed
    assert 'foresight_stream_incident_events_total{state="open"} 1.0' in exposed
    assert 'foresight_stream_messages_total{outcome="rejected",topic="metrics"} 1.0' in exposed
    assert 'foresight_stream_new_templates_total{service="cart"} 3.0' in exposed


def test_a_restart_from_the_checkpoint_replays_into_the_same_incident_without_a_second_page(
    tmp_path: Path,
) -> None:
    records = _records()
    first = _processor(tmp_path)
    first.on_assigned({0})
    cut = next(
        i for i, r in enumerate(records) if r.topic == "metrics" and r.offset == 390
    )  # before the fault
    first.process(records[:cut])
    first.checkpoint({0})
    first.process(records[cut:])  # the fault is paged, then the process dies before its next checkpoint
    paged = _outbox(tmp_path)
    second = _processor(tmp_path)
    resume = second.on_assigned({0})
    assert resume == {
        (t, 0): max(r.offset for r in records[:cut] if r.topic == t) + 1 for t in ("metrics", "logs")
    }
    second.process(records)  # what the broker re-delivers: records below the checkpoint are skipped
    assert second.producer.incidents == first.producer.incidents  # type: ignore[attr-defined]
    assert _outbox(tmp_path) == paged and len(paged) == 2


def test_a_checkpoint_waits_for_its_outputs(tmp_path: Path) -> None:
    proc = _processor(tmp_path, FakeProducer(fail_flush=True))
    proc.on_assigned({0})
    proc.process(_records(steps=20))
    assert proc.checkpoint({0}) == {}
    assert CheckpointStore(tmp_path / "ckpt").load("g", 0) is None
    proc.producer.fail_flush = False  # type: ignore[attr-defined]
    assert proc.checkpoint({0}) == {("metrics", 0): 41, ("logs", 0): 20}


class FailingLake(Lake):
    def upsert(self, dataset: str, df: pd.DataFrame) -> Any:
        raise OSError("disk full")


def test_log_minutes_not_yet_in_the_lake_survive_in_the_checkpoint(tmp_path: Path) -> None:
    proc = _processor(tmp_path)
    proc.lake = FailingLake(tmp_path / "lake")
    proc.on_assigned({0})
    proc.process(_records(steps=20))
    assert proc.write_aggregates() == 0  # refused: still pending
    proc.checkpoint({0})
    restarted = _processor(tmp_path)
    restarted.on_assigned({0})
    assert restarted.write_aggregates() > 0
    lines = Lake(tmp_path / "lake").read("telemetry")
    assert len(lines[lines["unique_id"] == "cart/logs/log_lines"]) == 20


def test_a_revoked_partition_is_checkpointed_then_its_records_are_ignored(tmp_path: Path) -> None:
    proc = _processor(tmp_path)
    proc.on_assigned({0})
    records = _records(steps=20)
    proc.process(records[:10])
    proc.on_revoked({0})
    saved = CheckpointStore(tmp_path / "ckpt").load("g", 0)
    assert saved is not None and sum(saved.offsets.values()) == 10
    proc.process(records[10:])
    assert proc.states == {}
    proc.on_lost({0})  # nothing owned: nothing written, nothing raised


@pytest.mark.parametrize("bad", [b"", b"[]"])
def test_poison_log_lines_go_to_the_dead_letter_topic(tmp_path: Path, bad: bytes) -> None:
    proc = _processor(tmp_path)
    proc.on_assigned({0})
    proc.process([StreamRecord("logs", 0, 0, bad, None, 0)])
    assert len(proc.producer.dead) == 1  # type: ignore[attr-defined]
    assert proc.checkpoint({0}) == {("logs", 0): 1}


def test_an_unreachable_broker_is_reported_once_when_it_goes_and_once_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    processor = _processor(tmp_path, clock=lambda: now[0])
    consumer = processor.consumer
    assert isinstance(consumer, FakeConsumer)
    registry_value = lambda: processor.metrics.broker_reachable._value.get()  # noqa: E731
    caplog.set_level(logging.INFO, logger="streaming.processor")

    def idle(seconds: float, steps: int) -> None:
        for _ in range(steps):
            now[0] += seconds / steps
            processor._watch_broker(got_records=False)

    idle(4, 4)
    assert consumer.probes == 0  # idle less than broker_probe_seconds: no probe
    consumer.up = False
    idle(10, 10)
    assert registry_value() == 0
    idle(10, 10)  # probed every second while down, said once
    consumer.up = True
    idle(2, 2)
    assert registry_value() == 1
    said = [r.getMessage() for r in caplog.records if "broker" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith("stream: broker unreachable")
    # down from the probe at 5 s to the one at 25 s
    assert said[1].startswith("stream: broker reachable again after 20s")
    probes = consumer.probes
    processor._watch_broker(got_records=True)  # records arriving: no probe needed
    assert consumer.probes == probes


def _log_burst_records(steps: int = 240, burst: tuple[int, int] = (200, 212)) -> list[StreamRecord]:
    """Healthy metrics; a batch of 12 log lines a minute, mostly errors during ``burst``."""
    out: list[StreamRecord] = []
    start = END - pd.Timedelta(minutes=steps)
    for i in range(steps):
        ts = start + pd.Timedelta(minutes=i)
        for metric, unit, base in SERIES:
            value = base * (1 + 0.03 * ((i * 7919) % 13 - 6) / 6)
            body = {"metric": metric, "service": "cart", "resource": "i-1", "ts": ts.isoformat(), "value": value,
                    "unit": unit}
            out.append(StreamRecord("metrics", 0, sum(r.topic == "metrics" for r in out), json.dumps(body).encode(),
                                    b"cart", 0))
        lines = [
            {"ts": (ts + pd.Timedelta(seconds=5 * j)).timestamp(), "level": level, "message": f"{word} {i}"}
            for j in range(12)
            for level, word in [("ERROR", "refused") if burst[0] <= i < burst[1] and j % 3 else ("INFO", "served")]
        ]
        value = json.dumps({"service": "cart", "lines": lines}).encode()
        out.append(StreamRecord("logs", 0, i, value, b"cart", 0))
    return out


def test_with_log_features_a_log_only_burst_is_paged_through_the_processor(tmp_path: Path) -> None:
    records = _log_burst_records()
    plain = _processor(tmp_path / "plain")
    plain.on_assigned({0})
    plain.process(records)
    assert plain.producer.incidents == []  # type: ignore[attr-defined]
    fed = _processor(tmp_path / "fed", log_series=("log_error_ratio", "log_lines_error"))
    fed.on_assigned({0})
    fed.process(records)
    assert [s for _, s in fed.producer.incidents] == ["open", "resolved"]  # type: ignore[attr-defined]
    assert [a for _, a in _outbox(tmp_path / "fed")] == ["trigger", "resolve"]
    state = fed.states[0]
    assert state.log_minutes is not None and state.log_minutes.sealed_until is not None
    fed.checkpoint({0})
    saved = CheckpointStore(tmp_path / "fed" / "ckpt").load("g", 0)
    assert saved is not None and saved.state.log_minutes.sealed_until == state.log_minutes.sealed_until
