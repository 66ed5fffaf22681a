"""The real-time dashboard (``foresight-realtime``): the stream processor as it runs, every 5 s.

Reads the ``foresight_stream_*`` metrics :mod:`streaming.metrics` exports on the processor's
``/metrics`` (``stream.metrics_port``, scraped by Prometheus; a few seconds' scrape interval keeps
up with the refresh). Variables: ``prometheus`` (datasource) and ``service`` (``label_values`` of
the log-line counter: the services logging).

Panels: log lines/s by service and level, new templates per minute, the error ratio of the current
minute, the largest anomaly score per service, open incidents and incident events, messages by
outcome (scored, counted, late, rejected, unscored), consumer lag, processing lag, checkpoint age
and partitions owned. Every query is exercised in ``tests/integration/test_realtime_dashboard.py``
against a real Prometheus scraping a running processor.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.provisioning import prometheus_variable
from dashboards.targets import (
    PROMETHEUS,
    promql,
    service_variable,
    steps,
)

UID = "foresight-realtime"
TITLE = "Foresight: real-time stream"
FILENAME = "foresight-realtime.json"
REFRESH = "5s"

M = "foresight_stream"  # streaming.metrics.PREFIX (dashboards may not import the stream layer)
SERVICE_VARIABLE_QUERY = f"label_values({M}_log_lines_total, service)"
_SERVICE = 'service=~"$service"'

LINES_PER_SECOND = f"sum by (service, level) (rate({M}_log_lines_total{{{_SERVICE}}}[$__rate_interval]))"
LINES_NOW = f"sum(rate({M}_log_lines_total{{{_SERVICE}}}[$__rate_interval]))"
NEW_TEMPLATES = f"sum by (service) (increase({M}_new_templates_total{{{_SERVICE}}}[1m]))"
ERROR_RATIO = f"max by (service) ({M}_log_error_ratio{{{_SERVICE}}})"
ANOMALY_SCORE = f"max by (service) ({M}_anomaly_score{{{_SERVICE}}})"
OPEN_INCIDENTS = f"sum({M}_open_incidents)"
INCIDENT_EVENTS = f"sum by (state) (increase({M}_incident_events_total[5m]))"
MESSAGES = f"sum by (topic, outcome) (rate({M}_messages_total[$__rate_interval]))"
CONSUMER_LAG = f"sum by (topic) ({M}_consumer_lag_messages)"
PROCESSING_LAG = f"max by (topic) ({M}_processing_lag_seconds)"
CHECKPOINT_AGE = f"max({M}_checkpoint_age_seconds)"
OWNED_PARTITIONS = f"sum({M}_owned_partitions)"


def build() -> dict[str, Any]:
    """The real-time dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .description(
            "The stream processor live: log lines, templates, errors, anomaly scores, incidents, lag."
        )
        .tags(["foresight", "stream", "realtime"])
        .timezone("utc")
        .time("now-15m", "now")
        .refresh(REFRESH)
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(prometheus_variable())
        .with_variable(service_variable(SERVICE_VARIABLE_QUERY, PROMETHEUS))
    )
    for panel in _panels():
        board = board.with_panel(panel)
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def _series(
    panel_id: int, title: str, description: str, expr: str, legend: str, *, span: int, unit: str = "short"
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .height(8)
        .span(span)
        .with_target(promql("A", expr, legend=legend))
        .unit(unit)
        .min(0)
    )


def _stat(panel_id: int, title: str, description: str, expr: str, *, unit: str, limits: tuple) -> stat.Panel:
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .height(4)
        .span(4)
        .with_target(promql("A", expr, instant=True))
        .unit(unit)
        .decimals(0)
        .thresholds(steps(*limits))
    )


def _panels() -> list[Any]:
    return [
        _stat(
            1,
            "Lines/s now",
            "All services' log lines per second.",
            LINES_NOW,
            unit="short",
            limits=((None, "green"),),
        ),
        _stat(
            2,
            "Open incidents",
            "Incidents open in the stream now (all partitions).",
            OPEN_INCIDENTS,
            unit="short",
            limits=((None, "green"), (1, "red")),
        ),
        _stat(
            3,
            "Consumer lag",
            "Messages behind the end of the input partitions.",
            f"sum({M}_consumer_lag_messages)",
            unit="short",
            limits=((None, "green"), (10_000, "orange"), (100_000, "red")),
        ),
        _stat(
            4,
            "Processing lag",
            "Wall clock minus the Kafka time of the newest message processed.",
            f"max({M}_processing_lag_seconds)",
            unit="s",
            limits=((None, "green"), (5, "orange"), (30, "red")),
        ),
        _stat(
            5,
            "Checkpoint age",
            "Since the oldest owned partition was last checkpointed.",
            CHECKPOINT_AGE,
            unit="s",
            limits=((None, "green"), (60, "orange"), (300, "red")),
        ),
        _stat(
            6,
            "Partitions owned",
            "Partitions the group's processors own (state is kept per partition).",
            OWNED_PARTITIONS,
            unit="short",
            limits=((None, "red"), (1, "green")),
        ),
        _series(
            7,
            "Log lines/s by service and level",
            "rate() of foresight_stream_log_lines_total.",
            LINES_PER_SECOND,
            "{{service}} {{level}}",
            span=12,
        ),
        _series(
            8,
            "Error ratio (current minute)",
            "Error and fatal lines over all lines, per service.",
            ERROR_RATIO,
            "{{service}}",
            span=12,
            unit="percentunit",
        ),
        _series(
            9,
            "New templates per minute",
            "Lines that created a template the miner had not seen.",
            NEW_TEMPLATES,
            "{{service}}",
            span=12,
        ),
        _series(
            10,
            "Anomaly score by service",
            "Largest per-series surprise (-log10 p) at the last step.",
            ANOMALY_SCORE,
            "{{service}}",
            span=12,
        ),
        _series(
            11,
            "Incident events (5 min)",
            "Incidents opened, re-opened and resolved.",
            INCIDENT_EVENTS,
            "{{state}}",
            span=8,
        ),
        _series(
            12,
            "Messages/s by outcome",
            "scored, counted, late, rejected (dead-lettered), unscored.",
            MESSAGES,
            "{{topic}} {{outcome}}",
            span=8,
        ),
        _series(
            13,
            "Consumer lag by topic",
            "Messages behind the partitions' ends; growing means falling behind.",
            CONSUMER_LAG,
            "{{topic}}",
            span=8,
        ),
        _series(
            14,
            "Processing lag by topic",
            "Seconds between a message's Kafka time and its processing.",
            PROCESSING_LAG,
            "{{topic}}",
            span=12,
            unit="s",
        ),
        _series(
            15,
            "Checkpoint age",
            "Seconds since the oldest owned partition's checkpoint.",
            CHECKPOINT_AGE,
            "age",
            span=12,
            unit="s",
        ),
    ]
