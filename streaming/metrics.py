"""The stream processor's own Prometheus metrics (prometheus_client), on a registry the caller
passes in, so tests build a fresh one and two processors in one process do not collide.

Names (all ``foresight_stream_*``): ``log_lines_total{service,level}`` (rate() gives lines/s),
``new_templates_total{service}``, ``log_error_ratio{service}`` (the current minute's),
``anomaly_score{service}`` (largest per-series surprise, ``-log10 p``, at the last step),
``open_incidents{partition}``, ``incident_events_total{state}``, ``messages_total{topic,outcome}``
(``outcome``: scored, counted, late, rejected, unscored), ``processing_lag_seconds{topic}``
(wall clock minus the last message's Kafka timestamp), ``consumer_lag_messages{topic,partition}``,
``checkpoint_age_seconds`` (since the oldest owned partition's last checkpoint),
``checkpoints_total``, ``owned_partitions``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

PREFIX = "foresight_stream"


class StreamMetrics:
    """Every metric the processor exports, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.log_lines = Counter(
            f"{PREFIX}_log_lines", "Log lines consumed", ["service", "level"], registry=registry
        )
        self.new_templates = Counter(
            f"{PREFIX}_new_templates", "Log lines that created a new template", ["service"], registry=registry
        )
        self.error_ratio = Gauge(
            f"{PREFIX}_log_error_ratio",
            "Error lines over all lines, current minute",
            ["service"],
            registry=registry,
        )
        self.anomaly_score = Gauge(
            f"{PREFIX}_anomaly_score",
            "Largest per-series surprise (-log10 p) of the service at the last step",
            ["service"],
            registry=registry,
        )
        self.open_incidents = Gauge(
            f"{PREFIX}_open_incidents", "Incidents open", ["partition"], registry=registry
        )
        self.incident_events = Counter(
            f"{PREFIX}_incident_events", "Incident events emitted", ["state"], registry=registry
        )
        self.messages = Counter(
            f"{PREFIX}_messages", "Messages consumed", ["topic", "outcome"], registry=registry
        )
        self.processing_lag = Gauge(
            f"{PREFIX}_processing_lag_seconds",
            "Wall clock minus the Kafka timestamp of the last message processed",
            ["topic"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag_messages",
            "Messages behind the partition's end",
            ["topic", "partition"],
            registry=registry,
        )
        self.checkpoint_age = Gauge(
            f"{PREFIX}_checkpoint_age_seconds",
            "Seconds since the oldest owned partition was checkpointed",
            registry=registry,
        )
        self.checkpoints = Counter(
            f"{PREFIX}_checkpoints", "Partition checkpoints written", registry=registry
        )
        self.owned_partitions = Gauge(
            f"{PREFIX}_owned_partitions", "Partitions this processor owns", registry=registry
        )
        self.broker_reachable = Gauge(
            f"{PREFIX}_broker_reachable", "1 while a bootstrap server accepts connections", registry=registry
        )
