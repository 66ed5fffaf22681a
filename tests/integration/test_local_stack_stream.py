"""What ``foresight stack up --seed`` puts on Kafka is what ``foresight stream`` consumes: the seed
(one simulated day) produced to a real broker, the example config's ``stream:`` section pointed at
it, the processor run until it has read everything; its log aggregates come from mining the raw
lines."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from foresight.cli.local_stack.seeding import (
    KAFKA_PARTITIONS,
    LOGS_TOPIC,
    METRICS_TOPIC,
    seed_kafka,
    simulated_batch,
)
from foresight.cli.local_stack.stack import StackPorts
from foresight.lake import Lake
from foresight.settings import load_settings
from support.kafka import Broker
from support.servers import free_port
from support.stream_process import checkpointed_offsets, start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("features.logs.miner", reason="features.logs.miner (the template miner) is not installed")

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "infra" / "local" / "foresight.yaml"


def _read(home: Path, group: str) -> dict[str, int]:
    """Messages read per input topic (from the checkpoints' offsets), every partition checkpointed."""
    offsets = checkpointed_offsets(home, group, KAFKA_PARTITIONS)
    if len(offsets) < 2 * KAFKA_PARTITIONS:
        return {}
    return {t: sum(o for (tt, _), o in offsets.items() if tt == t) for t in (METRICS_TOPIC, LOGS_TOPIC)}


def test_the_seeded_topics_feed_the_stream_processor_of_the_example_config(
    kafka_broker: Broker, tmp_path: Path, stream_processes: list
) -> None:
    batch = simulated_batch(1)
    metrics, logs = seed_kafka(kafka_broker.bootstrap, batch)
    port = free_port()
    text = EXAMPLE_CONFIG.read_text().replace(f"127.0.0.1:{StackPorts().kafka}", kafka_broker.bootstrap)
    text = text.replace("metrics_port: 9464", f"metrics_port: {port}")
    config = tmp_path / "foresight.yaml"
    config.write_text(text)
    stream = load_settings(config).stream
    assert (stream.metrics_topic, stream.logs_topic) == (METRICS_TOPIC, LOGS_TOPIC)
    home, log = tmp_path / "home", tmp_path / "stream.log"
    stream_processes.append(start(config, log))
    wait_for(
        "the seed read",
        lambda: _read(home, stream.group_id) == {METRICS_TOPIC: metrics, LOGS_TOPIC: logs},
        120,
        [log],
    )
    stream_processes[0].send_signal(signal.SIGTERM)
    assert stream_processes[0].wait(60) == 0, log.read_text()[-3000:]

    lake = Lake(home / "lake")
    telemetry, catalogue = lake.read("telemetry"), lake.read("catalogue")
    ids = telemetry["unique_id"].astype(str)
    offsets = checkpointed_offsets(home, stream.group_id, KAFKA_PARTITIONS)
    assert all(offsets.values())  # keyed by service: every partition of both topics has messages
    lines = telemetry[ids.str.endswith("/logs/log_lines")]
    services = set(batch.logs["service"].astype(str))
    assert set(lines["unique_id"].str.split("/").str[0]) == services
    assert lines["y"].sum() == logs  # every raw line counted once
    templates = set(ids[ids.str.contains("/logs/log_template_")].str.rsplit("_", n=1).str[-1])
    distinct_lines = batch.logs["message"].nunique()
    # the miner grouped the raw lines into few templates (ids and numbers masked), not one per line
    assert 1 < len(templates) < distinct_lines / 10, (len(templates), distinct_lines)
    assert set(catalogue.loc[catalogue["unique_id"].isin(set(ids)), "source"]) == {"stream"}
