"""Publish flow: refresh what people look at — recent actuals, series metadata and per-series
PromQL in the forecast store (the Grafana panels' source), the dashboard JSON and Grafana
provisioning files (uploaded to Grafana when ``sinks.grafana_url`` is set), and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import flow, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE

from connectors.sinks.grafana import GrafanaClient
from connectors.sinks.html_report import render_report
from connectors.sinks.series_promql import SeriesPromqlTable, series_promql_frame
from dashboards.build import build_all, write_all
from flows.resources import open_forecast_store, open_lake, open_outbox, settings_for_run
from flows.retries import retry_unless_permanent
from flows.self_metrics import SELF_METRICS
from foresight.schemas import empty_incident_history
from foresight.settings import Settings
from models.evaluation.gate import capacity_series

if TYPE_CHECKING:
    from connectors.sinks.forecast_store import ForecastStore

ACTUALS_DAYS = 14


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def refresh_store(settings: Settings) -> dict[str, Any]:
    lake = open_lake(settings)
    catalogue = lake.read("catalogue")
    newest = lake.sql("select max(ds) as newest from telemetry", ["telemetry"])["newest"].iloc[0]
    recent = lake.read("telemetry", start=pd.Timestamp(newest) - pd.Timedelta(days=ACTUALS_DAYS))
    actuals = capacity_series(recent, catalogue, settings.forecast)
    store = open_forecast_store(settings)
    store.write_series(catalogue)
    store.write_actuals(actuals)
    _write_series_promql(settings, store, catalogue)
    return {"actuals": actuals, "forecasts": store.read_forecasts(), "plan": store.read_capacity_plan(),
            "rightsizing": store.read_rightsizing()}


def _write_series_promql(settings: Settings, store: ForecastStore, catalogue: pd.DataFrame) -> None:
    """The PromQL of each Prometheus-sourced series, so the capacity dashboard draws its actuals
    from Prometheus (connectors/sinks/series_promql.py)."""
    table = SeriesPromqlTable(store.engine)
    table.create()
    if "source" in catalogue.columns and "labels" in catalogue.columns:
        table.write(series_promql_frame(catalogue, settings.sources))


@task(cache_policy=NO_CACHE)
def write_dashboards(settings: Settings) -> list[str]:
    """Every dashboard JSON and the Grafana provisioning files under ``sinks.dashboards_dir``
    (default ``<home>/dashboards``, never the current directory)."""
    return [str(p) for p in write_all(settings.dashboards_dir)]


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def upload_dashboards(settings: Settings) -> list[dict[str, Any]]:
    """Create or replace every dashboard in Grafana (``sinks.grafana_url``) through its HTTP API."""
    sinks = settings.sinks
    if sinks.grafana_url is None or sinks.grafana_token is None:
        raise ValueError("uploading dashboards needs sinks.grafana_url and sinks.grafana_token")
    uploads = []
    with GrafanaClient(sinks.grafana_url, sinks.grafana_token.get_secret_value()) as client:
        for board in build_all().values():
            done = client.upload_dashboard(
                board, folder_uid=sinks.grafana_folder_uid, overwrite=True, message="Foresight publish flow"
            )
            uploads.append({"uid": done.uid, "url": done.url, "version": done.version})
    return uploads


@task(cache_policy=NO_CACHE)
def write_report(
    settings: Settings, store_data: dict[str, Any], detect_summary: dict[str, Any] | None
) -> Path:
    lake = open_lake(settings)
    incidents = _outbox_incidents(settings)
    truth = lake.read("incidents") if lake.exists("incidents") else empty_incident_history()
    return render_report(
        settings.report_dir / "foresight-report.html",
        title="Foresight report",
        summary={
            "series forecast": store_data["forecasts"]["unique_id"].nunique(),
            "resources planned": len(store_data["plan"]),
            "incidents in outbox": len(incidents),
            "ground-truth incidents": len(truth),
        },
        forecasts=store_data["forecasts"],
        actuals=store_data["actuals"],
        capacity_plan=store_data["plan"],
        incidents=incidents,
        evaluation=(detect_summary or {}).get("evaluation", {}),
        rightsizing=store_data.get("rightsizing"),
        level=settings.forecast.level,
    )


def _outbox_incidents(settings: Settings) -> pd.DataFrame:
    events = [e for e in open_outbox(settings).read() if e.get("event_action") == "trigger"]
    rows = [
        {
            "dedup_key": e["dedup_key"],
            "summary": e["payload"]["summary"],
            "severity": e["payload"]["severity"],
            "service": e["payload"].get("component"),
            "class": e["payload"].get("class"),
            "timestamp": e["payload"].get("timestamp"),
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=["dedup_key", "summary", "severity", "service", "class", "timestamp"])


@flow(name="publish", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def publish(config_file: str | None = None, detect_summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refresh the forecast store's actuals, the dashboards (and Grafana's copy) and the HTML report."""
    settings = settings_for_run(config_file)
    store_data = refresh_store(settings)
    dashboards = write_dashboards(settings)
    uploaded = upload_dashboards(settings) if settings.sinks.grafana_url else []
    report = write_report(settings, store_data, detect_summary)
    create_link_artifact(key="foresight-report", link=report.resolve().as_uri(), description="HTML report")
    return {
        "report": str(report),
        "dashboards": dashboards,
        "grafana": uploaded,
        "actual_rows": len(store_data["actuals"]),
    }
