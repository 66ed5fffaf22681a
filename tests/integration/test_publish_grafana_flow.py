"""From a real Prometheus to Grafana through the flows: ingest, then publish.

Series ingested from a real Prometheus (promtool backfill) get their PromQL stored by the
publish flow in a real PostgreSQL forecast store; the capacity dashboard's hidden ``promql``
variable, run as Grafana would run it, yields an expression that returns exactly that series
from the same Prometheus. The publish flow also uploads both dashboards to a (fake) Grafana.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from sqlalchemy import create_engine, text

from dashboards import capacity
from dashboards.build import build_all
from dashboards.queries import expand_sql, multi_value_variables, promql_queries
from foresight.settings import load_settings
from support.fake_grafana import FakeGrafana
from support.postgres import temporary_database
from support.prometheus import SyntheticSeries, prometheus

pytestmark = pytest.mark.integration

END = pd.Timestamp.now(tz="UTC").floor("5min")
INSTANCES = ("i-01", "i-02")


def _series() -> list[SyntheticSeries]:
    ds = pd.date_range(end=END, periods=2 * 288, freq="5min")
    hours = np.arange(len(ds)) / 12
    return [
        SyntheticSeries(
            "foresight_sim_cpu_pct",
            {"job": "checkout", "instance": instance, "instance_type": "m5.large"},
            ds,
            40 + 10 * k + 5 * np.sin(2 * np.pi * hours / 24),
        )
        for k, instance in enumerate(INSTANCES)
    ]


def _uid(instance: str) -> str:
    """The Prometheus source's id: labels beyond job/instance become part of the metric name."""
    return f"checkout/{instance}/cpu_pct{{instance_type=m5.large}}"


@pytest.fixture
def prom_url(tmp_path: Path) -> Iterator[str]:
    with prometheus(tmp_path / "prometheus", series=_series(), lookback="10m") as server:
        yield server.url


def test_publish_stores_promql_that_grafana_runs_against_prometheus(
    prefect_harness, foresight_home: Path, prom_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ingest import ingest
    from flows.publish import publish

    monkeypatch.setenv(
        "FORESIGHT_SOURCES",
        json.dumps(
            [
                {
                    "name": "prom",
                    "kind": "prometheus",
                    "initial_lookback": "P3D",
                    "options": {
                        "url": prom_url,
                        "step": "5m",
                        "series": [{"name": "cpu_pct", "unit": "percent", "promql": "foresight_sim_cpu_pct"}],
                    },
                }
            ]
        ),
    )
    with temporary_database() as store_url, FakeGrafana(token="tok", folders={"ops"}) as grafana:
        monkeypatch.setenv("FORESIGHT_SINKS__FORECAST_STORE_URL", store_url)
        monkeypatch.setenv("FORESIGHT_SINKS__DASHBOARDS_DIR", str(foresight_home / "dashboards"))
        monkeypatch.setenv("FORESIGHT_SINKS__GRAFANA_URL", grafana.url)
        monkeypatch.setenv("FORESIGHT_SINKS__GRAFANA_TOKEN", "tok")
        monkeypatch.setenv("FORESIGHT_SINKS__GRAFANA_FOLDER_UID", "ops")
        [ingested] = ingest()
        assert ingested["passed"]
        published = publish()

        assert [u["uid"] for u in published["grafana"]] == [
            "foresight-capacity",
            "foresight-incidents",
            "foresight-realtime",
            "foresight-health",
        ]
        assert {d["folderUid"] for d in grafana.dashboards.values()} == {"ops"}
        board = build_all()[capacity.FILENAME]
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn:
                stored = dict(conn.execute(text("SELECT unique_id, promql FROM series_promql")).all())
                assert sorted(stored) == [_uid(i) for i in INSTANCES]
                for instance in INSTANCES:
                    uid = _uid(instance)
                    variables = {"series": [uid]}
                    lookup = expand_sql(
                        capacity.VARIABLE_QUERIES["promql"],
                        variables,
                        END,
                        END,
                        multi=multi_value_variables(board),
                    )
                    promql = conn.execute(text(lookup)).scalar_one()
                    (query,) = promql_queries(board, variables={"promql": [promql], "series": [uid]})
                    answer = requests.post(
                        f"{prom_url}/api/v1/query_range",
                        data={
                            "query": query.expr,
                            "start": (END - pd.Timedelta("6h")).timestamp(),
                            "end": END.timestamp(),
                            "step": 300,
                        },
                        timeout=30,
                    ).json()["data"]["result"]
                    assert [r["metric"]["instance"] for r in answer] == [instance], query.expr
                    assert len(answer[0]["values"]) == 73
        finally:
            engine.dispose()


def test_an_unreachable_grafana_is_reported_not_fatal(prefect_harness, tmp_path: Path) -> None:
    from prefect import flow

    from flows.detection_sinks import annotate_incidents, sink_outcome

    start = pd.Series([pd.Timestamp("2026-03-01T10:00", tz="UTC")], dtype="datetime64[us, UTC]")
    incidents = pd.DataFrame(
        {
            "incident_id": ["inc-1"],
            "service": ["checkout"],
            "category": ["disk"],
            "severity": ["error"],
            "start": start,
            "end": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
        }
    )
    settings = load_settings(home=tmp_path, sinks={"grafana_url": "http://127.0.0.1:9", "grafana_token": "t"})

    @flow
    def detect_like() -> dict:
        state = annotate_incidents.with_options(retries=0)(settings, incidents, return_state=True)
        return sink_outcome(state)

    outcome = detect_like()
    assert set(outcome) == {"failed"} and "Connection" in outcome["failed"]


def test_a_malformed_grafana_answer_fails_the_upload_with_one_line(tmp_path: Path) -> None:
    """A 200 without ``uid`` (a broken Grafana, or a proxy's own JSON) once crashed publish with
    ``KeyError: 'uid'``; now the upload task fails with a GrafanaError naming the endpoint."""
    from connectors.sinks.grafana import GrafanaError
    from flows.publish import upload_dashboards

    with FakeGrafana(token="tok") as grafana:
        grafana.misbehave("POST", "/api/dashboards/db", 200, '{"status": "success", "version": 3}')
        settings = load_settings(home=tmp_path, sinks={"grafana_url": grafana.url, "grafana_token": "tok"})
        with pytest.raises(GrafanaError) as caught:
            upload_dashboards.fn(settings)
    assert str(caught.value).startswith(
        "Grafana POST /api/dashboards/db answered HTTP 200: answer without 'uid'"
    )
    assert "\n" not in str(caught.value) and not caught.value.retryable
