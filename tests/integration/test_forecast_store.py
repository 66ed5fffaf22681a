"""Forecast store round trips on SQLite and on the real PostgreSQL at 127.0.0.1:5432.

Each PostgreSQL run creates its own database (``foresight_test_<random>``) and drops it after,
so concurrent runs never collide. Set ``FORESIGHT_TEST_PG_URL`` to point elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import connectors.sinks.forecast_store as store_module
import connectors.sinks.forecast_store_schema as schema_module
from connectors.sinks.forecast_store import ForecastStore
from foresight.schemas import DuplicateSamplesError, SchemaError
from support.postgres import temporary_database

START = pd.Timestamp("2026-03-01", tz="UTC")
CREATED = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this module; dropped afterwards."""
    with temporary_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[ForecastStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'forecasts.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    st = ForecastStore(url, clock=lambda: CREATED)
    st.create_schema()
    yield st
    if request.param == "postgresql":
        with st.engine.begin() as conn:  # the database is shared by this module's tests
            for table in ("forecasts", "capacity_plan", "series", "actuals"):
                conn.execute(text(f"DELETE FROM {table}"))
    st.dispose()


def _forecast(n_series: int = 3, h: int = 48, start: pd.Timestamp = START, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"svc{i % 3}/i-{i:03d}/cpu_pct" for i in range(n_series)]
    yhat = rng.uniform(10, 90, n_series * h)
    return pd.DataFrame(
        {
            "unique_id": np.repeat(ids, h),
            "ds": np.tile(pd.date_range(start, periods=h, freq="h"), n_series),
            "yhat": yhat,
            "yhat_lower": yhat - 5.0,
            "yhat_upper": yhat + 5.0,
        }
    )


def _plan(ids: list[str], days: list[float | None], peak: float = 70.0) -> pd.DataFrame:
    days_arr = np.array([np.nan if d is None else d for d in days], dtype="float64")
    dates = pd.Series(START + pd.to_timedelta(days_arr, unit="D"))
    return pd.DataFrame(
        {
            "unique_id": ids,
            "service": [i.split("/")[0] for i in ids],
            "resource_id": [i.split("/")[1] for i in ids],
            "metric": "cpu_pct",
            "threshold": 80.0,
            "current": 50.0,
            "peak_p50": peak - 10,
            "peak_p90": peak,
            "days_to_threshold": days_arr,
            "threshold_date": dates,
            "threshold_date_earliest": dates - pd.Timedelta(days=1),
            "threshold_date_latest": dates + pd.Timedelta(days=1),
            "capacity_needed": 0.5,
        }
    )


def test_create_schema_is_idempotent(store: ForecastStore) -> None:
    store.write_forecasts(_forecast(), model_name="m", model_version="1", run_id="r1", level=80)
    store.create_schema()
    assert store.count("forecasts") == 3 * 48


def test_forecast_round_trip(store: ForecastStore) -> None:
    df = _forecast()
    report = store.write_forecasts(df, model_name="prophet", model_version="7", run_id="r1", level=80)
    assert (report.written, report.deleted) == (len(df), 0)
    out = store.read_forecasts()
    assert str(out["ds"].dtype) == "datetime64[us, UTC]"
    assert out["ds"].tolist() == df.sort_values(["unique_id", "ds"])["ds"].tolist()
    np.testing.assert_allclose(out["yhat"], df.sort_values(["unique_id", "ds"])["yhat"])
    assert set(out["model_name"]) == {"prophet"} and set(out["level"]) == {80}
    assert set(out["created_at"]) == {pd.Timestamp(CREATED)}
    one = store.read_forecasts("svc1/i-001/cpu_pct")
    assert len(one) == 48 and set(one["unique_id"]) == {"svc1/i-001/cpu_pct"}


def test_rewrite_is_idempotent_and_replaces_the_future(store: ForecastStore) -> None:
    df = _forecast()
    store.write_forecasts(df, model_name="m", model_version="1", run_id="r1", level=80)
    store.write_forecasts(df, model_name="m", model_version="1", run_id="r1", level=80)
    assert store.count("forecasts") == len(df)
    # A later run starting 24 h on: rows before its start stay, rows from it onward are replaced.
    later = _forecast(start=START + pd.Timedelta(hours=24), seed=1)
    report = store.write_forecasts(later, model_name="m", model_version="2", run_id="r2", level=80)
    assert report.deleted == 3 * 24
    out = store.read_forecasts()
    assert len(out) == 3 * (24 + 48)
    new = out["ds"] >= START + pd.Timedelta(hours=24)
    assert set(out.loc[new, "run_id"]) == {"r2"} and set(out.loc[~new, "run_id"]) == {"r1"}


def test_per_row_model_name_overrides_the_argument(store: ForecastStore) -> None:
    df = _forecast()
    df["model_name"] = np.where(df["unique_id"].str.startswith("svc0"), "lgbm_global", None)
    store.write_forecasts(df, model_name="seasonal_naive", model_version="1", run_id="r1", level=80)
    names = store.read_forecasts().groupby("unique_id")["model_name"].first().to_dict()
    assert names == {
        "svc0/i-000/cpu_pct": "lgbm_global",
        "svc1/i-001/cpu_pct": "seasonal_naive",
        "svc2/i-002/cpu_pct": "seasonal_naive",
    }


def test_failed_write_rolls_back_the_delete(store: ForecastStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_forecasts(_forecast(), model_name="m", model_version="1", run_id="r1", level=80)

    def broken_insert(*args: object, **kwargs: object) -> int:
        raise RuntimeError("connection lost mid-write")

    monkeypatch.setattr(store_module, "insert_rows", broken_insert)
    with pytest.raises(RuntimeError):
        store.write_forecasts(_forecast(seed=2), model_name="m", model_version="2", run_id="r2", level=80)
    out = store.read_forecasts()
    assert len(out) == 3 * 48 and set(out["run_id"]) == {"r1"}


def test_capacity_plan_upserts_by_unique_id(store: ForecastStore) -> None:
    ids = ["svc0/i-000/cpu_pct", "svc1/i-001/cpu_pct", "svc2/i-002/cpu_pct"]
    store.write_capacity_plan(_plan(ids, [10.0, None, 2.5]), model_version="1", run_id="r1")
    store.write_capacity_plan(_plan(ids, [10.0, None, 2.5]), model_version="1", run_id="r1")
    assert store.count("capacity_plan") == 3
    update = _plan([ids[0], "svc3/i-003/cpu_pct"], [1.0, 4.0], peak=85.0)
    store.write_capacity_plan(update, model_version="2", run_id="r2")
    plan = store.read_capacity_plan()
    assert plan["unique_id"].tolist() == [ids[0], ids[2], "svc3/i-003/cpu_pct", ids[1]]  # soonest first, NULL last
    row = plan.set_index("unique_id").loc[ids[0]]
    assert (row["run_id"], row["peak_p90"], row["days_to_threshold"]) == ("r2", 85.0, 1.0)
    assert row["threshold_date"] == START + pd.Timedelta(days=1)
    assert str(plan["threshold_date"].dtype) == "datetime64[us, UTC]"
    never = plan.set_index("unique_id").loc[ids[1]]
    assert np.isnan(never["days_to_threshold"]) and pd.isna(never["threshold_date"])


def test_series_and_actuals_upsert(store: ForecastStore) -> None:
    catalogue = pd.DataFrame(
        {
            "unique_id": ["svc0/i-000/cpu_pct", "svc0/i-000/mem_pct"],
            "source": "simulator",
            "metric": ["cpu_pct", "mem_pct"],
            "labels": "{}",
            "service": "svc0",
            "resource_id": "i-000",
            "instance_type": "m5.large",
            "unit": "percent",
        }
    )
    store.write_series(catalogue.assign(unit=["", None]))
    assert store.read_series()["unit"].tolist()[0] == ""  # an empty string is not NULL
    assert pd.isna(store.read_series()["unit"].tolist()[1])
    store.write_series(catalogue)
    store.write_series(catalogue.assign(unit="ratio"))
    series = store.read_series()
    assert len(series) == 2 and set(series["unit"]) == {"ratio"}
    actuals = pd.DataFrame(
        {"unique_id": "svc0/i-000/cpu_pct", "ds": pd.date_range(START, periods=24, freq="h"), "y": np.arange(24.0)}
    )
    store.write_actuals(actuals)
    store.write_actuals(actuals.assign(y=actuals["y"] + 1))
    out = store.read_actuals()
    assert len(out) == 24 and out["y"].tolist() == (np.arange(24.0) + 1).tolist()
    assert out["ds"].tolist() == actuals["ds"].tolist()


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda df: df.assign(ds=df["ds"].dt.tz_localize(None)), SchemaError),
        (lambda df: pd.concat([df, df.head(1)]), DuplicateSamplesError),
        (lambda df: df.drop(columns="yhat_upper"), SchemaError),
        (lambda df: df.assign(yhat=np.nan), SchemaError),
    ],
)
def test_bad_forecast_frames_are_refused(store: ForecastStore, mutate, error: type[Exception]) -> None:
    with pytest.raises(error):
        store.write_forecasts(mutate(_forecast()), model_name="m", model_version="1", run_id="r", level=80)
    assert store.count("forecasts") == 0


def test_bulk_write_of_a_fleet_is_fast(store: ForecastStore) -> None:
    df = _forecast(n_series=72, h=168)
    started = time.perf_counter()
    store.write_forecasts(df, model_name="m", model_version="1", run_id="r1", level=80)
    store.write_forecasts(df, model_name="m", model_version="1", run_id="r2", level=80)  # delete + insert
    elapsed = (time.perf_counter() - started) / 2
    assert store.count("forecasts") == 72 * 168
    assert elapsed < 1.0, f"writing 72 x 168 forecast rows took {elapsed:.2f} s"


# -- ids as long as real ones, and stores created by an older Foresight --------------------------
# A Prometheus series with many extra labels: the 312-character id that stopped every forecast
# write on PostgreSQL (varchar(255)) while SQLite took it.
LONG_ID = "web/ip-10-0-0-1/cpu_pct{" + ",".join(f"label_{i:02d}=value-{i:02d}" for i in range(16)) + "}"


def _catalogue(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"unique_id": ids, "service": "web", "resource_id": "ip-10-0-0-1", "metric": "cpu_pct"}
    ).assign(unit="percent")


def test_a_312_character_series_id_is_written_to_every_table(store: ForecastStore) -> None:
    assert len(LONG_ID) == 312
    forecast = _forecast(n_series=1).assign(unique_id=LONG_ID)
    store.write_forecasts(forecast, model_name="m", model_version="1", run_id="r1", level=80)
    store.write_capacity_plan(_plan([LONG_ID], [3.0]), model_version="1", run_id="r1")
    store.write_series(_catalogue([LONG_ID]))
    store.write_actuals(forecast[["unique_id", "ds"]].assign(y=1.0))
    assert set(store.read_forecasts(LONG_ID)["unique_id"]) == {LONG_ID}
    assert store.read_capacity_plan()["unique_id"].tolist() == [LONG_ID]
    assert store.read_series()["unique_id"].tolist() == [LONG_ID]
    assert len(store.read_actuals(LONG_ID)) == len(forecast)


def _incompressible_id(n_bytes: int) -> str:
    """Random 4-byte characters (no compression can shrink its index entry), ``n_bytes`` long."""
    rng = np.random.default_rng(7)
    return "".join(chr(c) for c in rng.integers(0x10000, 0x1F000, n_bytes // 4))


def test_the_longest_id_the_contract_accepts_fits_every_key(store: ForecastStore) -> None:
    from foresight.series_ids import MAX_UNIQUE_ID_BYTES, unique_id_problem

    uid = _incompressible_id(MAX_UNIQUE_ID_BYTES)
    assert len(uid.encode("utf-8")) == MAX_UNIQUE_ID_BYTES and unique_id_problem(uid) is None
    forecast = _forecast(n_series=1).assign(unique_id=uid)
    store.write_forecasts(forecast, model_name="m", model_version="1", run_id="r1", level=80)
    store.write_series(_catalogue([uid]))
    assert set(store.read_forecasts()["unique_id"]) == {uid}
    assert store.read_series()["unique_id"].tolist() == [uid]


def test_catalogue_entries_the_store_cannot_hold_are_skipped_not_fatal(store: ForecastStore) -> None:
    ok, nul, huge = "web/i-1/cpu_pct", "web/i-1\x00/cpu_pct", _incompressible_id(4000)
    report = store.write_series(_catalogue([ok, nul, huge]))
    assert (report.written, report.skipped) == (1, (nul, huge))
    assert store.read_series()["unique_id"].tolist() == [ok]


def _old_schema(url: str) -> None:
    """The tables as Foresight created them before ids became text: varchar(255) and friends."""
    from sqlalchemy import MetaData, String, Text, create_engine

    old = MetaData()
    for table in schema_module.metadata.tables.values():
        for column in table.to_metadata(old).columns:
            if isinstance(column.type, Text):
                column.type = String(1024 if column.name == "reason" else 255)
    engine = create_engine(url)
    try:
        old.create_all(engine)
    finally:
        engine.dispose()


def _column_types(st: ForecastStore) -> dict[str, str]:
    with st.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        ).all()
    return dict(rows)


@pytest.mark.integration
def test_an_old_varchar_store_is_migrated_to_text_in_place() -> None:
    with temporary_database() as url:
        _old_schema(url)
        st = ForecastStore(url, clock=lambda: CREATED)
        try:
            old = _forecast(n_series=1)
            st.write_forecasts(old, model_name="m", model_version="1", run_id="r0", level=80)
            assert _column_types(st)["forecasts.unique_id"] == "character varying"
            st.create_schema()  # what every flow does first
            types = _column_types(st)
            assert types["forecasts.unique_id"] == types["series.unique_id"] == "text"
            assert {t for name, t in types.items() if name.split(".")[0] in schema_module.metadata.tables} == {
                "text", "timestamp with time zone", "double precision", "integer"
            }
            tables = schema_module.metadata.tables.values()
            assert schema_module.widen_to_text(st.engine, tables) == []  # idempotent: nothing left
            assert st.count("forecasts") == 48  # the old rows are kept
            long = _forecast(n_series=1).assign(unique_id=LONG_ID)
            st.write_forecasts(long, model_name="m", model_version="1", run_id="r1", level=80)
            st.write_series(_catalogue([LONG_ID]))
            assert st.count("forecasts") == 2 * 48 and st.read_series()["unique_id"].tolist() == [LONG_ID]
        finally:
            st.dispose()


@pytest.mark.integration
def test_a_migration_blocked_by_a_long_reader_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from foresight.errors import DependencyUnavailableError

    monkeypatch.setattr(schema_module, "_MIGRATION_LOCK_TIMEOUT", "200ms")
    with temporary_database() as url:
        _old_schema(url)
        st = ForecastStore(url)
        reader = st.engine.connect()
        try:
            reader.execute(text("SELECT count(*) FROM forecasts"))  # open transaction: holds a share lock
            with pytest.raises(DependencyUnavailableError, match="lock") as caught:
                st.create_schema()
            assert caught.value.retryable and "\n" not in str(caught.value)
            reader.rollback()
            st.create_schema()
            assert _column_types(st)["forecasts.unique_id"] == "text"
        finally:
            reader.close()
            st.dispose()
