"""Foresight's own flow runs as Prometheus metrics (``foresight_flow_*``), pushed once per run.

Each flow run (ingest, train, forecast-and-plan, detect, publish, pipeline) pushes one group
``job="foresight_flow", flow=<name>, instance=<sinks.pushgateway_instance>`` when it ends, so the
"Foresight health" dashboard shows the project the way its other dashboards show the fleet.

- ``foresight_flow_run_duration_seconds``: the run's wall time (each pipeline stage is a flow, so
  this is the duration per stage)
- ``foresight_flow_run_succeeded``: 1 when the run completed, 0 when it failed
- ``foresight_flow_last_run_timestamp_seconds``: when the run ended, success or not
- ``foresight_<flow>_last_success_timestamp_seconds``: when the flow last completed (only pushed
  on success). For detect this is ``foresight_detect_last_success_timestamp_seconds``, the metric
  the "Foresight pipeline has not run" alert reads: the same name, not a second one
- ``foresight_flow_rows{source, kind}``: ingest's rows per source, ``kind`` = ``in``,
  ``accepted``, ``quarantined``
- ``foresight_flow_models_promoted``: train's candidates that became champion
- ``foresight_flow_pages_sent`` / ``foresight_flow_pages_pending``: detect's PagerDuty deliveries

A completed run replaces its group (HTTP PUT), so only this run's values remain. A failed run
adds to it (HTTP POST, which replaces only the names it pushes): the last success timestamp and
the counts of the last run that had them stay, and ``run_succeeded`` goes to 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

from connectors.sinks.pushgateway import push_handler, split_credentials

JOB = "foresight_flow"
RUN_DURATION = "foresight_flow_run_duration_seconds"
RUN_SUCCEEDED = "foresight_flow_run_succeeded"
LAST_RUN = "foresight_flow_last_run_timestamp_seconds"
ROWS = "foresight_flow_rows"
MODELS_PROMOTED = "foresight_flow_models_promoted"
PAGES_SENT = "foresight_flow_pages_sent"
PAGES_PENDING = "foresight_flow_pages_pending"
ROW_KINDS = ("in", "accepted", "quarantined")
# Every flow's last-success gauge: foresight_<flow>_last_success_timestamp_seconds.
LAST_SUCCESS_REGEX = "foresight_[a-z_]+_last_success_timestamp_seconds"


def flow_word(flow: str) -> str:
    """The flow's name as a metric-name word: ``forecast-and-plan`` -> ``forecast_and_plan``.
    Raises ``ValueError`` for a name with nothing left."""
    word = re.sub(r"[^a-z0-9]+", "_", flow.lower()).strip("_")
    if not word or word[0].isdigit():
        raise ValueError(f"flow name {flow!r} cannot name a metric")
    return word


def last_success_metric(flow: str) -> str:
    """``foresight_<flow>_last_success_timestamp_seconds`` (for detect, the alert's :data:`LAST_SUCCESS`)."""
    name = f"foresight_{flow_word(flow)}_last_success_timestamp_seconds"
    return name


@dataclass(frozen=True)
class FlowRun:
    """What one run of a flow reports about itself. Counts are None when the flow has none."""

    flow: str
    succeeded: bool
    duration: float
    finished_at: float
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> kind -> rows
    models_promoted: int | None = None
    pages_sent: int | None = None
    pages_pending: int | None = None

    def __post_init__(self) -> None:
        flow_word(self.flow)
        if self.duration < 0:
            raise ValueError(f"duration must be >= 0, got {self.duration}")
        for source, kinds in self.rows.items():
            unknown = set(kinds) - set(ROW_KINDS)
            if unknown:
                raise ValueError(f"rows of {source!r}: unknown kind(s) {sorted(unknown)}, expected {ROW_KINDS}")


def flow_registry(run: FlowRun) -> CollectorRegistry:
    """A fresh registry holding the run's gauges (nothing registered globally)."""
    registry = CollectorRegistry()
    Gauge(RUN_DURATION, "Wall time of the flow's newest run.", registry=registry).set(run.duration)
    Gauge(RUN_SUCCEEDED, "1 when the flow's newest run completed, 0 when it failed.",
          registry=registry).set(int(run.succeeded))
    Gauge(LAST_RUN, "Unix time the flow's newest run ended.", registry=registry).set(run.finished_at)
    if run.succeeded:
        # The detect sink's help text, word for word: the Pushgateway refuses one name with two helps.
        Gauge(last_success_metric(run.flow), f"Unix time the {run.flow} run finished.",
              registry=registry).set(run.finished_at)
    if run.rows:
        rows = Gauge(ROWS, "Rows of the ingest run per source: in, accepted, quarantined.", ["source", "kind"],
                     registry=registry)
        for source, kinds in sorted(run.rows.items()):
            for kind, count in kinds.items():
                rows.labels(source=source, kind=kind).set(count)
    optional = ((MODELS_PROMOTED, "Candidates the train run promoted to champion.", run.models_promoted),
                (PAGES_SENT, "PagerDuty events the detect run delivered.", run.pages_sent),
                (PAGES_PENDING, "PagerDuty events still pending after the detect run.", run.pages_pending))
    for name, help_text, value in optional:
        if value is not None:
            Gauge(name, help_text, registry=registry).set(value)
    return registry


def push_flow_metrics(gateway_url: str, run: FlowRun, *, instance: str = "foresight",
                      timeout: float = 10.0) -> CollectorRegistry:
    """Push the run's metrics to the group ``job=foresight_flow, flow, instance``: replace it after
    a success (PUT), add to it after a failure (POST). Raises ``ValueError`` for a bad URL or an
    empty instance, and urllib's error when the push fails. Returns what was pushed."""
    gateway, credentials = split_credentials(gateway_url)
    if not instance:
        raise ValueError("instance must not be empty (it is part of the grouping key)")
    registry = flow_registry(run)
    push = push_to_gateway if run.succeeded else pushadd_to_gateway
    push(gateway, job=JOB, registry=registry, grouping_key={"flow": flow_word(run.flow), "instance": instance},
         timeout=timeout, handler=push_handler(credentials))
    return registry
