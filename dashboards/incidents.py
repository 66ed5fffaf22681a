"""The incidents dashboard (``foresight-incidents``): what the detect flow sees, per service.

Reads the metrics :mod:`connectors.sinks.pushgateway` pushes after each detect run (through a
Pushgateway scraped by Prometheus) and the incident annotations :mod:`connectors.sinks.grafana`
writes (Grafana's built-in annotation store, matched by the tags ``foresight`` + ``incident``).

Variables: ``prometheus`` (datasource) and ``service`` (``label_values`` of
``foresight_incident_open``, which has one series per scored service).

Panels: open incidents per service (state timeline), failure risk per service against its
threshold, the current risk, the evidence series (highest anomaly scores over time and now),
the time since the last successful detect run, and the incident log (annotation list).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import (
    annotationslist,
    bargauge,
    dashboard,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

from connectors.sinks.grafana import ANNOTATION_TAGS
from connectors.sinks.pushgateway import (
    ANOMALY_SCORE,
    ANOMALY_THRESHOLD,
    FAILURE_RISK,
    INCIDENT_OPEN,
    LAST_SUCCESS,
    RISK_THRESHOLD,
)
from dashboards.provisioning import prometheus_variable
from dashboards.targets import (
    DASHED,
    GRAFANA,
    PROMETHEUS,
    RED,
    promql,
    prop,
    service_variable,
    steps,
)

UID = "foresight-incidents"
TITLE = "Foresight: incidents, risk and evidence"
FILENAME = "foresight-incidents.json"

SERVICE_VARIABLE_QUERY = f"label_values({INCIDENT_OPEN}, service)"
_SERVICE = 'service=~"$service"'

OPEN_INCIDENTS = f"max by (service) ({INCIDENT_OPEN}{{{_SERVICE}}})"
RISK = f"max by (service) ({FAILURE_RISK}{{{_SERVICE}}})"
RISK_LIMIT = f"max({RISK_THRESHOLD})"
RISK_NOW = f"sort_desc(max by (service) ({FAILURE_RISK}{{{_SERVICE}}}))"
EVIDENCE = f"topk(10, max by (service, unique_id) ({ANOMALY_SCORE}{{{_SERVICE}}}))"
ANOMALY_LIMIT = f"max({ANOMALY_THRESHOLD})"
TOP_SCORES_NOW = f"topk(20, {ANOMALY_SCORE}{{{_SERVICE}}})"
SINCE_LAST_RUN = f"time() - max({LAST_SUCCESS})"


def build() -> dict[str, Any]:
    """The incidents dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .description(
            "Open incidents, failure risk and the anomalous series behind them (Foresight detect flow)."
        )
        .tags(["foresight", "incidents", "anomaly"])
        .timezone("utc")
        .time("now-24h", "now")
        .refresh("1m")
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(prometheus_variable())
        .with_variable(service_variable(SERVICE_VARIABLE_QUERY, PROMETHEUS))
        .annotation(
            dashboard.AnnotationQuery()
            .name("Foresight incidents")
            .datasource(GRAFANA)
            .enable(True)
            .icon_color("red")
            .target(
                dashboard.AnnotationTarget()
                .type("tags")
                .tags(list(ANNOTATION_TAGS))
                .match_any(False)
                .limit(500)
            )
        )
        .with_panel(_open_incidents())
        .with_panel(_risk())
        .with_panel(_risk_now())
        .with_panel(_evidence())
        .with_panel(_top_scores())
        .with_panel(_since_last_run())
        .with_panel(_incident_log())
    )
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def _open_incidents() -> statetimeline.Panel:
    state = {
        "0": dashboard_models.ValueMappingResult(text="ok", color="green"),
        "1": dashboard_models.ValueMappingResult(text="incident", color="red"),
    }
    return (
        statetimeline.Panel()
        .id(1)
        .title("Open incidents")
        .description("Per service: red while Foresight has an open incident (foresight_incident_open).")
        .datasource(PROMETHEUS)
        .height(7)
        .span(24)
        .with_target(promql("A", OPEN_INCIDENTS, legend="{{service}}"))
        .mappings([dashboard_models.ValueMap(options=state)])
        .show_value(common_models.VisibilityMode.NEVER)
        .merge_values(True)
        .fill_opacity(80)
    )


def _risk() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(2)
        .title("Failure risk per service")
        .description(
            "The failure predictor's risk that an incident starts within its horizon, "
            "against the operating threshold."
        )
        .datasource(PROMETHEUS)
        .height(9)
        .span(16)
        .with_target(promql("A", RISK, legend="{{service}}"))
        .with_target(promql("B", RISK_LIMIT, legend="threshold"))
        .unit("percentunit")
        .min(0)
        .max(1)
        .override_by_name("threshold", [RED, DASHED])
    )


def _risk_now() -> bargauge.Panel:
    return (
        bargauge.Panel()
        .id(3)
        .title("Risk now")
        .description("Newest failure risk per service, highest first.")
        .datasource(PROMETHEUS)
        .height(9)
        .span(8)
        .with_target(promql("A", RISK_NOW, legend="{{service}}", instant=True))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(steps((None, "green"), (0.3, "orange"), (0.5, "red")))
    )


def _evidence() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(4)
        .title("Evidence: most anomalous series")
        .description("The ten highest anomaly scores at each time, by series, against the anomaly threshold.")
        .datasource(PROMETHEUS)
        .height(9)
        .span(16)
        .with_target(promql("A", EVIDENCE, legend="{{unique_id}}"))
        .with_target(promql("B", ANOMALY_LIMIT, legend="threshold"))
        .min(0)
        .max(1)
        .override_by_name("threshold", [RED, DASHED])
    )


def _top_scores() -> table.Panel:
    return (
        table.Panel()
        .id(5)
        .title("Highest anomaly scores now")
        .description("Newest anomaly score of the twenty most anomalous series.")
        .datasource(PROMETHEUS)
        .height(9)
        .span(8)
        .with_target(promql("A", TOP_SCORES_NOW, instant=True))
        .override_by_name("Value", [prop("decimals", 6)])
    )


def _since_last_run() -> stat.Panel:
    return (
        stat.Panel()
        .id(6)
        .title("Since the last detect run")
        .description("Time since the detect flow last pushed its metrics; stale detection is no detection.")
        .datasource(PROMETHEUS)
        .height(6)
        .span(6)
        .with_target(promql("A", SINCE_LAST_RUN, instant=True))
        .unit("s")
        .decimals(0)
        .thresholds(steps((None, "green"), (900, "orange"), (3600, "red")))
    )


def _incident_log() -> annotationslist.Panel:
    return (
        annotationslist.Panel()
        .id(7)
        .title("Incident log")
        .description("Incident annotations written by the detect flow (tags foresight, incident).")
        .datasource(GRAFANA)
        .height(6)
        .span(18)
        .tags(list(ANNOTATION_TAGS))
        .only_from_this_dashboard(False)
        .only_in_time_range(True)
        .limit(50)
        .show_tags(True)
        .show_time(True)
    )
