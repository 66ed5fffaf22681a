"""Dashboards: JSON shape, committed files, and every query run on real servers.

Every SQL query of every dashboard runs on a real PostgreSQL forecast store (filled the way the
flows fill it) and returns rows; every PromQL expression of the capacity dashboard runs on a real
Prometheus (Debian package, history backfilled with promtool) and returns the one series it
names. The incidents dashboard's PromQL runs in ``test_pushgateway.py`` against metrics pushed
through a real Pushgateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from sqlalchemy import text

from connectors.sinks.forecast_store import ForecastStore
from connectors.sinks.series_promql import SeriesPromqlTable, series_promql_frame
from dashboards import alerts, capacity, incidents, provisioning, series_units
from dashboards.build import DASHBOARDS, FOLDER, build_all, dashboard_text, write_all
from dashboards.queries import (
    expand_promql,
    expand_sql,
    multi_value_variables,
    panels,
    promql_queries,
    raw_sql,
    sql_queries,
)
from dashboards.targets import POSTGRES_TYPE, PROMETHEUS_TYPE
from foresight.settings import SourceConfig
from support.postgres import temporary_database
from support.prometheus import SyntheticSeries, prometheus

NOW = pd.Timestamp.now(tz="UTC").floor("h")
PROM_IDS = ["checkout/i-01/cpu_pct", "checkout/i-02/cpu_pct", "checkout/i-01/mem_pct"]
OTHER_ID = "cart/i-03/mem_pct"  # from a source without PromQL (e.g. the simulator)
IDS = [*PROM_IDS, OTHER_ID]
SOURCES = [
    SourceConfig(
        name="prom",
        kind="prometheus",
        options={
            "url": "http://prometheus:9090",
            "series": [
                {"name": "cpu_pct", "unit": "percent", "promql": "foresight_sim_cpu_pct"},
                # Not a plain selector: exercises the `and on(...) label_replace(...)` selection.
                {"name": "mem_pct", "unit": "percent", "promql": "100 * foresight_sim_mem_ratio"},
            ],
        },
    ),
    SourceConfig(name="simulator", kind="simulator"),
]
CATALOGUE = pd.DataFrame(
    {
        "unique_id": IDS,
        "source": ["prom", "prom", "prom", "simulator"],
        "metric": ["cpu_pct", "cpu_pct", "mem_pct", "mem_pct"],
        "labels": [
            '{"instance": "i-01", "job": "checkout"}',
            '{"instance": "i-02", "job": "checkout"}',
            '{"instance": "i-01", "job": "checkout"}',
            "{}",
        ],
        "service": ["checkout", "checkout", "checkout", "cart"],
        "resource_id": ["i-01", "i-02", "i-01", "i-03"],
        "instance_type": "m5.large",
        "unit": "percent",
    }
)
WINDOW = (NOW - pd.Timedelta(days=3), NOW + pd.Timedelta(days=3))


@pytest.fixture(scope="module")
def boards() -> dict[str, dict]:
    return build_all()


@pytest.fixture(scope="module")
def board(boards: dict[str, dict]) -> dict:
    return boards[capacity.FILENAME]


def _panels(board: dict) -> list[dict]:
    return [dict(p) for p in panels(board) if p["type"] != "row"]


# -- shape -----------------------------------------------------------------------------------------
def test_capacity_dashboard_identity_and_variables(board: dict) -> None:
    assert board["uid"] == "foresight-capacity" and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == POSTGRES_TYPE
    assert variables["prometheus"]["query"] == PROMETHEUS_TYPE
    assert variables["datasource"]["current"]["value"] == provisioning.STORE_UID
    assert variables["prometheus"]["current"]["value"] == provisioning.PROMETHEUS_UID
    for name in ("service", "metric", "series", "promql"):
        assert variables[name]["datasource"] == {"type": POSTGRES_TYPE, "uid": "${datasource}"}
    assert variables["series"]["multi"] is False  # the hidden promql variable follows one series
    assert variables["promql"]["hide"] == 2 and "FROM series_promql" in variables["promql"]["query"]


def test_every_panel_has_a_datasource_and_distinct_ref_ids(boards: dict[str, dict]) -> None:
    for board in boards.values():
        found = _panels(board)
        assert len({p["id"] for p in found}) == len(found), board["uid"]
        for panel in found:
            assert panel["datasource"]["uid"], panel["title"]
            if panel["type"] == "annolist":
                continue
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert ref_ids and len(set(ref_ids)) == len(ref_ids), panel["title"]
            for target in panel["targets"]:
                kind = target["datasource"]["type"]
                assert kind in (POSTGRES_TYPE, PROMETHEUS_TYPE), panel["title"]
                if panel["datasource"]["uid"] != "-- Mixed --":
                    assert kind == panel["datasource"]["type"], panel["title"]
                if kind == POSTGRES_TYPE:
                    assert target["rawSql"].strip() and target["editorMode"] == "code"
                else:
                    assert target["expr"].strip() and target["datasource"]["uid"] == "${prometheus}"


def test_single_value_variables_are_quoted_in_sql(boards: dict[str, dict]) -> None:
    """Grafana substitutes a single-value variable into SQL unquoted, so the SQL must quote it."""
    for board in boards.values():
        single = {v["name"] for v in board["templating"]["list"]} - multi_value_variables(board)
        for sql in raw_sql(board):
            for name in single:
                for match in re.finditer(rf"\$\{{?{name}\b", sql):
                    assert sql[match.start() - 1] == "'", f"${name} unquoted in: {sql}"


def test_forecast_panel_mixes_prometheus_actuals_with_the_store_band(board: dict) -> None:
    (panel,) = [p for p in _panels(board) if p["type"] == "timeseries"]
    assert panel["datasource"] == {"type": "datasource", "uid": "-- Mixed --"}
    kinds = {t["refId"]: t["datasource"]["type"] for t in panel["targets"]}
    assert kinds == {"A": PROMETHEUS_TYPE, "B": POSTGRES_TYPE, "C": POSTGRES_TYPE, "D": POSTGRES_TYPE,
                     "E": POSTGRES_TYPE}
    assert panel["targets"][0]["expr"] == "${promql:raw}"
    upper = next(o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "upper")
    assert {"id": "custom.fillBelowTo", "value": "lower"} in upper["properties"]
    sql = " ".join(t.get("rawSql", "") for t in panel["targets"])
    assert "yhat_lower" in sql and "yhat_upper" in sql and "FROM actuals" in sql


def test_capacity_dashboard_has_rightsizing_and_savings(board: dict) -> None:
    by_title = {p["title"]: p for p in _panels(board)}
    assert "FROM rightsizing" in by_title["Rightsizing"]["targets"][0]["rawSql"]
    net = by_title["Net cost change per month"]["targets"][0]["rawSql"]
    assert "SUM(COALESCE(r.monthly_cost_change, -r.monthly_savings))" in net and "> 0" not in net
    assert "FROM scaling_actions" in by_title["Scheduled scaling actions"]["targets"][0]["rawSql"]


def test_incidents_dashboard_reads_pushed_metrics_and_annotations(boards: dict[str, dict]) -> None:
    board = boards[incidents.FILENAME]
    assert board["uid"] == "foresight-incidents"
    (annotation,) = board["annotations"]["list"]
    assert annotation["target"]["tags"] == ["foresight", "incident"] and annotation["enable"] is True
    exprs = " ".join(t["expr"] for p in _panels(board) for t in p.get("targets") or [])
    for metric in ("foresight_incident_open", "foresight_failure_risk", "foresight_anomaly_score"):
        assert metric in exprs
    assert {p["type"] for p in _panels(board)} >= {"state-timeline", "timeseries", "annolist"}


def test_committed_files_match_the_builder(tmp_path: Path, boards: dict[str, dict]) -> None:
    for name, board in boards.items():
        committed = FOLDER / name
        assert committed.exists(), "run `python -m dashboards.build` to generate the dashboards"
        assert committed.read_text() == dashboard_text(board), (
            f"{name} is stale: run python -m dashboards.build"
        )
    generated = write_all(tmp_path)
    for path in generated:
        committed = FOLDER / path.relative_to(tmp_path)
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run python -m dashboards.build"
        )
    assert len(generated) == len(DASHBOARDS) + 3  # datasources, dashboard provider, alert rules


def test_provisioning_matches_the_dashboards_datasources() -> None:
    sources = yaml.safe_load((FOLDER / "provisioning/datasources/foresight.yaml").read_text())["datasources"]
    by_uid = {s["uid"]: s for s in sources}
    assert by_uid[provisioning.STORE_UID]["type"] == POSTGRES_TYPE
    assert by_uid[provisioning.STORE_UID]["secureJsonData"] == {"password": "${FORESIGHT_STORE_PASSWORD}"}
    assert by_uid[provisioning.PROMETHEUS_UID]["type"] == PROMETHEUS_TYPE
    provider = yaml.safe_load((FOLDER / "provisioning/dashboards/foresight.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == provisioning.DASHBOARDS_PATH


# -- expansion (pure) ------------------------------------------------------------------------------
def test_expand_sql_macros_and_variables() -> None:
    start, end = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC")
    sql = (
        "SELECT 1 FROM t WHERE $__timeFilter(ds) AND s IN ($service) AND m = ${metric} AND a > $__timeFrom()"
    )
    out = expand_sql(sql, {"service": ["a", "o'b"], "metric": "cpu"}, start, end)
    assert out == (
        "SELECT 1 FROM t WHERE ds BETWEEN '2026-03-01T00:00:00Z' AND '2026-03-02T00:00:00Z' "
        "AND s IN ('a','o''b') AND m = 'cpu' AND a > '2026-03-01T00:00:00Z'"
    )
    single = expand_sql(
        "SELECT 1 WHERE id = '$series' AND s IN ($service)",
        {"series": "o'k", "service": ["a"]},
        start,
        end,
        multi={"service"},
    )
    assert single == "SELECT 1 WHERE id = 'o''k' AND s IN ('a')"  # Grafana leaves single values unquoted
    with pytest.raises(ValueError, match="unsupported Grafana macro"):
        expand_sql("SELECT $__timeGroup(ds, 1h)", {}, start, end)
    with pytest.raises(KeyError, match="service"):
        expand_sql("SELECT 1 WHERE s IN ($service)", {}, start, end)


def test_expand_promql_like_grafana() -> None:
    expr = 'rate(x{service=~"$service"}[$__rate_interval]) and ${q:raw}'
    out = expand_promql(
        expr,
        {"service": ["a.b", "c"], "q": 'y{job="j"}'},
        multi={"service"},
        builtins={"rate_interval": "2m", "interval": "15s", "range": "1h"},
    )
    assert out == 'rate(x{service=~"(a\\.b|c)"}[2m]) and y{job="j"}'
    assert expand_promql('x{s=~"$s"}', {"s": ["only"]}, multi={"s"}) == 'x{s=~"only"}'
    with pytest.raises(ValueError, match="unsupported Grafana built-in"):
        expand_promql("x[$__range_s]", {})


# -- real PostgreSQL -------------------------------------------------------------------------------
def _fill(store: ForecastStore) -> pd.DataFrame:
    """A small run: series, actuals, forecasts, plan, rightsizing, scaling actions, series PromQL."""
    rng = np.random.default_rng(3)
    n = len(IDS)
    past = pd.date_range(NOW - pd.Timedelta(hours=48), periods=48, freq="h")
    future = pd.date_range(NOW, periods=48, freq="h")
    store.write_series(CATALOGUE)
    store.write_actuals(
        pd.DataFrame(
            {"unique_id": np.repeat(IDS, 48), "ds": np.tile(past, n), "y": rng.uniform(20, 70, 48 * n)}
        )
    )
    yhat = rng.uniform(30, 80, 48 * n)
    forecasts = pd.DataFrame(
        {
            "unique_id": np.repeat(IDS, 48),
            "ds": np.tile(future, n),
            "yhat": yhat,
            "yhat_lower": yhat - 5,
            "yhat_upper": yhat + 5,
        }
    )
    store.write_forecasts(forecasts, model_name="seasonal_naive", model_version="1", run_id="r1", level=80)
    when = NOW + pd.Timedelta(days=1)
    dates = pd.Series([when, pd.NaT, when, when + pd.Timedelta(days=2)], dtype="datetime64[us, UTC]")
    plan = CATALOGUE[["unique_id", "service", "resource_id", "metric"]].assign(
        threshold=[80.0, 80.0, 90.0, 90.0],
        current=50.0,
        peak_p50=70.0,
        peak_p90=82.0,
        days_to_threshold=[1.0, np.nan, 1.0, 3.0],
        days_to_threshold_earliest=[0.5, 2.0, 0.5, 1.0],
        crossing_probability=[0.6, 0.2, 0.9, 0.55],
        threshold_date=dates,
        threshold_date_earliest=dates,
        threshold_date_latest=dates,
        capacity_needed=[1.2, 0.9, 1.1, 1.0],
    )
    store.write_capacity_plan(plan, model_version="1", run_id="r1")
    store.write_rightsizing(
        pd.DataFrame(
            {
                "service": ["checkout", "cart"],
                "instance_count": [2, 2],
                "current_instance_type": ["m5.2xlarge", "m5.large"],
                "recommended_instance_type": ["m5.xlarge", "m5.large"],
                "current_monthly_cost": [560.64, 140.16],
                "recommended_monthly_cost": [280.32, 140.16],
                "monthly_savings": [280.32, 0.0],
                "demand_vcpu": [3.1, 1.0],
                "demand_memory_gib": [9.0, 4.0],
                "peak_upper_utilisation": [77.5, 50.0],
                "exceed_probability": [0.04, 0.0],
                "current_exceed_probability": [0.0, 0.0],
                "action": ["downsize", "keep"],
                "reason": ["p90 peak fits m5.xlarge", "already right-sized"],
                "price_source": "bundled",
            }
        ),
        model_version="1",
        run_id="r1",
    )
    store.write_scaling_actions(
        pd.DataFrame(
            {
                "service": ["checkout"],
                "asg_name": ["checkout-asg"],
                "action_name": ["foresight-scale-out-1"],
                "start_time": pd.Series([NOW + pd.Timedelta(hours=5)], dtype="datetime64[us, UTC]"),
                "desired_capacity": [4],
                "min_size": [2],
                "max_size": [6],
            }
        ),
        run_id="r1",
    )
    table = SeriesPromqlTable(store.engine)
    table.create()
    promql = series_promql_frame(CATALOGUE, SOURCES)
    table.write(promql)
    return promql


@pytest.fixture(scope="module")
def postgres_store() -> Iterator[ForecastStore]:
    """A forecast store in a fresh, uniquely named PostgreSQL database, filled with a small run."""
    with temporary_database() as url:
        store = ForecastStore(url)
        try:
            store.create_schema()
            _fill(store)
            yield store
        finally:
            store.dispose()


def _sample(series: str) -> dict[str, list[str]]:
    return {
        "service": ["checkout", "cart"],
        "metric": ["cpu_pct", "mem_pct"],
        "series": [series],
        "promql": ["unused"],
    }


@pytest.mark.integration
def test_every_sql_query_runs_on_postgresql_and_returns_rows(
    boards: dict[str, dict], board: dict, postgres_store: ForecastStore
) -> None:
    """Each query returns rows for a Prometheus-sourced series or for another one (the store's
    actuals and the PromQL lookup are each other's complement); none fails."""
    empty: dict[str, set[str]] = {}
    with postgres_store.engine.connect() as conn:
        for series in (PROM_IDS[0], OTHER_ID):
            for each in boards.values():
                for sql in sql_queries(
                    each, variables=_sample(series), time_from=WINDOW[0], time_to=WINDOW[1]
                ):
                    assert "$" not in sql, sql
                    if not conn.execute(text(sql)).all():
                        empty.setdefault(sql, set()).add(series)
        actuals_sql = expand_sql(
            capacity.STORE_ACTUALS_SQL, _sample(OTHER_ID), *WINDOW, multi=multi_value_variables(board)
        )
        assert len(conn.execute(text(actuals_sql)).all()) == 48
        promql_var = expand_sql(
            capacity.VARIABLE_QUERIES["promql"],
            _sample(PROM_IDS[0]),
            *WINDOW,
            multi=multi_value_variables(board),
        )
        assert (
            conn.execute(text(promql_var)).scalar_one()
            == 'foresight_sim_cpu_pct{instance="i-01",job="checkout"}'
        )
        fallback = expand_sql(
            capacity.VARIABLE_QUERIES["promql"],
            _sample(OTHER_ID),
            *WINDOW,
            multi=multi_value_variables(board),
        )
        assert conn.execute(text(fallback)).scalar_one() == capacity.NO_PROMQL
        runway = conn.execute(
            text(
                expand_sql(
                    capacity.RUNWAY_SQL, _sample(OTHER_ID), *WINDOW, multi=multi_value_variables(board)
                )
            )
        ).all()
    assert [q for q, series in empty.items() if len(series) == 2] == []
    # The store's actuals are drawn only for series without PromQL, and the other way round.
    assert empty == {actuals_sql.replace(OTHER_ID, PROM_IDS[0]): {PROM_IDS[0]}}
    # Runway table: soonest first, a series that never reaches its threshold last.
    assert [r.series for r in runway][-1] == "checkout/i-02/cpu_pct"
    assert [r.days_to_threshold for r in runway][:3] == [1.0, 1.0, 3.0]
    # Equal runways: the likelier crossing first; every row shows its earliest crossing and chance.
    assert [r.series for r in runway][:2] == ["checkout/i-01/mem_pct", "checkout/i-01/cpu_pct"]
    assert [(r.days_to_threshold_earliest, r.crossing_probability) for r in runway][-1] == (2.0, 0.2)


# -- real Prometheus -------------------------------------------------------------------------------
def _synthetic() -> list[SyntheticSeries]:
    ds = pd.date_range(NOW - pd.Timedelta(hours=6), NOW, freq="1min")
    base = np.linspace(0, 1, len(ds))
    out = []
    for i, instance in enumerate(["i-01", "i-02"]):
        labels = {"job": "checkout", "instance": instance, "instance_type": "m5.large"}
        out.append(SyntheticSeries("foresight_sim_cpu_pct", labels, ds, 40 + 10 * i + 5 * base))
        out.append(SyntheticSeries("foresight_sim_mem_ratio", labels, ds, 0.5 + 0.1 * i + 0.01 * base))
    return out


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus(tmp_path_factory.mktemp("prometheus"), series=_synthetic(), lookback="5m") as server:
        yield server.url


def _query_range(url: str, expr: str) -> list[dict]:
    answer = requests.post(
        f"{url}/api/v1/query_range",
        timeout=30,
        data={
            "query": expr,
            "start": (NOW - pd.Timedelta(hours=2)).timestamp(),
            "end": NOW.timestamp(),
            "step": 60,
        },
    )
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


@pytest.mark.integration
def test_capacity_promql_returns_exactly_the_selected_series(board: dict, prometheus_url: str) -> None:
    """The dashboard's actuals target, expanded with each stored PromQL, returns that one series
    with its own values from a real Prometheus; the fallback expression returns nothing."""
    stored = series_promql_frame(CATALOGUE, SOURCES).set_index("unique_id")["promql"]
    assert sorted(stored.index) == sorted(PROM_IDS)
    expected = {
        "checkout/i-01/cpu_pct": ("foresight_sim_cpu_pct", "i-01", 1.0),
        "checkout/i-02/cpu_pct": ("foresight_sim_cpu_pct", "i-02", 1.0),
        "checkout/i-01/mem_pct": ("foresight_sim_mem_ratio", "i-01", 100.0),
    }
    for uid, promql in stored.items():
        (query,) = promql_queries(board, variables={**_sample(uid), "promql": [promql]})
        assert query.expr == promql and not query.instant
        result = _query_range(prometheus_url, query.expr)
        assert len(result) == 1, f"{uid}: {query.expr} -> {len(result)} series"
        metric, instance, scale = expected[uid]
        assert result[0]["metric"]["instance"] == instance and result[0]["metric"]["job"] == "checkout"
        values = np.array([float(v) for _, v in result[0]["values"]])
        raw = _query_range(prometheus_url, f'{metric}{{instance="{instance}"}}')[0]["values"]
        assert len(values) > 100
        np.testing.assert_allclose(values, scale * np.array([float(v) for _, v in raw]))
    (fallback,) = promql_queries(board, variables={**_sample(OTHER_ID), "promql": [capacity.NO_PROMQL]})
    assert _query_range(prometheus_url, fallback.expr) == []


# -- alert rules -----------------------------------------------------------------------------------
def test_alert_rules_follow_grafanas_file_provisioning_format() -> None:
    document = yaml.safe_load((FOLDER / "provisioning" / alerts.ALERTING_FILE).read_text())
    assert document == alerts.alert_rules()  # the committed file is the generated one
    assert document["apiVersion"] == 1
    (group,) = document["groups"]
    assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
    assert group["folder"] == provisioning.FOLDER and re.fullmatch(r"\d+[smh]", group["interval"])
    rules = group["rules"]
    assert len({r["uid"] for r in rules}) == len(rules) == 3
    for rule in rules:
        assert {"uid", "title", "condition", "data", "noDataState", "execErrState", "for", "labels",
                "annotations"} <= set(rule), rule["title"]
        assert rule["noDataState"] in ("OK", "NoData", "Alerting") and rule["execErrState"] in ("Error", "Alerting", "OK")
        ref_ids = [d["refId"] for d in rule["data"]]
        assert rule["condition"] in ref_ids and len(set(ref_ids)) == len(ref_ids)
        for step in rule["data"]:
            assert step["model"]["refId"] == step["refId"] and "from" in step["relativeTimeRange"]
            assert step["datasourceUid"] in (provisioning.STORE_UID, provisioning.PROMETHEUS_UID, "__expr__")
            if step["datasourceUid"] == "__expr__":  # expressions read refIds defined before them
                assert step["model"]["expression"] in ref_ids[: ref_ids.index(step["refId"])]
    by_uid = {r["uid"]: r for r in rules}
    condition = by_uid["foresight-runway-short"]["data"][-1]["model"]["conditions"][0]["evaluator"]
    assert condition == {"type": "lt", "params": [7]}
    assert by_uid["foresight-pipeline-stale"]["noDataState"] == "Alerting"  # never ran: alert too


def test_forecast_panel_carries_the_series_unit_and_model(board: dict) -> None:
    (panel,) = [p for p in _panels(board) if p["type"] == "timeseries"]
    (transformation,) = panel["transformations"]
    assert transformation["id"] == "configFromData" and transformation["options"]["configRefId"] == "E"
    assert {m["handlerKey"] for m in transformation["options"]["mappings"]} == {"unit", "min", "max"}
    assert "$model" in panel["title"]
    runway = next(p for p in _panels(board) if p["title"] == "Capacity runway")
    assert "model_name" in runway["targets"][0]["rawSql"]


@pytest.mark.integration
def test_unit_and_model_queries_return_grafana_units_from_the_store(board: dict, postgres_store: ForecastStore) -> None:
    multi = multi_value_variables(board)
    with postgres_store.engine.connect() as conn:
        unit = conn.execute(text(expand_sql(series_units.UNIT_SQL, _sample(OTHER_ID), *WINDOW, multi=multi))).one()
        model = conn.execute(
            text(expand_sql(capacity.VARIABLE_QUERIES["model"], _sample(OTHER_ID), *WINDOW, multi=multi))
        ).scalar_one()
        runway = conn.execute(text(expand_sql(capacity.RUNWAY_SQL, _sample(OTHER_ID), *WINDOW, multi=multi))).all()
    assert (unit.unit, unit.min, unit.max) == ("percent", 0, 100)
    assert model == "seasonal_naive" and {r.model for r in runway} == {"seasonal_naive"}


@pytest.mark.integration
def test_runway_alert_sql_runs_on_postgresql_and_finds_the_short_runways(postgres_store: ForecastStore) -> None:
    with postgres_store.engine.connect() as conn:
        rows = conn.execute(text(alerts.RUNWAY_SQL)).all()
    # Grafana: text columns become labels, the numeric one the value the threshold reads.
    assert [(r.series, r.days) for r in rows] == [
        ("checkout/i-01/cpu_pct", 1.0), ("checkout/i-01/mem_pct", 1.0), (OTHER_ID, 3.0)]
    assert all(isinstance(r.service, str) and isinstance(r.metric, str) for r in rows)


@pytest.fixture(scope="module")
def alert_prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus holding what the detect flow pushes: one service with an open critical incident,
    one without, and a last successful run seven hours ago."""
    ds = pd.date_range(NOW - pd.Timedelta(hours=1), NOW, freq="1min")
    last_run = (NOW - pd.Timedelta(hours=7)).timestamp()
    series = [
        SyntheticSeries("foresight_incident_open_critical", {"service": "cart"}, ds, np.ones(len(ds))),
        SyntheticSeries("foresight_incident_open_critical", {"service": "search"}, ds, np.zeros(len(ds))),
        SyntheticSeries("foresight_detect_last_success_timestamp_seconds", {}, ds, np.full(len(ds), last_run)),
    ]
    with prometheus(tmp_path_factory.mktemp("alert-prometheus"), series=series, lookback="5m") as server:
        yield server.url


def _instant(url: str, expr: str, at: pd.Timestamp) -> list[dict]:
    answer = requests.post(f"{url}/api/v1/query", timeout=30, data={"query": expr, "time": at.timestamp()})
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


@pytest.mark.integration
def test_alert_promql_runs_on_prometheus_and_crosses_its_threshold(alert_prometheus_url: str) -> None:
    critical = _instant(alert_prometheus_url, alerts.CRITICAL_INCIDENTS_PROMQL, NOW)
    assert {r["metric"]["service"]: float(r["value"][1]) for r in critical} == {"cart": 1.0, "search": 0.0}
    (stale,) = _instant(alert_prometheus_url, alerts.SINCE_LAST_RUN_PROMQL, NOW)
    assert float(stale["value"][1]) == pytest.approx(7 * 3600, abs=1) and 7 * 3600 > alerts.STALE_AFTER_SECONDS
