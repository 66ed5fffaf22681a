"""``foresight stream`` as real processes against a real broker (tansu), one broker per session.

- end to end, with a ``kill -9`` mid-stream and a restart: every incident of an uninterrupted
  stream is paged exactly once (same ids after the replay from the checkpoint), log aggregates
  are exact despite the replay, poison messages reach the quarantine and the dead-letter topic
  with their reason;
- two processors in one group over two partitions, one killed: the other takes its partition
  over through the checkpoint, nothing lost, nothing paged twice.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.quarantine import read_rejected
from support.kafka import Broker, read_all
from support.stream_process import (
    Topics,
    checkpointed_offsets,
    checkpoints,
    expected_offsets,
    outbox,
    pages,
    produce,
    start,
    wait_for,
    write_config,
)
from support.stream_scenario import interleave, log_messages, metric_messages, reference_incidents

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# The processor mines log templates with features.logs.miner (its own branch until merged).
pytest.importorskip("features.logs.miner", reason="features.logs.miner (the template miner) is not installed")

SERVICES = {"cart": 0, "search": 1}
PER_STEP_LINES = 3


def test_end_to_end_with_kill_9_and_restart_pages_each_incident_once(
    kafka_broker: Broker, tmp_path: Path, stream_processes: list
) -> None:
    topics = Topics(kafka_broker.bootstrap)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    steps, faults = 200, {"cart": (120, 135), "search": (165, 180)}
    scenario = interleave(
        metric_messages(SERVICES, steps, faults, end=end),
        log_messages(SERVICES, steps, faults, end=end, per_step=PER_STEP_LINES),
    )
    reference = reference_incidents(scenario)
    opened = [i for i, s in reference if s == "open"]
    assert len(opened) >= 2, reference  # the scenario itself: one fault per service raises an incident
    messages = topics.rename(scenario)
    future = (end + pd.Timedelta(hours=2)).isoformat()  # a producer whose clock is two hours ahead
    poison = [
        (topics.metrics, 0, b"{not json"),
        (
            topics.logs,
            1,
            json.dumps(
                {"ts": "2026-01-01T00:00:00", "service": "cart", "level": "INFO", "message": "naive"}
            ).encode(),
        ),
        (
            topics.metrics,
            1,
            json.dumps(
                {"metric": "cpu_pct", "service": "search", "resource": "i-1", "ts": future, "value": 1.0}
            ).encode(),
        ),
    ]
    config = write_config(
        tmp_path, kafka_broker.bootstrap, topics, checkpoint_messages=300, checkpoint_seconds=3600
    )
    home, log = tmp_path / "home", tmp_path / "stream.log"
    first = [m for m in messages if m.step < 150]
    produce(kafka_broker.bootstrap, [*first[:500], *poison, *first[500:]])
    stream_processes.append(start(config, log))
    # Killed once cart's incident was paged: work since the last checkpoint (every 300 messages)
    # dies with it and is replayed after the restart.
    wait_for("cart's page", lambda: any("cart" in str(e) for e in outbox(home)), 90, [log])
    stream_processes[0].send_signal(signal.SIGKILL)
    stream_processes[0].wait(10)
    killed_at = checkpointed_offsets(home, topics.group)
    produce(kafka_broker.bootstrap, [m for m in messages if m.step >= 150])
    # The restart checkpoints every half second, so the test sees when it has read everything.
    stream_processes.append(
        start(write_config(tmp_path, kafka_broker.bootstrap, topics, checkpoint_seconds=0.5), log)
    )
    expected = expected_offsets(
        messages, {(topics.metrics, 0): 1, (topics.logs, 1): 1, (topics.metrics, 1): 1}
    )
    wait_for("everything read", lambda: checkpointed_offsets(home, topics.group) == expected, 90, [log])
    stream_processes[1].send_signal(signal.SIGTERM)
    assert stream_processes[1].wait(30) == 0, log.read_text()[-3000:]

    assert checkpointed_offsets(home, topics.group) == expected
    assert 0 < sum(killed_at.values()) < len(first) + len(poison)  # killed mid-stream, after a checkpoint
    triggers, resolves = pages(home)
    assert sorted(triggers) == sorted(opened)  # same ids after the replay: one page each, none lost
    assert len(resolves) == len(set(resolves)) == len([s for _, s in reference if s == "resolved"])
    on_topic = {
        (json.loads(r.value)["incident_id"], json.loads(r.value)["state"])
        for r in read_all(kafka_broker.bootstrap, topics.incidents, 100, timeout=5)
    }
    assert on_topic == set(reference)

    lake = Lake(home / "lake")
    telemetry = lake.read("telemetry")
    lines = telemetry[telemetry["unique_id"].astype(str).str.endswith("/logs/log_lines")]
    assert len(lines) == steps * len(SERVICES)  # one row per service and minute, exact after the replay
    assert set(lines["y"]) == {float(PER_STEP_LINES)}
    ratio = telemetry[telemetry["unique_id"].astype(str) == "cart/logs/log_error_ratio"].set_index("ds")["y"]
    assert ratio.max() == pytest.approx(2 / 3) and ratio.min() == 0.0

    # At-least-once: a poison message dead-lettered after the last checkpoint before the kill is
    # read and dead-lettered again after the restart; consumers tell the copies apart by origin.
    dead = read_all(kafka_broker.bootstrap, topics.dead, 2 * len(poison), timeout=4)
    by_origin: dict[str, set[str]] = {}
    for r in dead:
        headers = dict(r.headers)
        by_origin.setdefault(headers["foresight.origin"].decode(), set()).add(headers["foresight.reason"].decode())
    assert len(by_origin) == len(poison), by_origin
    reasons = sorted(min(found) for found in by_origin.values())
    skewed = [r for r in reasons if "clock skew" in r]
    assert len(skewed) == 1 and skewed[0].startswith("ts: 7")  # ~7,200 s ahead
    assert sorted(set(reasons) - set(skewed)) == [
        "message: malformed JSON",
        "ts: naive timestamp (no timezone)",
    ]
    assert {origin.split("/")[0] for origin in by_origin} == {
        topics.metrics,
        topics.logs,
    }
    rejected = read_rejected(lake)
    assert set(rejected["origin"]) == set(by_origin)  # every poison message quarantined with its reason
    for origin, reason in zip(rejected["origin"], rejected["reason"], strict=True):
        assert reason in by_origin[origin]


# Both Kafka clients (stream.client): the takeover exercises the group protocol, the rebalance
# callbacks and the seek to checkpointed offsets, where the two libraries differ most.
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_a_killed_consumer_s_partition_is_taken_over_through_its_checkpoint(
    kafka_broker: Broker, tmp_path: Path, stream_processes: list, client: str
) -> None:
    topics = Topics(kafka_broker.bootstrap)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    steps, faults = 190, {"cart": (110, 125), "search": (160, 175)}
    scenario = interleave(
        metric_messages(SERVICES, steps, faults, end=end, seed=3),
        log_messages(SERVICES, steps, faults, end=end, per_step=1),
    )
    reference = reference_incidents(scenario)
    opened = [i for i, s in reference if s == "open"]
    messages = topics.rename(scenario)
    config = write_config(tmp_path, kafka_broker.bootstrap, topics, checkpoint_seconds=0.5, client=client)
    home = tmp_path / "home"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    stream_processes.extend(start(config, log) for log in logs)
    owners = lambda: {p: c.written_by.rsplit(":", 1)[1] for p, c in checkpoints(home, topics.group).items()}  # noqa: E731
    wait_for("each processor owning one partition", lambda: len(set(owners().values())) == 2, 90, logs)
    first = [m for m in messages if m.step < 140]
    produce(kafka_broker.bootstrap, first)
    wait_for(
        "the first half checkpointed",
        lambda: checkpointed_offsets(home, topics.group) == expected_offsets(first),
        60,
        logs,
    )
    victim = stream_processes[1]
    victim_partition = next(p for p, pid in owners().items() if pid == str(victim.pid))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    produce(kafka_broker.bootstrap, [m for m in messages if m.step >= 140])
    survivor = str(stream_processes[0].pid)
    wait_for(
        "the survivor owning both partitions with everything read",
        lambda: (
            set(owners().values()) == {survivor}
            and checkpointed_offsets(home, topics.group) == expected_offsets(messages)
        ),
        90,
        logs,
    )
    stream_processes[0].send_signal(signal.SIGTERM)
    assert stream_processes[0].wait(30) == 0

    triggers, resolves = pages(home)
    assert sorted(triggers) == sorted(opened)
    assert len(resolves) == len(set(resolves)) == len([s for _, s in reference if s == "resolved"])
    taken_over = [s for s, p in SERVICES.items() if p == victim_partition]
    assert any(taken_over[0] in str(e) for e in outbox(home) if e["event_action"] == "trigger")
