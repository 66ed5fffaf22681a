"""Prefect tasks the detect flow calls to show its results in Grafana and Prometheus.

- :func:`annotate_incidents`: one Grafana annotation per incident (``sinks.grafana_url``),
  de-duplicated across runs by the incident's tag (:func:`connectors.sinks.grafana.publish_annotations`);
- :func:`respond_to_incidents`: automated response (``response.enabled``, :mod:`response`): rules,
  guard rails, actions, verification and escalation, audited in the lake (docs/response.md);
- :func:`push_detect_metrics`: anomaly scores, failure risk, open incidents and each source's
  contract verdict to a Pushgateway (``sinks.pushgateway_url``) for the incidents dashboard
  (:mod:`connectors.sinks.pushgateway`).

Each is a no-op (and says so) when its sink is not configured. The retries live here, on the
task; the clients underneath do not retry. Call them with ``return_state=True`` and read the
outcome with :func:`sink_outcome`, so an unreachable Grafana or Pushgateway is reported, not fatal.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from connectors.sinks.grafana import GrafanaClient, publish_annotations
from connectors.sinks.pushgateway import push_detection_metrics
from flows.retries import retry_unless_permanent
from foresight.settings import Settings
from response.from_settings import respond

INCIDENTS_DASHBOARD_UID = "foresight-incidents"


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def annotate_incidents(settings: Settings, incidents: pd.DataFrame) -> dict[str, Any]:
    """Create or update the incidents' annotations in Grafana; counts by outcome."""
    sinks = settings.sinks
    if not sinks.grafana_url:
        return {"skipped": "sinks.grafana_url is not set"}
    if sinks.grafana_token is None:
        raise ValueError("annotating incidents in Grafana needs sinks.grafana_token")
    if incidents.empty:
        return {"created": 0, "updated": 0, "unchanged": 0, "failed": {}}
    with GrafanaClient(sinks.grafana_url, sinks.grafana_token.get_secret_value()) as client:
        # Organisation-wide annotations (no dashboardUID): the incidents dashboard shows them by
        # tag, and so can any other dashboard that adds the same annotation query.
        report = publish_annotations(incidents, client)
    return {
        "created": len(report.created),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
        "failed": report.failed,
    }


# No retries: an action must not run twice because a later step failed (the audit log would refuse
# it anyway; a failed step is audited and reported instead).
@task(cache_policy=NO_CACHE)
def respond_to_incidents(settings: Settings, incidents: pd.DataFrame) -> dict[str, Any]:
    """Automated response on this run's incidents (a no-op unless ``response.enabled``)."""
    return respond(settings, incidents.to_dict("records"))


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def push_detect_metrics(
    settings: Settings,
    scores: pd.DataFrame,
    risk: pd.DataFrame | None,
    incidents: pd.DataFrame | None,
    catalogue: pd.DataFrame,
    risk_threshold: float | None = None,
    sources: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Push the newest scores, risk, open incidents and ``sources``' contract verdicts (``source,
    contract_failed, series_held_back``) to the Pushgateway; counts of series pushed."""
    sinks = settings.sinks
    if not sinks.pushgateway_url:
        return {"skipped": "sinks.pushgateway_url is not set"}
    snapshot = push_detection_metrics(
        sinks.pushgateway_url,
        scores,
        risk,
        incidents,
        catalogue,
        instance=sinks.pushgateway_instance,
        anomaly_threshold=settings.detect.anomaly_threshold,
        risk_threshold=settings.detect.risk_threshold if risk_threshold is None else risk_threshold,
        sources=sources,
    )
    return {
        "scores": len(snapshot.scores),
        "services_with_risk": len(snapshot.risk),
        "open_incidents": int(snapshot.open_incidents["open"].sum()),
        "sources_failed": int(snapshot.sources["contract_failed"].sum()),
    }


def sink_outcome(state: Any) -> dict[str, Any]:
    """A sink task's result from its final state (``task(..., return_state=True)``), or
    ``{"failed": <error>}``: Grafana or the Pushgateway being down must not fail a detect run
    whose pages already went out."""
    if state.is_completed():
        return dict(state.result())
    return {"failed": str(state.result(raise_on_failure=False))}
