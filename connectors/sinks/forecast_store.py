"""The forecast store: forecasts, capacity plans, rightsizing, scaling actions and series metadata.

SQLAlchemy 2 Core over SQLite (the embedded default) or PostgreSQL (``postgresql+psycopg://``),
which is what the Grafana capacity dashboard reads. Every write is one transaction and is
idempotent: forecasts replace each series' rows from its first forecast ``ds`` onward
(delete-then-insert), the other tables upsert by key, so re-running a flow never duplicates a
row. Rows go in bulk (``COPY`` on PostgreSQL with psycopg, upserts through a COPY-filled
temporary table; ``executemany`` elsewhere), never one round trip per row. Timestamps are stored
as UTC (``timestamp with time zone`` on PostgreSQL; UTC wall time on SQLite, which has no
time zones) and read back as ``datetime64[us, UTC]``.

Beside it: :mod:`connectors.sinks.forecast_store_schema` (the tables, documented in
``docs/forecast-store.md``, and their migration) and :mod:`connectors.sinks.forecast_store_bulk`
(the bulk inserts and upserts per database).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Float, Table, bindparam, create_engine, delete, func, select
from sqlalchemy.engine import make_url

from connectors.sinks.forecast_store_bulk import insert_rows, upsert_rows
from connectors.sinks.forecast_store_schema import (
    ACTUALS_COLUMNS,
    CAPACITY_PLAN_COLUMNS,
    FORECAST_COLUMNS,
    RIGHTSIZING_COLUMNS,
    SCALING_ACTION_COLUMNS,
    SERIES_COLUMNS,
    actuals,
    add_missing_columns,
    capacity_plan,
    forecasts,
    metadata,
    rightsizing,
    scaling_actions,
    series,
    widen_to_text,
)
from foresight.schemas import UTC_DTYPE, DuplicateSamplesError, SchemaError, require_columns
from foresight.series_ids import unique_id_problem
from foresight.timeutil import utc_now, utc_series


@dataclass(frozen=True)
class WriteReport:
    """What one write did: rows removed (replaced) and rows written, per table."""

    table: str
    written: int
    deleted: int = 0
    skipped: tuple[str, ...] = ()  # keys left out because the store cannot hold them


# PostgreSQL drivers that take libpq's ``connect_timeout`` and ``options`` connection parameters.
_LIBPQ_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")


def engine_options(
    url: str, *, connect_timeout_seconds: int = 10, statement_timeout_seconds: int = 300
) -> dict[str, Any]:
    """``create_engine`` keyword arguments that bound every wait on the database at ``url``.

    PostgreSQL (psycopg): connecting gives up after ``connect_timeout_seconds`` (libpq waits
    for the OS otherwise, minutes against a silent host), so does waiting for a pooled
    connection, and the server cancels a statement after ``statement_timeout_seconds`` (0: no
    limit). Anything the URL's query already sets wins. SQLite keeps its own 5 s lock wait.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() not in _LIBPQ_DRIVERS:
        return {}
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = int(connect_timeout_seconds)
    if statement_timeout_seconds and "options" not in parsed.query:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_seconds * 1000)}"
    return {"connect_args": connect_args, "pool_timeout": float(connect_timeout_seconds)}


class ForecastStore:
    """Read and write Foresight's sink tables in one SQL database given by a SQLAlchemy URL."""

    def __init__(
        self, url: str, *, engine: Engine | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.url = url
        self.engine = engine or create_engine(url, **engine_options(url))
        self._clock = clock

    def create_schema(self) -> None:
        """Create any missing table, add the columns and widen the ``varchar(n)`` columns of a
        store an older Foresight created to ``text`` (idempotent: rows are left alone; see
        :func:`add_missing_columns` and :func:`widen_to_text`)."""
        metadata.create_all(self.engine, checkfirst=True)
        add_missing_columns(self.engine, metadata.tables.values())
        widen_to_text(self.engine, metadata.tables.values())

    def dispose(self) -> None:
        """Close pooled connections (tests drop their database afterwards)."""
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------------------
    def _stamp(self, frame: pd.DataFrame, run_id: str, model_version: str | None = None) -> None:
        """Provenance columns every written row carries: which run (and model version) wrote it, when."""
        if model_version is not None:
            frame["model_version"] = str(model_version)
        frame["run_id"] = str(run_id)
        frame["created_at"] = self._clock()

    def write_forecasts(
        self, df: pd.DataFrame, *, model_name: str, model_version: str, run_id: str, level: int,
        registered_model: str | None = None,
    ) -> WriteReport:
        """Replace each series' forecast from its first ``ds`` onward, in one transaction.

        A per-row ``model_name`` column (the model a per-series selection chose for that series)
        overrides ``model_name``; ``registered_model`` names whose version ``model_version`` is.
        """
        frame = _forecast_frame(df, model_name)
        frame["level"] = int(level)
        frame["registered_model"] = registered_model
        self._stamp(frame, run_id, model_version)
        starts = frame.groupby("unique_id", sort=False)["ds"].min()
        cut = [{"b_uid": uid, "b_start": ts.to_pydatetime()} for uid, ts in starts.items()]
        stmt = delete(forecasts).where(
            forecasts.c.unique_id == bindparam("b_uid"), forecasts.c.ds >= bindparam("b_start")
        )
        with self.engine.begin() as conn:
            deleted = conn.execute(stmt, cut).rowcount if cut else 0
            written = insert_rows(conn, forecasts, frame)
        return WriteReport("forecasts", written, max(int(deleted or 0), 0))

    def write_capacity_plan(self, df: pd.DataFrame, *, model_version: str, run_id: str) -> WriteReport:
        """Upsert capacity plan rows by ``unique_id`` in one transaction."""
        df = _with_optional(df, PLAN_OPTIONAL)
        require_columns(df, CAPACITY_PLAN_COLUMNS, "capacity plan")
        _require_unique(df, ["unique_id"], "capacity plan")
        frame = df[list(CAPACITY_PLAN_COLUMNS)].copy()
        for col in ("threshold_date", "threshold_date_earliest", "threshold_date_latest"):
            frame[col] = utc_series(frame[col], f"capacity plan {col}", allow_nat=True)
        self._stamp(frame, run_id, model_version)
        with self.engine.begin() as conn:
            written = upsert_rows(conn, capacity_plan, frame, keys=("unique_id",))
        return WriteReport("capacity_plan", written)

    def write_rightsizing(self, df: pd.DataFrame, *, model_version: str, run_id: str) -> WriteReport:
        """Upsert rightsizing recommendations by ``service`` in one transaction."""
        if "monthly_cost_change" not in df.columns and "monthly_savings" in df.columns:
            df = df.assign(monthly_cost_change=-df["monthly_savings"])
        df = _with_optional(df, ("sized_instance_type",))
        require_columns(df, RIGHTSIZING_COLUMNS, "rightsizing")
        _require_unique(df, ["service"], "rightsizing")
        frame = df[list(RIGHTSIZING_COLUMNS)].copy()
        frame["instance_count"] = _integers(frame["instance_count"], "rightsizing instance_count")
        self._stamp(frame, run_id, model_version)
        with self.engine.begin() as conn:
            written = upsert_rows(conn, rightsizing, frame, keys=("service",))
        return WriteReport("rightsizing", written)

    def write_scaling_actions(
        self, df: pd.DataFrame, *, run_id: str, services: Sequence[str] | None = None
    ) -> WriteReport:
        """Replace the scheduled scaling actions of ``services`` (default: those in ``df``).

        One transaction deletes every stored action of those services and inserts ``df``'s, so
        a service whose forecast no longer needs a scale-out loses its old actions.
        """
        require_columns(df, SCALING_ACTION_COLUMNS, "scaling actions")
        _require_unique(df, ["asg_name", "action_name"], "scaling actions")
        frame = df[list(SCALING_ACTION_COLUMNS)].copy()
        frame["start_time"] = utc_series(frame["start_time"], "scaling actions start_time")
        for col in ("desired_capacity", "min_size", "max_size"):
            frame[col] = _integers(frame[col], f"scaling actions {col}")
        self._stamp(frame, run_id)
        replaced = sorted(set(frame["service"].astype(str)) | set(services or ()))
        with self.engine.begin() as conn:
            deleted = 0
            if replaced:
                gone = conn.execute(delete(scaling_actions).where(scaling_actions.c.service.in_(replaced)))
                deleted = max(int(gone.rowcount or 0), 0)
            written = insert_rows(conn, scaling_actions, frame)
        return WriteReport("scaling_actions", written, deleted)

    def write_series(self, catalogue: pd.DataFrame) -> WriteReport:
        """Upsert the series metadata (dashboard variables) from a series catalogue.

        A series whose id the store cannot hold (``foresight.series_ids``: too long, control
        characters) is left out and named in ``skipped``, so it cannot fail the write for the
        others; the data contract has already quarantined its telemetry with the reason.
        """
        require_columns(catalogue, SERIES_COLUMNS, "series catalogue")
        frame = catalogue[list(SERIES_COLUMNS)].drop_duplicates("unique_id", keep="last")
        holdable = frame["unique_id"].map(lambda uid: unique_id_problem(str(uid)) is None).astype(bool)
        skipped = tuple(frame.loc[~holdable, "unique_id"].astype(str))
        with self.engine.begin() as conn:
            written = upsert_rows(conn, series, frame[holdable], keys=("unique_id",))
        return WriteReport("series", written, skipped=skipped)

    def write_actuals(self, df: pd.DataFrame) -> WriteReport:
        """Upsert recent actuals ``unique_id, ds, y`` so dashboards can plot them next to forecasts."""
        require_columns(df, ACTUALS_COLUMNS, "actuals")
        _require_unique(df, ["unique_id", "ds"], "actuals")
        frame = df[list(ACTUALS_COLUMNS)].copy()
        frame["ds"] = utc_series(frame["ds"], "actuals ds")
        with self.engine.begin() as conn:
            written = upsert_rows(conn, actuals, frame, keys=("unique_id", "ds"))
        return WriteReport("actuals", written)

    # -- reading -----------------------------------------------------------------------------
    def read_forecasts(self, unique_id: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Stored forecasts (all, one series or several), sorted by ``(unique_id, ds)``."""
        stmt = select(forecasts).order_by(forecasts.c.unique_id, forecasts.c.ds)
        stmt = _where_ids(stmt, forecasts, unique_id)
        return self._read(stmt, forecasts, ("ds", "created_at"))

    def read_capacity_plan(self) -> pd.DataFrame:
        """The stored capacity plan, soonest median crossing first, then the likeliest to cross
        (rows a plan without probabilities wrote last among equals)."""
        stmt = select(capacity_plan).order_by(
            capacity_plan.c.days_to_threshold.asc().nulls_last(),
            capacity_plan.c.crossing_probability.desc().nulls_last(),
            capacity_plan.c.unique_id,
        )
        dates = ("threshold_date", "threshold_date_earliest", "threshold_date_latest", "created_at")
        return self._read(stmt, capacity_plan, dates)

    def read_rightsizing(self) -> pd.DataFrame:
        """The stored recommendations, largest monthly saving first (upsizes, negative, last)."""
        stmt = select(rightsizing).order_by(
            rightsizing.c.monthly_savings.desc().nulls_last(), rightsizing.c.service
        )
        return self._read(stmt, rightsizing, ("created_at",))

    def read_scaling_actions(self, service: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Stored scheduled actions (all or some services), by service then start time."""
        stmt = select(scaling_actions).order_by(
            scaling_actions.c.service, scaling_actions.c.start_time, scaling_actions.c.action_name
        )
        if service is not None:
            names = [service] if isinstance(service, str) else list(service)
            stmt = stmt.where(scaling_actions.c.service.in_(names))
        return self._read(stmt, scaling_actions, ("start_time", "created_at"))

    def read_series(self) -> pd.DataFrame:
        """The stored series metadata, sorted by ``unique_id``."""
        return self._read(select(series).order_by(series.c.unique_id), series, ())

    def read_actuals(self, unique_id: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Stored actuals, sorted by ``(unique_id, ds)``."""
        stmt = _where_ids(select(actuals).order_by(actuals.c.unique_id, actuals.c.ds), actuals, unique_id)
        return self._read(stmt, actuals, ("ds",))

    def count(self, table: str) -> int:
        """Row count of one store table (for reports and idempotency checks)."""
        if table not in metadata.tables:
            raise KeyError(f"unknown forecast store table {table!r}; known: {sorted(metadata.tables)}")
        tbl = metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())

    def _read(self, stmt: Any, table: Table, date_columns: Sequence[str]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        frame = pd.DataFrame.from_records(rows, columns=[c.name for c in table.columns])
        for col in date_columns:
            # SQLite returns naive UTC wall time, PostgreSQL aware datetimes: both become UTC.
            frame[col] = pd.to_datetime(frame[col], utc=True).astype(UTC_DTYPE)
        for col in (c.name for c in table.columns if isinstance(c.type, Float)):
            frame[col] = frame[col].astype("float64")
        return frame


# -- frame preparation (pure) ------------------------------------------------------------------
def _forecast_frame(df: pd.DataFrame, model_name: str) -> pd.DataFrame:
    """Validate a forecast frame and return it with the store's columns and Python-ready types."""
    require_columns(df, FORECAST_COLUMNS, "forecasts")
    if df.empty:
        raise SchemaError("forecasts: the frame is empty; nothing to write")
    _require_unique(df, ["unique_id", "ds"], "forecasts")
    frame = df[list(FORECAST_COLUMNS)].copy()
    frame["ds"] = utc_series(frame["ds"], "forecasts ds")
    if not np.isfinite(frame["yhat"].to_numpy(dtype="float64")).all():
        raise SchemaError("forecasts: column 'yhat' has NaN/inf values")
    if "model_name" in df.columns:
        frame["model_name"] = df["model_name"].astype(object).where(df["model_name"].notna(), model_name)
    else:
        frame["model_name"] = model_name
    return frame


# Plan columns added after the first release: a writer may leave them out (stored as NULL).
PLAN_OPTIONAL: tuple[str, ...] = (
    "target_utilisation", "start_jump", "start_noise", "start_warning", "days_to_threshold_earliest",
    "crossing_probability",
)


def _with_optional(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with each of ``columns`` it lacks added as NULL."""
    absent = [c for c in columns if c not in df.columns]
    return df.assign(**dict.fromkeys(absent, None)) if absent else df


def _require_unique(df: pd.DataFrame, keys: list[str], what: str) -> None:
    dupes = df.duplicated(keys, keep=False)
    if dupes.any():
        if keys == ["unique_id", "ds"]:
            raise DuplicateSamplesError(df[dupes])
        sample = df[dupes].head(3)[keys].to_dict("records")
        raise SchemaError(f"{what}: {int(dupes.sum())} rows repeat key {keys}, e.g. {sample}")


def _integers(values: pd.Series, what: str) -> pd.Series:
    """Whole numbers as int64 (COPY renders 2.0 as text PostgreSQL's integer rejects)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or not np.allclose(numbers, np.round(numbers)):
        raise SchemaError(f"{what}: expected whole numbers, got {values.head(3).tolist()}")
    return numbers.round().astype("int64")


def _where_ids(stmt: Any, table: Table, unique_id: str | Sequence[str] | None) -> Any:
    if unique_id is None:
        return stmt
    ids = [unique_id] if isinstance(unique_id, str) else list(unique_id)
    return stmt.where(table.c.unique_id.in_(ids))
