"""The publish flow's Grafana steps: files written, dashboards uploaded, series PromQL stored."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from connectors.sinks.forecast_store import ForecastStore
from connectors.sinks.series_promql import SeriesPromqlTable
from flows.publish import _write_series_promql, upload_dashboards, write_dashboards
from foresight.settings import load_settings
from support.fake_grafana import FakeGrafana


def test_write_dashboards_writes_every_dashboard_and_the_provisioning(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", sinks={"dashboards_dir": tmp_path / "out"})
    paths = [Path(p) for p in write_dashboards.fn(settings)]
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in paths)
    assert names == [
        "foresight-capacity.json",
        "foresight-health.json",
        "foresight-incidents.json",
        "foresight-realtime.json",
        "provisioning/alerting/foresight.yaml",
        "provisioning/dashboards/foresight.yaml",
        "provisioning/datasources/foresight.yaml",
    ]
    assert json.loads(paths[0].read_text())["uid"] == "foresight-capacity"


def test_upload_dashboards_puts_every_dashboard_in_the_configured_folder(tmp_path: Path) -> None:
    with FakeGrafana(token="tok") as grafana:
        settings = load_settings(
            home=tmp_path,
            sinks={"grafana_url": grafana.url, "grafana_token": "tok", "grafana_folder_uid": "foresight"},
        )
        uploads = upload_dashboards.fn(settings)
    assert [u["uid"] for u in uploads] == ["foresight-capacity", "foresight-incidents", "foresight-realtime",
                                           "foresight-health"]
    assert {uid: d["folderUid"] for uid, d in grafana.dashboards.items()} == {
        "foresight-capacity": "foresight",
        "foresight-incidents": "foresight",
        "foresight-realtime": "foresight",
        "foresight-health": "foresight",
    }


def test_upload_dashboards_needs_a_token(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, sinks={"grafana_url": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match="grafana_token"):
        upload_dashboards.fn(settings)


def test_series_promql_is_stored_for_prometheus_series(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        sources=[
            {
                "name": "prom",
                "kind": "prometheus",
                "options": {
                    "series": [{"name": "cpu_pct", "unit": "percent", "promql": "foresight_sim_cpu_pct"}]
                },
            }
        ],
    )
    store = ForecastStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    catalogue = pd.DataFrame(
        {
            "unique_id": ["checkout/i-01/cpu_pct"],
            "source": ["prom"],
            "metric": ["cpu_pct"],
            "labels": ['{"instance": "i-01", "job": "checkout"}'],
        }
    )
    _write_series_promql(settings, store, catalogue)
    assert SeriesPromqlTable(store.engine).read()["promql"].tolist() == [
        'foresight_sim_cpu_pct{instance="i-01",job="checkout"}'
    ]


def test_detect_sinks_skip_when_not_configured(tmp_path: Path) -> None:
    from flows.detection_sinks import annotate_incidents, push_detect_metrics

    settings = load_settings(home=tmp_path)
    assert "grafana_url" in annotate_incidents.fn(settings, pd.DataFrame())["skipped"]
    assert (
        "pushgateway_url"
        in push_detect_metrics.fn(settings, pd.DataFrame(), None, None, pd.DataFrame())["skipped"]
    )


def test_annotate_incidents_task_writes_each_incident_once(tmp_path: Path) -> None:
    from flows.detection_sinks import annotate_incidents

    start = pd.Series([pd.Timestamp("2026-03-01T10:00", tz="UTC")], dtype="datetime64[us, UTC]")
    incidents = pd.DataFrame(
        {
            "incident_id": ["inc-1"],
            "service": ["checkout"],
            "category": ["disk"],
            "severity": ["error"],
            "start": start,
            "end": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
            "evidence": [""],
        }
    )
    with FakeGrafana(token="tok") as grafana:
        settings = load_settings(home=tmp_path, sinks={"grafana_url": grafana.url, "grafana_token": "tok"})
        assert annotate_incidents.fn(settings, incidents) == {
            "created": 1,
            "updated": 0,
            "unchanged": 0,
            "failed": {},
        }
        assert annotate_incidents.fn(settings, incidents) == {
            "created": 0,
            "updated": 0,
            "unchanged": 1,
            "failed": {},
        }
    assert len(grafana.annotations) == 1
