"""Capacity dashboard: JSON shape, macro expansion, and every SQL query run on real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from connectors.forecast_store import ForecastStore
from dashboards.build import (
    DATASOURCE_TYPE,
    OUTPUT,
    build_capacity_dashboard,
    expand_sql,
    sql_queries,
)
from support.postgres import temporary_database

NOW = pd.Timestamp("2026-03-01", tz="UTC")
IDS = ["checkout/i-01/cpu_pct", "checkout/i-02/cpu_pct", "cart/i-03/mem_pct"]


@pytest.fixture(scope="module")
def board() -> dict:
    return build_capacity_dashboard()


def _panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return [p for p in out if p["type"] != "row"]


def test_dashboard_identity_and_variables(board: dict) -> None:
    assert board["uid"] == "foresight-capacity" and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == DATASOURCE_TYPE
    for name in ("service", "metric", "series"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
        assert "FROM series" in variables[name]["query"]


def test_every_panel_has_datasource_and_distinct_ref_ids(board: dict) -> None:
    panels = _panels(board)
    assert {p["type"] for p in panels} == {"timeseries", "table", "bargauge"}
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["type"] == DATASOURCE_TYPE, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and all(ref_ids) and len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
            assert target["editorMode"] == "code" and target["rawQuery"] is True
            assert target["format"] in ("time_series", "table") and target["rawSql"].strip()


def test_forecast_panel_draws_the_band_and_repeats_per_series(board: dict) -> None:
    (panel,) = [p for p in _panels(board) if p["type"] == "timeseries"]
    assert panel["repeat"] == "series"
    upper = next(o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "upper")
    assert {"id": "custom.fillBelowTo", "value": "lower"} in upper["properties"]
    sql = " ".join(t["rawSql"] for t in panel["targets"])
    assert "yhat_lower" in sql and "yhat_upper" in sql and "FROM actuals" in sql


def test_committed_json_matches_the_builder(board: dict) -> None:
    assert OUTPUT.exists(), "run `python -m dashboards.build` to generate the dashboard JSON"
    assert json.loads(OUTPUT.read_text()) == board


def test_expand_sql_macros_and_variables() -> None:
    start, end = NOW, NOW + pd.Timedelta(days=1)
    sql = "SELECT 1 FROM t WHERE $__timeFilter(ds) AND s IN ($service) AND m = ${metric} AND a > $__timeFrom()"
    out = expand_sql(sql, {"service": ["a", "o'b"], "metric": "cpu"}, start, end)
    assert out == (
        "SELECT 1 FROM t WHERE ds BETWEEN '2026-03-01T00:00:00Z' AND '2026-03-02T00:00:00Z' "
        "AND s IN ('a','o''b') AND m = 'cpu' AND a > '2026-03-01T00:00:00Z'"
    )
    with pytest.raises(ValueError, match="unsupported Grafana macro"):
        expand_sql("SELECT $__timeGroup(ds, 1h)", {}, start, end)
    with pytest.raises(KeyError, match="service"):
        expand_sql("SELECT 1 WHERE s IN ($service)", {}, start, end)


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


def _fill(store: ForecastStore) -> None:
    rng = np.random.default_rng(3)
    past = pd.date_range(NOW - pd.Timedelta(hours=48), periods=48, freq="h")
    future = pd.date_range(NOW, periods=48, freq="h")
    store.write_series(
        pd.DataFrame(
            {
                "unique_id": IDS,
                "service": ["checkout", "checkout", "cart"],
                "resource_id": ["i-01", "i-02", "i-03"],
                "metric": ["cpu_pct", "cpu_pct", "mem_pct"],
                "unit": "percent",
            }
        )
    )
    store.write_actuals(
        pd.DataFrame({"unique_id": np.repeat(IDS, 48), "ds": np.tile(past, 3), "y": rng.uniform(20, 70, 144)})
    )
    yhat = rng.uniform(30, 80, 144)
    forecasts = pd.DataFrame(
        {"unique_id": np.repeat(IDS, 48), "ds": np.tile(future, 3), "yhat": yhat,
         "yhat_lower": yhat - 5, "yhat_upper": yhat + 5}
    )
    store.write_forecasts(forecasts, model_name="seasonal_naive", model_version="1", run_id="r1", level=80)
    when = NOW + pd.Timedelta(days=1)
    plan = pd.DataFrame(
        {
            "unique_id": IDS, "service": ["checkout", "checkout", "cart"], "resource_id": ["i-01", "i-02", "i-03"],
            "metric": ["cpu_pct", "cpu_pct", "mem_pct"], "threshold": [80.0, 80.0, 90.0], "current": 50.0,
            "peak_p50": 70.0, "peak_p90": 82.0, "days_to_threshold": [1.0, np.nan, 3.0],
            "threshold_date": pd.Series([when, pd.NaT, when + pd.Timedelta(days=2)], dtype="datetime64[us, UTC]"),
            "threshold_date_earliest": pd.Series([when, pd.NaT, when], dtype="datetime64[us, UTC]"),
            "threshold_date_latest": pd.Series([when, pd.NaT, when], dtype="datetime64[us, UTC]"),
            "capacity_needed": [0.25, 0.0, 0.1],
        }
    )
    store.write_capacity_plan(plan, model_version="1", run_id="r1")


@pytest.mark.integration
def test_every_dashboard_query_runs_on_postgresql_and_returns_rows(board: dict, postgres_store: ForecastStore) -> None:
    queries = sql_queries(
        board,
        variables={"service": ["checkout"], "metric": ["cpu_pct"], "series": ["checkout/i-01/cpu_pct"]},
        time_from=NOW - pd.Timedelta(days=3),
        time_to=NOW + pd.Timedelta(days=3),
    )
    panel_sql = [t["rawSql"] for p in _panels(board) for t in p["targets"]]
    assert len(queries) == len(panel_sql) + 3  # every target plus the service/metric/series variables
    with postgres_store.engine.connect() as conn:
        for sql in queries:
            assert "$" not in sql, sql
            rows = conn.execute(text(sql)).all()
            assert rows, f"no rows from:\n{sql}"
        runway_sql = next(q for q in queries if "ORDER BY p.days_to_threshold" in q)
        runway = conn.execute(text(runway_sql)).all()
    # Runway table: soonest first, a series that never reaches its threshold last.
    assert [r.series for r in runway] == ["checkout/i-01/cpu_pct", "checkout/i-02/cpu_pct"]
