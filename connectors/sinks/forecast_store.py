"""The forecast store: forecasts, capacity plans, rightsizing, scaling actions and series metadata.

SQLAlchemy 2 Core over SQLite (the embedded default) or PostgreSQL (``postgresql+psycopg://``),
which is what the Grafana capacity dashboard reads. Every write is one transaction and is
idempotent: forecasts replace each series' rows from its first forecast ``ds`` onward
(delete-then-insert), the other tables upsert by key, so re-running a flow never duplicates a
row. Rows go in bulk (``COPY`` on PostgreSQL with psycopg, upserts through a COPY-filled
temporary table; ``executemany`` elsewhere), never one round trip per row. Timestamps are stored
as UTC (``timestamp with time zone`` on PostgreSQL; UTC wall time on SQLite, which has no
time zones) and read back as ``datetime64[us, UTC]``. The table shapes are documented in
``docs/forecast-store.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from foresight.errors import DependencyUnavailableError
from foresight.schemas import UTC_DTYPE, DuplicateSamplesError, SchemaError, require_columns
from foresight.series_ids import unique_id_problem
from foresight.timeutil import utc_now, utc_series

# Every string column is ``text``: ids and names come from the telemetry (a Prometheus series id
# with its extra labels runs to hundreds of characters), and a length cap turns one long id into
# a failed write for every series. On PostgreSQL ``text`` and ``varchar(n)`` are the same type
# underneath (same storage, same btree indexes, no speed difference); the cap was only a check.
# What a key column can really hold is bounded by the index entry size, which the data contract
# enforces per series (``foresight.series_ids``). SQLite ignores declared lengths anyway.
metadata = MetaData()

forecasts = Table(
    "forecasts",
    metadata,
    Column("unique_id", Text, primary_key=True),
    Column("ds", DateTime(timezone=True), primary_key=True),
    Column("yhat", Float, nullable=False),
    Column("yhat_lower", Float),
    Column("yhat_upper", Float),
    Column("level", Integer, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

capacity_plan = Table(
    "capacity_plan",
    metadata,
    Column("unique_id", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("threshold", Float),
    Column("current", Float),
    Column("peak_p50", Float),
    Column("peak_p90", Float),
    Column("days_to_threshold", Float),  # NULL: the forecast never reaches the threshold
    Column("threshold_date", DateTime(timezone=True)),
    Column("threshold_date_earliest", DateTime(timezone=True)),
    Column("threshold_date_latest", DateTime(timezone=True)),
    Column("capacity_needed", Float),
    Column("model_version", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

series = Table(
    "series",
    metadata,
    Column("unique_id", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("unit", Text),
)

actuals = Table(
    "actuals",
    metadata,
    Column("unique_id", Text, primary_key=True),
    Column("ds", DateTime(timezone=True), primary_key=True),
    Column("y", Float, nullable=False),
)

rightsizing = Table(
    "rightsizing",
    metadata,
    Column("service", Text, primary_key=True),
    Column("instance_count", Integer, nullable=False),
    Column("current_instance_type", Text, nullable=False),
    Column("recommended_instance_type", Text),  # NULL: no allowed type is big enough
    Column("current_monthly_cost", Float),
    Column("recommended_monthly_cost", Float),
    Column("monthly_savings", Float),  # current - recommended; negative: an upsize costs more
    Column("demand_vcpu", Float),
    Column("demand_memory_gib", Float),
    Column("peak_upper_utilisation", Float),  # forecast upper quantile on the recommended type, %
    Column("exceed_probability", Float),  # P(demand > recommended capacity) at the forecast peak
    Column("current_exceed_probability", Float),  # the same on the current type: the risk of no change
    Column("action", Text, nullable=False),  # downsize / upsize / keep / none_fits
    Column("reason", Text, nullable=False),
    Column("price_source", Text),
    Column("model_version", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

scaling_actions = Table(
    "scaling_actions",
    metadata,
    Column("service", Text, nullable=False),
    Column("asg_name", Text, primary_key=True),
    Column("action_name", Text, primary_key=True),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("desired_capacity", Integer, nullable=False),
    Column("min_size", Integer, nullable=False),
    Column("max_size", Integer, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

FORECAST_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "yhat", "yhat_lower", "yhat_upper")
CAPACITY_PLAN_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in capacity_plan.columns if c.name not in ("model_version", "run_id", "created_at")
)
SERIES_COLUMNS: tuple[str, ...] = ("unique_id", "service", "resource_id", "metric", "unit")
ACTUALS_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y")
_PROVENANCE = ("model_version", "run_id", "created_at")
RIGHTSIZING_COLUMNS: tuple[str, ...] = tuple(c.name for c in rightsizing.columns if c.name not in _PROVENANCE)
SCALING_ACTION_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in scaling_actions.columns if c.name not in _PROVENANCE
)


@dataclass(frozen=True)
class WriteReport:
    """What one write did: rows removed (replaced) and rows written, per table."""

    table: str
    written: int
    deleted: int = 0
    skipped: tuple[str, ...] = ()  # keys left out because the store cannot hold them


# PostgreSQL drivers that take libpq's ``connect_timeout`` and ``options`` connection parameters.
_LIBPQ_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")


def engine_options(url: str, *, connect_timeout_seconds: int = 10, statement_timeout_seconds: int = 300) -> dict[str, Any]:
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
        """Create any missing table, and widen the ``varchar(n)`` columns of a store an older
        Foresight created to ``text`` (idempotent: rows are left alone; see :func:`widen_to_text`)."""
        metadata.create_all(self.engine, checkfirst=True)
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
        self, df: pd.DataFrame, *, model_name: str, model_version: str, run_id: str, level: int
    ) -> WriteReport:
        """Replace each series' forecast from its first ``ds`` onward, in one transaction.

        A per-row ``model_name`` column (per-series model choice) overrides ``model_name``.
        """
        frame = _forecast_frame(df, model_name)
        frame["level"] = int(level)
        self._stamp(frame, run_id, model_version)
        starts = frame.groupby("unique_id", sort=False)["ds"].min()
        cut = [{"b_uid": uid, "b_start": ts.to_pydatetime()} for uid, ts in starts.items()]
        stmt = delete(forecasts).where(
            forecasts.c.unique_id == bindparam("b_uid"), forecasts.c.ds >= bindparam("b_start")
        )
        with self.engine.begin() as conn:
            deleted = conn.execute(stmt, cut).rowcount if cut else 0
            written = _insert(conn, forecasts, frame)
        return WriteReport("forecasts", written, max(int(deleted or 0), 0))

    def write_capacity_plan(self, df: pd.DataFrame, *, model_version: str, run_id: str) -> WriteReport:
        """Upsert capacity plan rows by ``unique_id`` in one transaction."""
        require_columns(df, CAPACITY_PLAN_COLUMNS, "capacity plan")
        _require_unique(df, ["unique_id"], "capacity plan")
        frame = df[list(CAPACITY_PLAN_COLUMNS)].copy()
        for col in ("threshold_date", "threshold_date_earliest", "threshold_date_latest"):
            frame[col] = utc_series(frame[col], f"capacity plan {col}", allow_nat=True)
        self._stamp(frame, run_id, model_version)
        with self.engine.begin() as conn:
            written = _upsert(conn, capacity_plan, frame, keys=("unique_id",))
        return WriteReport("capacity_plan", written)

    def write_rightsizing(self, df: pd.DataFrame, *, model_version: str, run_id: str) -> WriteReport:
        """Upsert rightsizing recommendations by ``service`` in one transaction."""
        require_columns(df, RIGHTSIZING_COLUMNS, "rightsizing")
        _require_unique(df, ["service"], "rightsizing")
        frame = df[list(RIGHTSIZING_COLUMNS)].copy()
        frame["instance_count"] = _integers(frame["instance_count"], "rightsizing instance_count")
        self._stamp(frame, run_id, model_version)
        with self.engine.begin() as conn:
            written = _upsert(conn, rightsizing, frame, keys=("service",))
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
            written = _insert(conn, scaling_actions, frame)
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
            written = _upsert(conn, series, frame[holdable], keys=("unique_id",))
        return WriteReport("series", written, skipped=skipped)

    def write_actuals(self, df: pd.DataFrame) -> WriteReport:
        """Upsert recent actuals ``unique_id, ds, y`` so dashboards can plot them next to forecasts."""
        require_columns(df, ACTUALS_COLUMNS, "actuals")
        _require_unique(df, ["unique_id", "ds"], "actuals")
        frame = df[list(ACTUALS_COLUMNS)].copy()
        frame["ds"] = utc_series(frame["ds"], "actuals ds")
        with self.engine.begin() as conn:
            written = _upsert(conn, actuals, frame, keys=("unique_id", "ds"))
        return WriteReport("actuals", written)

    # -- reading -----------------------------------------------------------------------------
    def read_forecasts(self, unique_id: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Stored forecasts (all, one series or several), sorted by ``(unique_id, ds)``."""
        stmt = select(forecasts).order_by(forecasts.c.unique_id, forecasts.c.ds)
        stmt = _where_ids(stmt, forecasts, unique_id)
        return self._read(stmt, forecasts, ("ds", "created_at"))

    def read_capacity_plan(self) -> pd.DataFrame:
        """The stored capacity plan, soonest-to-threshold first (never-reaching rows last)."""
        stmt = select(capacity_plan).order_by(
            capacity_plan.c.days_to_threshold.asc().nulls_last(), capacity_plan.c.unique_id
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


# -- schema migration ----------------------------------------------------------------------------
_MIGRATION_LOCK_TIMEOUT = "10s"  # a long dashboard query must not hold a run at start-up for long


def widen_to_text(engine: Engine, tables: Iterable[Table]) -> list[str]:
    """ALTER the live ``varchar(n)`` / ``char(n)`` columns that ``tables`` declare ``text`` to
    ``text``; returns the ``table.column`` names changed (none the second time).

    PostgreSQL only (SQLite does not enforce lengths). ``varchar`` to ``text`` is binary
    compatible: no table rewrite and no index rebuild, just a brief exclusive lock, taken with
    a lock timeout so a long-running reader makes the run fail clearly (and retry) instead of
    hanging. Two processes migrating at once serialise on the lock; the second finds nothing to do.
    """
    if engine.dialect.name != "postgresql":
        return []
    wanted = {t.name: [c.name for c in t.columns if isinstance(c.type, Text)] for t in tables}
    changed: list[str] = []
    try:
        with engine.begin() as conn:
            narrow = _narrow_text_columns(conn, wanted)
            if not narrow:
                return []
            conn.execute(text(f"SET LOCAL lock_timeout = '{_MIGRATION_LOCK_TIMEOUT}'"))
            quote = conn.dialect.identifier_preparer.quote
            for table, columns in narrow.items():
                alters = ", ".join(f"ALTER COLUMN {quote(c)} TYPE text" for c in columns)
                conn.execute(text(f"ALTER TABLE {quote(table)} {alters}"))
                changed += [f"{table}.{c}" for c in columns]
    except OperationalError as exc:
        first_line = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DependencyUnavailableError(
            f"forecast store: could not widen the id columns to text: {first_line}",
            hint=f"another session held a lock for over {_MIGRATION_LOCK_TIMEOUT}; the next run retries",
        ) from exc
    return changed


def _narrow_text_columns(conn: Connection, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
    """The columns of ``wanted`` (table -> text columns) that are still a sized character type."""
    rows = conn.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name IN :tables "
            "AND data_type IN ('character varying', 'character') ORDER BY table_name, ordinal_position"
        ).bindparams(bindparam("tables", expanding=True)),
        {"tables": sorted(wanted)},
    ).all()
    narrow: dict[str, list[str]] = {}
    for table, column in rows:
        if column in wanted[table]:
            narrow.setdefault(table, []).append(column)
    return narrow


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


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (NaN/NaT -> None), built column-wise for speed."""
    columns = {col: _python_values(frame[col]) for col in frame.columns}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _python_values(values: pd.Series) -> list[Any]:
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = list(values.dt.to_pydatetime())
    else:
        out = values.astype(object).tolist()
    if missing.any():
        out = [None if gone else v for v, gone in zip(out, missing, strict=True)]
    return out


def _insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Bulk insert: COPY on PostgreSQL via psycopg, executemany elsewhere; inside ``conn``'s transaction."""
    if frame.empty:
        return 0
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy_rows(conn, table, frame)
    rows = _records(frame)
    conn.execute(insert(table), rows)  # executemany
    return len(rows)


_CSV_NULL = "\\N"  # PostgreSQL's conventional NULL marker; empty strings stay strings
_CSV_NULL_SQL = "E'\\\\N'"


def _copy_rows(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """``COPY ... FROM STDIN`` of pandas-rendered CSV on the connection's own cursor (same
    transaction). Timestamps go as naive UTC text (pandas' fast path) read under ``SET LOCAL
    TIME ZONE 'UTC'``; missing values are ``\\N`` (so empty strings stay strings); floats keep
    full precision."""
    naive = frame.copy()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            naive[col] = frame[col].dt.tz_convert("UTC").dt.tz_localize(None)
    payload = naive.to_csv(index=False, header=False, na_rep=_CSV_NULL)
    target = ", ".join(f'"{c}"' for c in frame.columns)
    conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))  # ends with the transaction
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        sql = f'COPY "{table.name}" ({target}) FROM STDIN WITH (FORMAT csv, NULL {_CSV_NULL_SQL})'
        with cursor.copy(sql) as copy:
            copy.write(payload)
    finally:
        cursor.close()
    return len(frame)


def _upsert(conn: Connection, table: Table, frame: pd.DataFrame, *, keys: tuple[str, ...]) -> int:
    """Insert-or-update by ``keys`` with the dialect's ON CONFLICT, else delete-then-insert."""
    if frame.empty:
        return 0
    updates = [c for c in frame.columns if c not in keys]
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy_upsert(conn, table, frame, keys=keys, updates=updates)
    rows = _records(frame)
    if conn.dialect.name == "sqlite":
        stmt = sqlite_insert(table)
        excluded = {c: stmt.excluded[c] for c in updates}
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=excluded)
        conn.execute(stmt, rows)
        return len(rows)
    key_params = [{f"b_{k}": row[k] for k in keys} for row in rows]
    conn.execute(delete(table).where(*(table.c[k] == bindparam(f"b_{k}") for k in keys)), key_params)
    conn.execute(insert(table), rows)
    return len(rows)


def _copy_upsert(
    conn: Connection, table: Table, frame: pd.DataFrame, *, keys: tuple[str, ...], updates: list[str]
) -> int:
    """PostgreSQL bulk upsert: COPY into a transaction-scoped temp table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``."""
    staging = f"_stage_{table.name}"
    conn.execute(text(f'CREATE TEMP TABLE "{staging}" (LIKE "{table.name}") ON COMMIT DROP'))
    _copy_rows(conn, Table(staging, MetaData()), frame)
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    conflict = ", ".join(f'"{k}"' for k in keys)
    action = (
        "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in updates) if updates else "DO NOTHING"
    )
    conn.execute(
        text(
            f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}" '
            f"ON CONFLICT ({conflict}) {action}"
        )
    )
    return len(frame)


def _where_ids(stmt: Any, table: Table, unique_id: str | Sequence[str] | None) -> Any:
    if unique_id is None:
        return stmt
    ids = [unique_id] if isinstance(unique_id, str) else list(unique_id)
    return stmt.where(table.c.unique_id.in_(ids))
