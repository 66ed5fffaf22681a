"""The forecast store's rightsizing and scaling-action tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from connectors.sinks.forecast_store import ForecastStore
from connectors.sinks.forecast_store_schema import RIGHTSIZING_COLUMNS, SCALING_ACTION_COLUMNS
from foresight.schemas import SchemaError
from support.postgres import temporary_database

START = pd.Timestamp("2026-03-01", tz="UTC")
CREATED = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[ForecastStore]:
    url = (
        f"sqlite:///{tmp_path / 'forecasts.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    st = ForecastStore(url, clock=lambda: CREATED)
    st.create_schema()
    yield st
    if request.param == "postgresql":
        with st.engine.begin() as conn:
            for table in ("rightsizing", "scaling_actions"):
                conn.execute(text(f"DELETE FROM {table}"))
    st.dispose()


def _recommendations(savings: list[float | None], services: list[str] | None = None) -> pd.DataFrame:
    services = services or [f"svc{i}" for i in range(len(savings))]
    saving = np.array([np.nan if s is None else s for s in savings], dtype="float64")
    return pd.DataFrame(
        {
            "service": services,
            "instance_count": 2.0,  # a float of a whole number is accepted and stored as an integer
            "current_instance_type": "m6i.xlarge",
            "recommended_instance_type": ["m6i.large" if s == s and s > 0 else None for s in saving],
            "current_monthly_cost": 280.32,
            "recommended_monthly_cost": 280.32 - saving,
            "monthly_savings": saving,
            "demand_vcpu": 1.2,
            "demand_memory_gib": 3.5,
            "peak_upper_utilisation": 61.5,
            "exceed_probability": 0.004,
            "current_exceed_probability": 0.2,
            "action": ["downsize" if s == s and s > 0 else "none_fits" for s in saving],
            "reason": "cpu bound",
            "price_source": "bundled-table:2026-01-15",
        }
    )


def _actions(service: str, starts: list[str], desired: list[int]) -> pd.DataFrame:
    times = pd.to_datetime(starts, utc=True)
    return pd.DataFrame(
        {
            "service": service,
            "asg_name": f"{service}-asg",
            "action_name": [f"foresight-{service}-{t:%Y%m%dT%H%MZ}" for t in times],
            "start_time": times,
            "desired_capacity": desired,
            "min_size": 2,
            "max_size": 8,
        }
    )


def test_rightsizing_upserts_by_service_and_reads_largest_saving_first(store: ForecastStore) -> None:
    store.write_rightsizing(_recommendations([140.16, None, 20.0]), model_version="1", run_id="r1")
    store.write_rightsizing(_recommendations([140.16, None, 20.0]), model_version="1", run_id="r1")
    assert store.count("rightsizing") == 3
    store.write_rightsizing(_recommendations([-50.0], ["svc0"]), model_version="2", run_id="r2")
    out = store.read_rightsizing()
    assert out["service"].tolist() == ["svc2", "svc0", "svc1"]  # 20 > -50, NULL last
    assert list(out.columns[: len(RIGHTSIZING_COLUMNS)]) == list(RIGHTSIZING_COLUMNS)
    row = out.set_index("service").loc["svc0"]
    assert (row["run_id"], row["monthly_savings"], row["instance_count"]) == ("r2", -50.0, 2)
    assert pd.isna(out.set_index("service").loc["svc1", "recommended_instance_type"])
    assert str(out["created_at"].dtype) == "datetime64[us, UTC]"


def test_rightsizing_rejects_duplicates_and_fractional_counts(store: ForecastStore) -> None:
    with pytest.raises(SchemaError, match="repeat key"):
        store.write_rightsizing(_recommendations([1.0, 2.0], ["a", "a"]), model_version="1", run_id="r")
    bad = _recommendations([1.0]).assign(instance_count=1.5)
    with pytest.raises(SchemaError, match="whole numbers"):
        store.write_rightsizing(bad, model_version="1", run_id="r")
    assert store.count("rightsizing") == 0


def test_scaling_actions_replace_a_services_schedule(store: ForecastStore) -> None:
    first = pd.concat(
        [
            _actions("cart", ["2026-03-01T17:30Z", "2026-03-02T17:30Z"], [4, 5]),
            _actions("search", ["2026-03-01T18:00Z"], [3]),
        ]
    )
    report = store.write_scaling_actions(first, run_id="r1")
    assert (report.written, report.deleted) == (3, 0)
    # Next run: cart needs one action, search none at all (passed explicitly so its rows go).
    report = store.write_scaling_actions(
        _actions("cart", ["2026-03-02T17:30Z"], [6]), run_id="r2", services=["cart", "search"]
    )
    assert (report.written, report.deleted) == (1, 3)
    out = store.read_scaling_actions()
    assert list(out.columns[: len(SCALING_ACTION_COLUMNS)]) == list(SCALING_ACTION_COLUMNS)
    assert out[["service", "desired_capacity", "run_id"]].values.tolist() == [["cart", 6, "r2"]]
    assert out["start_time"].iloc[0] == pd.Timestamp("2026-03-02T17:30Z")
    assert str(out["start_time"].dtype) == "datetime64[us, UTC]"
    assert store.read_scaling_actions("search").empty


def test_scaling_actions_need_aware_start_times(store: ForecastStore) -> None:
    naive = _actions("cart", ["2026-03-01T17:30Z"], [4]).assign(start_time=pd.Timestamp("2026-03-01 17:30"))
    with pytest.raises(SchemaError, match="timezone-aware"):
        store.write_scaling_actions(naive, run_id="r1")
