"""The "Foresight health" dashboard (``foresight-health``): the project watched like the fleet it watches.

Reads the ``foresight_flow_*`` metrics each flow run pushes (:mod:`connectors.sinks.flow_metrics`,
job ``foresight_flow``, one group per flow) and the stream processor's own ``foresight_stream_*``
lag and throughput (:mod:`dashboards.realtime`'s queries). Panels: time since each flow's last
success, whether its newest run failed, run duration per flow (each pipeline stage is a flow),
ingest rows in / accepted / quarantined per source, models promoted, pages sent and pending,
stream messages/s, consumer lag and processing lag. ``tests/integration/test_pushgateway.py`` runs
every query on a real Prometheus scraping a real Pushgateway.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from connectors.sinks.flow_metrics import (
    JOB,
    LAST_SUCCESS_REGEX,
    MODELS_PROMOTED,
    PAGES_PENDING,
    PAGES_SENT,
    ROWS,
    RUN_DURATION,
    RUN_SUCCEEDED,
)
from dashboards.provisioning import prometheus_variable
from dashboards.realtime import CONSUMER_LAG, PROCESSING_LAG
from dashboards.realtime import M as STREAM
from dashboards.targets import PROMETHEUS, promql, steps

UID = "foresight-health"
TITLE = "Foresight health"
FILENAME = "foresight-health.json"
REFRESH = "1m"

_FLOWS = f'job="{JOB}"'  # the detect sink's copy of its last-success gauge has no flow label
SINCE_LAST_SUCCESS = f'time() - max by (flow) ({{__name__=~"{LAST_SUCCESS_REGEX}", {_FLOWS}}})'
LAST_RUN_FAILED = f"max by (flow) (1 - {RUN_SUCCEEDED}{{{_FLOWS}}})"
RUN_SECONDS = f"max by (flow) ({RUN_DURATION}{{{_FLOWS}}})"
INGEST_ROWS = f"sum by (source, kind) ({ROWS}{{{_FLOWS}}})"
QUARANTINED = f'sum({ROWS}{{{_FLOWS}, kind="quarantined"}})'
PROMOTED = f"sum({MODELS_PROMOTED}{{{_FLOWS}}})"
PAGES = f"sum({PAGES_SENT}{{{_FLOWS}}})"
PENDING = f"sum({PAGES_PENDING}{{{_FLOWS}}})"
STREAM_MESSAGES = f"sum(rate({STREAM}_messages_total[$__rate_interval]))"
FLOW_QUERIES = (SINCE_LAST_SUCCESS, LAST_RUN_FAILED, RUN_SECONDS, INGEST_ROWS, QUARANTINED, PROMOTED, PAGES,
                PENDING)
STREAM_QUERIES = (STREAM_MESSAGES, CONSUMER_LAG, PROCESSING_LAG)


def build() -> dict[str, Any]:
    """The health dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .description("Foresight's own runs: last success, failures, durations, rows, promotions, pages, stream lag.")
        .tags(["foresight", "health"])
        .timezone("utc")
        .time("now-24h", "now")
        .refresh(REFRESH)
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(prometheus_variable())
    )
    for panel in _panels():
        board = board.with_panel(panel)
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def _stat(panel_id: int, title: str, description: str, expr: str, *, unit: str, limits: tuple,
          legend: str = "", span: int = 4) -> stat.Panel:
    return (
        stat.Panel().id(panel_id).title(title).description(description).datasource(PROMETHEUS)
        .height(4).span(span).with_target(promql("A", expr, legend=legend, instant=True))
        .unit(unit).decimals(0).thresholds(steps(*limits))
    )


def _series(panel_id: int, title: str, description: str, expr: str, legend: str, *, span: int,
            unit: str = "short") -> timeseries.Panel:
    return (
        timeseries.Panel().id(panel_id).title(title).description(description).datasource(PROMETHEUS)
        .height(8).span(span).with_target(promql("A", expr, legend=legend)).unit(unit).min(0)
    )


def _panels() -> list[Any]:
    return [
        _stat(1, "Since last success", "Per flow: time since its last completed run (detect's is the "
              "metric the 'pipeline has not run' alert reads).", SINCE_LAST_SUCCESS, unit="s",
              limits=((None, "green"), (3600, "orange"), (6 * 3600, "red")), legend="{{flow}}", span=12),
        _stat(2, "Newest run failed", "Per flow: 1 when its newest run ended Failed.", LAST_RUN_FAILED,
              unit="short", limits=((None, "green"), (1, "red")), legend="{{flow}}", span=12),
        _stat(3, "Models promoted", "Candidates the newest train run made champion.", PROMOTED,
              unit="short", limits=((None, "green"),)),
        _stat(4, "Pages sent", "PagerDuty events the newest detect run delivered.", PAGES,
              unit="short", limits=((None, "green"),)),
        _stat(5, "Pages pending", "PagerDuty events still waiting after the newest detect run.", PENDING,
              unit="short", limits=((None, "green"), (1, "orange"))),
        _series(6, "Run duration by flow", "Wall time of each flow's newest run (the pipeline's stages are "
                "flows).", RUN_SECONDS, "{{flow}}", span=12, unit="s"),
        _series(7, "Ingest rows by source", "Rows in, accepted and quarantined by the newest ingest run.",
                INGEST_ROWS, "{{source}} {{kind}}", span=8),
        _stat(8, "Rows quarantined", "All sources' rows the newest ingest run quarantined.", QUARANTINED,
              unit="short", limits=((None, "green"), (1, "orange"))),
        _series(9, "Stream messages/s", "Messages the stream processor handles per second.", STREAM_MESSAGES,
                "messages/s", span=8),
        _series(10, "Stream consumer lag", "Messages behind the input partitions' ends.", CONSUMER_LAG,
                "{{topic}}", span=8),
        _series(11, "Stream processing lag", "Seconds between a message's Kafka time and its processing.",
                PROCESSING_LAG, "{{topic}}", span=8, unit="s"),
    ]
