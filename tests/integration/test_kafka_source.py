"""The kafka source against a real Kafka-protocol broker (tansu), through the real ingest flow.

One broker serves the module (consumer-group joins take seconds); each test uses its own topics
and group. Checks: everything produced reaches the lake once; offsets are committed only after
the lake write; a batch never stored is read again without duplicates; bad messages are
quarantined or rejected with a reason and dead-lettered; a broker outage fails the run clearly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.quarantine import read_quarantine, read_rejected
from support.kafka import Broker, committed, create_topics, produce, read_all, tansu_broker

pytestmark = pytest.mark.integration

PARTITIONS = 3
SERIES = ("cart/i-1/cpu_pct", "cart/i-2/cpu_pct", "checkout/i-3/mem_pct", "search/i-4/disk_pct")
# Short stops for tests: 1 s of silence ends a batch; an unreachable broker fails within 2 s.
FAST = {"poll_timeout": 1.0, "join_timeout": 30, "connect_timeout": 2, "request_timeout": 5}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with tansu_broker(tmp_path_factory.mktemp("tansu") / "tansu.log") as running:
        yield running


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _samples(n_per_series: int, *, seed: int = 0) -> tuple[list[bytes], list[int]]:
    """Fresh 1-minute samples for SERIES (epoch ms and ISO alternate); each series keeps one partition."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    values, partitions = [], []
    for k, uid in enumerate(SERIES):
        service, resource, metric = uid.split("/")
        for i, ts in enumerate(pd.date_range(end=end, periods=n_per_series, freq="1min")):
            stamp: Any = int(ts.timestamp() * 1000) if i % 2 else ts.isoformat()
            sample = {"metric": metric, "service": service, "resource": resource, "ts": stamp,
                      "value": round(float(rng.uniform(10, 90)), 3), "unit": "percent",
                      "labels": {"instance_type": "m5.large"}}
            values.append(json.dumps(sample).encode())
            partitions.append(k % PARTITIONS)
    return values, partitions


def _configure(monkeypatch: pytest.MonkeyPatch, broker: Broker, **options: Any) -> dict[str, Any]:
    options = {"bootstrap_servers": broker.bootstrap, **FAST, **options}
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "kafka", "kind": "kafka", "options": options}]))
    return options


def _ingest() -> dict[str, Any]:
    from flows.ingest import ingest

    [outcome] = ingest()
    return outcome


def _per_partition(partitions: list[int]) -> dict[int, int | None]:
    """The offsets a full read commits: the message count per partition (None where there were none)."""
    counts = pd.Series(partitions).value_counts()
    return {p: int(counts[p]) if p in counts.index else None for p in range(PARTITIONS)}


def test_everything_produced_reaches_the_lake_once_and_a_second_run_reads_nothing_new(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    metrics, logs, group = _name("metrics"), _name("logs"), _name("ingest")
    create_topics(broker.bootstrap, {metrics: PARTITIONS, logs: 1})
    values, partitions = _samples(150)
    produce(broker.bootstrap, metrics, values, partitions)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    log_lines = [json.dumps({"ts": (now - pd.Timedelta(seconds=i)).isoformat(), "service": "cart", "resource": "i-1",
                             "level": "ERROR", "message": f"request {i} failed"}).encode() for i in range(20)]
    produce(broker.bootstrap, logs, log_lines, [0] * len(log_lines))
    _configure(monkeypatch, broker, group_id=group, metrics_topics=[metrics], logs_topics=[logs])

    first = _ingest()
    lake = Lake(foresight_home / "lake")
    stored = lake.read("telemetry")
    assert first["passed"] and len(stored) == len(values) == 600
    assert not stored.duplicated(["unique_id", "ds"]).any()
    assert set(stored["unique_id"]) == set(SERIES)
    assert len(lake.read("logs")) == len(log_lines)
    assert lake.read("catalogue")["unit"].eq("percent").all()
    assert committed(broker.bootstrap, group, metrics, PARTITIONS) == _per_partition(partitions)
    assert committed(broker.bootstrap, group, logs, 1) == {0: len(log_lines)}

    second = _ingest()
    assert second["passed"] and second["written"] == {"telemetry": 0}, "a quiet topic is nothing new, not a failure"
    pd.testing.assert_frame_equal(lake.read("telemetry"), stored)
    assert committed(broker.bootstrap, group, metrics, PARTITIONS) == _per_partition(partitions)


def test_a_batch_that_was_never_stored_is_read_again_without_loss_or_duplicates(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    import flows.ingest
    from connectors.sources.base import build_source
    from foresight.lake import Lake as LakeClass

    topic, group = _name("metrics"), _name("crash")
    create_topics(broker.bootstrap, {topic: PARTITIONS})
    values, partitions = _samples(75, seed=1)
    produce(broker.bootstrap, topic, values, partitions)
    options = _configure(monkeypatch, broker, group_id=group, metrics_topics=[topic], max_messages=200)

    # 1. A consumer "killed" after reading a bounded batch: it is dropped before on_stored.
    dropped = build_source("kafka", "kafka", options).fetch()
    assert len(dropped.telemetry) == 200 and dropped.on_stored is not None
    del dropped
    assert set(committed(broker.bootstrap, group, topic, PARTITIONS).values()) == {None}

    # 2. A flow whose lake write fails: the run fails and nothing is committed.
    real_upsert = LakeClass.upsert

    def failing_upsert(self: LakeClass, dataset: str, df: pd.DataFrame):  # type: ignore[no-untyped-def]
        if dataset == "telemetry":
            raise OSError("disk full")
        return real_upsert(self, dataset, df)

    monkeypatch.setattr(LakeClass, "upsert", failing_upsert)
    monkeypatch.setattr(flows.ingest, "store_batch", flows.ingest.store_batch.with_options(retries=0))
    with pytest.raises(OSError, match="disk full"):
        _ingest()
    assert set(committed(broker.bootstrap, group, topic, PARTITIONS).values()) == {None}
    monkeypatch.setattr(LakeClass, "upsert", real_upsert)

    # 3. Restarted (with room for everything): all of it, exactly once.
    _configure(monkeypatch, broker, group_id=group, metrics_topics=[topic])
    assert _ingest()["written"]["telemetry"] == len(values)
    stored = Lake(foresight_home / "lake").read("telemetry")
    assert len(stored) == len(values) and not stored.duplicated(["unique_id", "ds"]).any()
    assert committed(broker.bootstrap, group, topic, PARTITIONS) == _per_partition(partitions)


def test_bad_messages_are_quarantined_or_rejected_with_a_reason_and_dead_lettered(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    topic, dlq, group = _name("metrics"), _name("dead-letters"), _name("bad")
    create_topics(broker.bootstrap, {topic: 1, dlq: 1})
    good, _ = _samples(80, seed=2)  # 320 good samples keep the bad rows and rejects under the 5% quarantine ratio
    base = {"metric": "cpu_pct", "service": "cart", "resource": "i-9", "unit": "percent"}
    now = pd.Timestamp.now(tz="UTC").floor("min")

    def sample(minutes_ago: int, value: Any, **extra: Any) -> bytes:
        ts = (now - pd.Timedelta(minutes=minutes_ago)).isoformat()
        return json.dumps({**base, "ts": ts, "value": value, **extra}).encode()

    huge_float = json.dumps({**base, "ts": now.isoformat(), "value": 0}).replace('"value": 0', '"value": 1e400')
    rows_for_contract = [
        sample(1, float("nan")), sample(2, float("inf")), sample(3, 10**400), huge_float.encode(),
        json.dumps({**base, "ts": "2999-01-01T00:00:00Z", "value": 5.0}).encode(),
        json.dumps({**base, "ts": "1990-01-01T00:00:00Z", "value": 5.0}).encode(),
        sample(5, 10.0), sample(5, 11.0),  # conflicting duplicates: both quarantined
        sample(6, 12.0), sample(6, 12.0),  # exact duplicates: one kept
        sample(7, 13.0, labels={"job": "a"}), sample(8, 14.0, labels={"job": "b"}),  # label set changes
    ]
    rejects = [b"{not json", b"\xff\xfe\x00 binary", json.dumps({**base, "ts": now.isoformat(), "value": "high"}).encode(),
               json.dumps([1, 2]).encode(), json.dumps({**base, "value": 1.0}).encode()]
    values = good + rows_for_contract + rejects
    produce(broker.bootstrap, topic, values, [0] * len(values))
    _configure(monkeypatch, broker, group_id=group, metrics_topics=[topic], dead_letter_topic=dlq)

    outcome = _ingest()
    lake = Lake(foresight_home / "lake")
    assert outcome["passed"]
    quarantined = read_quarantine(lake)
    assert quarantined["reason"].value_counts().to_dict() == {
        "y: not finite (NaN/inf)": 4,
        "duplicate (unique_id, ds) with different values": 2,
        "ds: in the future": 1,
        "ds: older than retention": 1,
    }
    rejected = read_rejected(lake)
    first_reject = len(good) + len(rows_for_contract)
    assert rejected["origin"].tolist() == [f"{topic}/0/{first_reject + i}" for i in range(len(rejects))]
    assert rejected["reason"].tolist() == ["message: malformed JSON", "message: not valid UTF-8",
                                           "value: expected a number, got text", "message: not a JSON object",
                                           "ts: missing"]
    assert rejected["raw"].iloc[1] == "\\xff\\xfe\x00 binary"
    stored = lake.read("telemetry")
    assert len(stored) == len(good) + 3  # the exact duplicate once, the two label-change samples
    labels = lake.read("catalogue").set_index("unique_id").loc["cart/i-9/cpu_pct", "labels"]
    assert json.loads(labels) == {"job": "b"}, "the catalogue keeps the last label set"
    assert committed(broker.bootstrap, group, topic, 1) == {0: len(values)}

    dead = read_all(broker.bootstrap, dlq, expected=len(rejects))
    assert [r.value for r in dead] == rejects
    headers = [dict(r.headers) for r in dead]
    assert [h["foresight.reason"].decode() for h in headers] == rejected["reason"].tolist()
    assert [h["foresight.origin"].decode() for h in headers] == rejected["origin"].tolist()


def test_a_broker_outage_fails_the_run_clearly_commits_nothing_and_a_new_broker_works(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from connectors.sources.base import build_source
    from connectors.sources.kafka.source import KafkaAcknowledgeError, KafkaUnavailableError

    topic, group = _name("metrics"), _name("outage")
    values, partitions = _samples(10, seed=3)
    with tansu_broker(tmp_path / "tansu-1.log") as first:
        port = first.port
        create_topics(first.bootstrap, {topic: PARTITIONS})
        produce(first.bootstrap, topic, values, partitions)
        options = _configure(monkeypatch, first, group_id=group, metrics_topics=[topic])
        batch = build_source("kafka", "kafka", options).fetch()
        assert len(batch.telemetry) == len(values) and batch.on_stored is not None
    # The broker died between the fetch and the acknowledgement: a clear error, nothing committed.
    with pytest.raises(KafkaAcknowledgeError, match="committing failed") as ack:
        batch.on_stored()
    assert ack.value.offsets == {(topic, p): n for p, n in _per_partition(partitions).items()}
    with pytest.raises(KafkaUnavailableError, match=f"127.0.0.1:{port} unavailable while connecting"):
        _ingest()
    assert not Lake(foresight_home / "lake").exists("telemetry")

    with tansu_broker(tmp_path / "tansu-2.log", port=port) as second:  # a new, empty broker, same address
        create_topics(second.bootstrap, {topic: PARTITIONS})
        fresh, fresh_partitions = _samples(5, seed=4)
        produce(second.bootstrap, topic, fresh, fresh_partitions)
        outcome = _ingest()
        assert outcome["passed"] and outcome["written"]["telemetry"] == len(fresh)
        assert committed(second.bootstrap, group, topic, PARTITIONS) == _per_partition(fresh_partitions)
