"""The real-time dashboard reads only metrics the stream processor exports and refreshes every 5-10 s
(its PromQL runs on a real Prometheus in tests/integration/test_realtime_dashboard.py)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from dashboards import realtime
from dashboards.build import DASHBOARDS
from dashboards.queries import label_values_queries, panels
from streaming.metrics import StreamMetrics


def _exported() -> set[str]:
    registry = CollectorRegistry()
    StreamMetrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def test_every_metric_the_dashboard_reads_is_one_the_processor_exports() -> None:
    board = realtime.build()
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets") or []]
    used = {name for expr in exprs for name in re.findall(r"foresight_stream_\w+", expr)}
    used |= {q.metric for q in label_values_queries(board)}
    assert used and used <= _exported(), used - _exported()
    # lines, templates, errors, scores, incidents, consumer and processing lag, checkpoints
    for wanted in (
        "log_lines_total",
        "new_templates_total",
        "log_error_ratio",
        "anomaly_score",
        "open_incidents",
        "consumer_lag_messages",
        "processing_lag_seconds",
        "checkpoint_age_seconds",
    ):
        assert f"foresight_stream_{wanted}" in used


def test_the_dashboard_refreshes_every_five_to_ten_seconds_and_ships_with_the_others() -> None:
    board = realtime.build()
    assert 5 <= int(board["refresh"].removesuffix("s")) <= 10
    assert board["uid"] == realtime.UID and DASHBOARDS[realtime.FILENAME] is realtime.build
    assert all(p["datasource"]["uid"] == "${prometheus}" for p in panels(board))
