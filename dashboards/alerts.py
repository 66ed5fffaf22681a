"""Grafana alert rules for Foresight, provisioned from a file (``provisioning/alerting/foresight.yaml``).

Grafana's file provisioning for alerting (``apiVersion: 1``, ``groups``: ``orgId``, ``name``,
``folder``, ``interval``, ``rules``), one group evaluated every minute in the ``Foresight`` folder:

- **Capacity runway under 7 days** (forecast store, PostgreSQL): one alert per planned series whose
  median forecast reaches its threshold within :data:`RUNWAY_DAYS` days (the plan's runway,
  ``days_to_threshold``); labels carry the series, service and metric (Grafana turns a SQL
  table's text columns into labels). It reads the median runway, not the upper band's crossing
  nor the probability: a median crossing within 7 days means at least an even chance of crossing
  by then, so the page is likely to be real, where the band's crossing (at least a 1-in-10 chance)
  paged for flat series whose band merely widened. Series that only *might* cross show on the
  capacity dashboard with their probability. The query keeps one number per row: another numeric
  column would become a second series under the same threshold, and a probability as a label would
  start a new alert instance whenever it moved.
- **Critical incident open** (Prometheus): a service with an open incident of severity
  ``critical``, from the detect flow's pushed ``foresight_incident_open_critical``.
- **Foresight pipeline has not run** (Prometheus): the last successful detect run is older than
  :data:`STALE_AFTER_SECONDS`; no metric at all (it never ran, or the Pushgateway lost it) alerts too.

Each rule is a query (``A``), then Grafana server-side expressions: reduce to the last value
(``B``) and a threshold (``C``, the condition). The queries are plain module constants so tests
run them on a real PostgreSQL and a real Prometheus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sinks.pushgateway import INCIDENT_OPEN_CRITICAL, LAST_SUCCESS
from dashboards.provisioning import FOLDER, PROMETHEUS_UID, STORE_UID, render

ALERTING_FILE = Path("alerting") / "foresight.yaml"

RUNWAY_DAYS = 7
STALE_AFTER_SECONDS = 6 * 3600
EXPRESSION_UID = "__expr__"  # Grafana's server-side expressions

RUNWAY_SQL = """SELECT p.unique_id AS series, p.service, p.metric, p.days_to_threshold AS days
FROM capacity_plan p
WHERE p.days_to_threshold IS NOT NULL
ORDER BY p.days_to_threshold, p.unique_id"""
CRITICAL_INCIDENTS_PROMQL = f"max by (service) ({INCIDENT_OPEN_CRITICAL})"
SINCE_LAST_RUN_PROMQL = f"time() - max({LAST_SUCCESS})"


def _store_query(sql: str) -> dict[str, Any]:
    return {
        "refId": "A",
        "relativeTimeRange": {"from": 600, "to": 0},
        "datasourceUid": STORE_UID,
        "model": {"refId": "A", "rawSql": sql, "format": "table", "editorMode": "code", "rawQuery": True},
    }


def _prometheus_query(expr: str) -> dict[str, Any]:
    return {
        "refId": "A",
        "relativeTimeRange": {"from": 600, "to": 0},
        "datasourceUid": PROMETHEUS_UID,
        "model": {"refId": "A", "expr": expr, "instant": True, "range": False, "editorMode": "code"},
    }


def _expression(ref_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_UID,
        "model": {"refId": ref_id, "datasource": {"type": EXPRESSION_UID, "uid": EXPRESSION_UID}, **model},
    }


def _reduce_and_threshold(kind: str, limit: float) -> list[dict[str, Any]]:
    """``B``: the last value of ``A``; ``C``: ``B`` ``kind`` (``lt`` / ``gt``) ``limit``."""
    return [
        _expression("B", {"type": "reduce", "expression": "A", "reducer": "last"}),
        _expression("C", {"type": "threshold", "expression": "B",
                          "conditions": [{"evaluator": {"type": kind, "params": [limit]}}]}),
    ]


def _rule(uid: str, title: str, query: dict[str, Any], check: list[dict[str, Any]], *, for_: str,
          no_data: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [query, *check],
        "noDataState": no_data,
        "execErrState": "Error",
        "for": for_,
        "labels": {"team": "foresight", "severity": severity},
        "annotations": {"summary": summary, "description": description},
        "isPaused": False,
    }


def rules() -> list[dict[str, Any]]:
    """The three rules, in the order Grafana lists them."""
    return [
        _rule("foresight-runway-short", f"Capacity runway under {RUNWAY_DAYS} days", _store_query(RUNWAY_SQL),
              _reduce_and_threshold("lt", RUNWAY_DAYS), for_="0s", no_data="OK", severity="warning",
              summary="{{ $labels.series }} is expected to reach its threshold in {{ humanize $values.B.Value }} days",
              description="The median forecast for this series crosses its capacity threshold within "
                          f"{RUNWAY_DAYS} days (capacity_plan.days_to_threshold), so it is at least as likely "
                          "as not to cross; its chance within the horizon is capacity_plan.crossing_probability "
                          "on the capacity dashboard."),
        _rule("foresight-critical-incident", "Critical incident open", _prometheus_query(CRITICAL_INCIDENTS_PROMQL),
              _reduce_and_threshold("gt", 0), for_="0s", no_data="OK", severity="critical",
              summary="{{ $labels.service }} has an open critical Foresight incident",
              description="The detect flow holds an open incident of severity critical for this service; "
                          "see the incidents dashboard and the page it sent."),
        _rule("foresight-pipeline-stale", "Foresight pipeline has not run", _prometheus_query(SINCE_LAST_RUN_PROMQL),
              _reduce_and_threshold("gt", STALE_AFTER_SECONDS), for_="10m", no_data="Alerting",
              severity="warning",
              summary="No successful Foresight detect run for {{ humanizeDuration $values.B.Value }}",
              description=f"The last successful detect run is older than {STALE_AFTER_SECONDS // 3600} h, "
                          "or none was ever pushed: check the Prefect deployments and the Pushgateway."),
    ]


def alert_rules() -> dict[str, Any]:
    """The alerting provisioning document."""
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": "foresight", "folder": FOLDER, "interval": "1m", "rules": rules()}],
    }


def alerting_files() -> dict[Path, str]:
    """Relative path -> text of the alerting provisioning file."""
    return {ALERTING_FILE: render(alert_rules())}
