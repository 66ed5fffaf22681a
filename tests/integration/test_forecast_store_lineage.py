"""The model behind each stored forecast series, the plan's new columns, and the migration that
adds columns to a store an older Foresight created: on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import MetaData, create_engine, inspect

import connectors.sinks.forecast_store_schema as schema_module
from connectors.sinks.forecast_store import ForecastStore
from support.postgres import temporary_database

START = pd.Timestamp("2026-03-01", tz="UTC")
CREATED = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
# Columns added after the first release (nullable, so an old store can take them in place).
NEW_COLUMNS = {"forecasts": {"registered_model"},
               "capacity_plan": {"target_utilisation", "start_jump", "start_noise", "start_warning",
                                 "days_to_threshold_earliest", "crossing_probability"},
               "rightsizing": {"monthly_cost_change", "sized_instance_type"}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'forecasts.db'}"
    else:
        with temporary_database() as pg_url:
            yield pg_url


def _forecast(models: dict[str, str], h: int = 6) -> pd.DataFrame:
    ids = list(models)
    yhat = np.linspace(10, 90, len(ids) * h)
    return pd.DataFrame({
        "unique_id": np.repeat(ids, h), "ds": np.tile(pd.date_range(START, periods=h, freq="h"), len(ids)),
        "yhat": yhat, "yhat_lower": yhat - 5, "yhat_upper": yhat + 5,
        "model_name": np.repeat([models[i] for i in ids], h),
    })


def _old_schema(url: str) -> None:
    """The tables as an older Foresight created them: without the columns added since."""
    old = MetaData()
    for table in schema_module.metadata.tables.values():
        copy = table.to_metadata(old)
        for name in NEW_COLUMNS.get(table.name, ()):
            copy._columns.remove(copy.c[name])  # noqa: SLF001 - building a legacy table on purpose
    engine = create_engine(url)
    try:
        old.create_all(engine)
    finally:
        engine.dispose()


def test_the_model_that_made_each_series_is_stored_and_read_back(url: str) -> None:
    store = ForecastStore(url, clock=lambda: CREATED)
    try:
        store.create_schema()
        made = {"cart/i-1/cpu_pct": "mstl", "cart/i-1/mem_pct": "damped_trend", "web/i-2/cpu_pct": "seasonal_naive"}
        store.write_forecasts(_forecast(made), model_name="auto", model_version="7", run_id="r1", level=80,
                              registered_model="capacity-forecaster")
        back = store.read_forecasts().drop_duplicates("unique_id").set_index("unique_id")
        assert back["model_name"].to_dict() == made  # not "auto" on every row
        assert set(back["model_version"]) == {"7"} and set(back["registered_model"]) == {"capacity-forecaster"}
    finally:
        store.dispose()


def test_an_old_store_gets_the_new_columns_in_place_and_keeps_its_rows(url: str) -> None:
    _old_schema(url)
    store = ForecastStore(url, clock=lambda: CREATED)
    try:
        live = inspect(store.engine)
        assert "registered_model" not in {c["name"] for c in live.get_columns("forecasts")}
        with store.engine.begin() as conn:  # a row an older Foresight wrote (only the columns it knew)
            conn.execute(schema_module.forecasts.insert().values(
                unique_id="old/i-0/cpu_pct", ds=START.to_pydatetime(), yhat=1.0, level=80, model_name="auto",
                model_version="1", run_id="r0", created_at=CREATED))
        added = schema_module.add_missing_columns(store.engine, schema_module.metadata.tables.values())
        assert {tuple(a.split(".")) for a in added} == {(t, c) for t, cs in NEW_COLUMNS.items() for c in cs}
        assert schema_module.add_missing_columns(store.engine, schema_module.metadata.tables.values()) == []
        store.create_schema()  # what every flow does first: idempotent on a migrated store
        old = store.read_forecasts("old/i-0/cpu_pct")
        assert old["model_name"].tolist() == ["auto"] and old["registered_model"].isna().all()
        store.write_forecasts(_forecast({"new/i-1/cpu_pct": "ses"}), model_name="auto", model_version="2",
                              run_id="r1", level=80, registered_model="capacity-forecaster")
        assert store.read_forecasts("new/i-1/cpu_pct")["model_name"].unique().tolist() == ["ses"]
    finally:
        store.dispose()


def test_the_plan_stores_its_target_and_start_check(url: str) -> None:
    store = ForecastStore(url, clock=lambda: CREATED)
    try:
        store.create_schema()
        plan = pd.DataFrame({
            "unique_id": ["s/i-1/cpu_pct", "s/i-1/mem_pct"], "service": "s", "resource_id": "i-1",
            "metric": ["cpu_pct", "mem_pct"], "threshold": 90.0, "current": [72.0, 40.0], "peak_p50": 50.0,
            "peak_p90": 60.0, "days_to_threshold": np.nan, "threshold_date": pd.NaT,
            "threshold_date_earliest": pd.NaT, "threshold_date_latest": pd.NaT, "capacity_needed": 0.8,
            "target_utilisation": [70.0, 85.0], "start_jump": [-22.0, 0.1], "start_noise": [0.5, 0.4],
            "start_warning": ["forecast starts 22.0 below the last actual 72.0", None],
        })
        store.write_capacity_plan(plan, model_version="3", run_id="r1")
        back = store.read_capacity_plan().set_index("unique_id")
        assert back.loc["s/i-1/mem_pct", "target_utilisation"] == 85.0
        assert back.loc["s/i-1/cpu_pct", "start_warning"].startswith("forecast starts 22.0 below")
        assert pd.isna(back.loc["s/i-1/mem_pct", "start_warning"])
        assert back.loc["s/i-1/cpu_pct", "start_jump"] == pytest.approx(-22.0)
    finally:
        store.dispose()


def test_the_plan_stores_its_runway_and_reads_the_likeliest_crossing_first(url: str) -> None:
    store = ForecastStore(url, clock=lambda: CREATED)
    try:
        store.create_schema()
        ids = ["b/i-1/mem_pct", "z/i-1/mem_pct", "a/i-1/mem_pct"]
        plan = pd.DataFrame({
            "unique_id": ids, "service": "s", "resource_id": "i-1", "metric": "mem_pct", "threshold": 90.0,
            "current": 60.0, "peak_p50": [95.0, 66.0, 61.0], "peak_p90": [99.0, 100.0, 80.0],
            "days_to_threshold": [2.0, np.nan, np.nan], "days_to_threshold_earliest": [1.0, 1.4, np.nan],
            "crossing_probability": [0.8, 0.29, 0.02], "threshold_date": pd.NaT, "threshold_date_earliest": pd.NaT,
            "threshold_date_latest": pd.NaT, "capacity_needed": 1.1,
        })
        store.write_capacity_plan(plan, model_version="3", run_id="r1")
        back = store.read_capacity_plan()
        # The median crossing first; among series whose median stays below, the likelier crossing
        # first (alphabetical order would put a/ first).
        assert back["unique_id"].tolist() == ids
        row = back.set_index("unique_id").loc["z/i-1/mem_pct"]
        assert np.isnan(row["days_to_threshold"]) and row["days_to_threshold_earliest"] == pytest.approx(1.4)
        assert row["crossing_probability"] == pytest.approx(0.29)
    finally:
        store.dispose()
