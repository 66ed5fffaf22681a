"""The real-time dashboard's PromQL against a real Prometheus scraping a running stream processor.

A processor (built as ``foresight stream`` builds it, run in a thread with its ``/metrics`` served
on a free port) consumes a small fleet's metrics and raw logs from the session's tansu broker, with
one fault per service so incidents open; Prometheus scrapes it every second. Then every query of
``foresight-realtime.json`` (and its ``service`` variable) must return series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml

from dashboards import realtime
from dashboards.queries import label_values_queries, promql_queries
from foresight.cli.stream import build_processor
from foresight.settings import load_settings
from support.kafka import Broker, create_topics
from support.prometheus import prometheus
from support.servers import free_port
from support.stream_scenario import Message, interleave, log_messages, metric_messages

pytestmark = pytest.mark.integration

SERVICES = {"cart": 0, "search": 1}


def _produce(bootstrap: str, messages: list[Message]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for m in messages:
            producer.send(m.topic, key=m.key.encode(), value=m.value, partition=m.partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


@pytest.fixture(scope="module")
def running_stream(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A processor consuming the scenario; yields its ``host:port`` of ``/metrics``."""
    from prometheus_client import start_http_server

    work = tmp_path_factory.mktemp("realtime")
    tag = f"{time.time_ns():x}"
    topics = {name: f"{name}-rt-{tag}" for name in ("metrics", "logs", "incidents", "dead")}
    create_topics(
        kafka_broker.bootstrap,
        {topics["metrics"]: 2, topics["logs"]: 2, topics["incidents"]: 1, topics["dead"]: 1},
    )
    config = work / "foresight.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(work / "home"),
                "detect": {"call_graph": {}},
                "stream": {
                    "bootstrap_servers": [kafka_broker.bootstrap],
                    "group_id": f"rt-{tag}",
                    "metrics_topic": topics["metrics"],
                    "logs_topic": topics["logs"],
                    "incidents_topic": topics["incidents"],
                    "dead_letter_topic": topics["dead"],
                    "metrics_port": 0,
                    "checkpoint_seconds": 1.0,
                    "kafka_options": {
                        "session_timeout_ms": 6000,
                        "request_timeout": 10,
                        "connect_timeout": 5,
                    },
                },
            }
        )
    )
    processor = build_processor(load_settings(config), metrics_port=0)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=processor.metrics.registry)
    end = pd.Timestamp.now(tz="UTC").floor("min")
    steps, faults = 160, {"cart": (120, 140), "search": (125, 145)}
    scenario = interleave(
        metric_messages(SERVICES, steps, faults, end=end),
        log_messages(SERVICES, steps, faults, end=end, per_step=3),
    )
    names = {"metrics": topics["metrics"], "logs": topics["logs"]}
    _produce(
        kafka_broker.bootstrap,
        [Message(names[m.topic], m.key, m.partition, m.value, m.step) for m in scenario],
    )
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(30)
        server.shutdown()


def _query(url: str, expr: str, *, instant: bool) -> list[dict]:
    now = time.time()
    if instant:
        answer = requests.post(f"{url}/api/v1/query", data={"query": expr}, timeout=10)
    else:
        answer = requests.post(
            f"{url}/api/v1/query_range",
            timeout=10,
            data={"query": expr, "start": now - 60, "end": now, "step": 1},
        )
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


def test_every_realtime_panel_query_returns_series_from_a_running_processor(
    running_stream: str, tmp_path: Path
) -> None:
    board = realtime.build()
    assert board["refresh"] == realtime.REFRESH
    with prometheus(tmp_path / "prom", scrape_targets={"stream": running_stream}, lookback="1m") as prom:
        (variable,) = label_values_queries(board)
        deadline = time.monotonic() + 40
        while True:
            services = requests.get(
                f"{prom.url}/api/v1/label/{variable.label}/values",
                params={"match[]": variable.metric},
                timeout=10,
            ).json()["data"]
            queries = promql_queries(board, variables={"service": services or ["none"]}, rate_interval="10s")
            empty = [q for q in queries if not _query(prom.url, q.expr, instant=q.instant)]
            if services == sorted(SERVICES) and not empty:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"services {services}; no data from: {[(q.panel, q.expr) for q in empty]}")
            time.sleep(1)
        assert len(queries) == 15
        # The faults opened incidents, and the lines counted are the scenario's (3 a step per service).
        events = _query(prom.url, realtime.INCIDENT_EVENTS, instant=True)
        assert "open" in {e["metric"]["state"] for e in events}
    scraped = requests.get(f"http://{running_stream}/metrics", timeout=10).text
    lines = sum(
        float(row.split()[-1])
        for row in scraped.splitlines()
        if row.startswith("foresight_stream_log_lines_total{")
    )
    assert lines == 160 * 3 * len(SERVICES)
