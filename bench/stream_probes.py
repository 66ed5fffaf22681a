"""What ``bench stream-latency`` watches while it runs: the ``incidents`` topic (each ``open``
event with its arrival time) and the processor's own ``/metrics`` (partitions owned, consumer lag,
processing lag, messages taken), sampled every second."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class LagSample:
    at: float  # wall clock
    consumer_lag: float  # messages, all partitions
    processing_lag: float  # seconds, metrics topic
    taken: float  # messages the processor took so far


class IncidentReader(threading.Thread):
    """Reads the incidents topic from its start; keeps each ``open`` event with its arrival time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="incident-reader")
        from kafka import KafkaConsumer, TopicPartition  # lazy: kafka-python

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.consumer.assign([TopicPartition(topic, 0)])
        self.consumer.seek_to_beginning()
        self.opened: list[tuple[dict[str, Any], float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for batch in self.consumer.poll(timeout_ms=50).values():
                    received = time.time()
                    for record in batch:
                        body = json.loads(record.value)
                        if body.get("state") == "open":
                            self.opened.append((body, received))
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def scrape(url: str) -> dict[str, float]:
    """The processor's own figures from its ``/metrics``: partitions owned, consumer lag, the
    metrics topic's processing lag, messages taken."""
    from prometheus_client.parser import text_string_to_metric_families  # lazy: parser only here

    try:
        text = requests.get(url, timeout=2).text
    except requests.RequestException:
        return {}
    out = {"owned": 0.0, "consumer_lag": 0.0, "processing_lag": 0.0, "taken": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "foresight_stream_owned_partitions":
                out["owned"] = sample.value
            elif sample.name == "foresight_stream_consumer_lag_messages":
                out["consumer_lag"] += sample.value
            elif sample.name == "foresight_stream_processing_lag_seconds":
                out["processing_lag"] = max(out["processing_lag"], sample.value)
            elif sample.name == "foresight_stream_messages_total":
                out["taken"] += sample.value
    return out


def sample_lag(url: str, into: list[LagSample], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        got = scrape(url)
        if got:
            into.append(LagSample(time.time(), got["consumer_lag"], got["processing_lag"], got["taken"]))
