"""Smoke tests of ``foresight bench stream`` and ``foresight bench stream-latency`` at tiny sizes on the
session's tansu broker: every line goes through the processor, the stages each time all of them,
faults open incidents whose latency is measured."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.stream import run as run_stream
from bench.stream_latency import run as run_latency
from foresight.cli import app
from support.kafka import Broker

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("batch_lines", "client"), [(1, "confluent"), (100, "confluent"), (1, "kafka-python")]
)
def test_bench_stream_takes_every_line_end_to_end_and_per_stage(
    kafka_broker: Broker, batch_lines: int, client: str
) -> None:
    figures = run_stream(
        kafka_broker.bootstrap, n_lines=3_000, batch_lines=batch_lines, partitions=2, client=client
    )
    assert figures.client == client
    assert figures.messages == (3_000 if batch_lines == 1 else 30)  # 500 lines a service: 5 batches each
    assert figures.end_to_end.lines == 3_000 and figures.end_to_end.wall > 0
    assert [s.name for s in figures.stages] == ["consume", "decode", "parse", "aggregate", "write"]
    assert all(s.lines == 3_000 and s.cpu >= 0 for s in figures.stages)
    # each of the 2 partitions mines its own: the generator's 40 shapes, give or take the miner's merges
    assert 2 * 20 <= figures.templates <= 2 * 60
    assert figures.rows_written > 0 and figures.peak_rss_mib > 0


def test_the_bench_stream_command_prints_its_table(kafka_broker: Broker) -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "stream",
            "--lines",
            "1000",
            "--batch-lines",
            "50",
            "--no-stages",
            "--bootstrap",
            kafka_broker.bootstrap,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "end to end" in result.output and "lines per CPU-second" in result.output
    assert "confluent client" in result.output


def test_the_bench_stream_command_refuses_an_unknown_client() -> None:
    result = CliRunner().invoke(app, ["bench", "stream", "--client", "librdkafka", "--bootstrap", "x:1"])
    assert result.exit_code != 0
    assert "confluent, kafka-python" in result.output


def test_bench_stream_latency_measures_each_faulty_service_s_incident(kafka_broker: Broker) -> None:
    figures = run_latency(
        kafka_broker.bootstrap,
        series=80,
        services=4,
        step=1.0,
        warmup_steps=12,
        live_steps=7,
        faulty=2,
        partitions=2,
    )
    assert figures.series == 80 and figures.faulty == 2
    assert len(figures.latencies) == 2, figures  # one incident per faulty service, matched to its sample
    assert all(0 < x < 10 for x in figures.latencies)
    assert figures.other_incidents == 0
    assert figures.lag and figures.percentile(99) >= figures.percentile(50)
