"""The forecast store's tables and their migration: what Grafana's capacity dashboard reads.

SQLAlchemy Core tables (``forecasts``, ``capacity_plan``, ``series``, ``actuals``,
``rightsizing``, ``scaling_actions``; shapes in ``docs/forecast-store.md``), the columns a writer
supplies for each, and the migrations that bring a store an older Foresight created up to date
in place: :func:`add_missing_columns` (nullable columns added since) and :func:`widen_to_text`. :class:`connectors.sinks.forecast_store.ForecastStore` reads and writes them.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from foresight.errors import DependencyUnavailableError

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
    # The model that made this series: the per-series champion (``auto`` picks one per series)
    # or the registered model itself when it forecasts every series alike.
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),  # the registered model's version
    Column("run_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("registered_model", Text),  # whose version model_version is, e.g. capacity-forecaster
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
    Column("target_utilisation", Float),  # the target capacity_needed is against (memory has its own)
    Column("start_jump", Float),  # first forecast step minus the last actual
    Column("start_noise", Float),  # the series' recent step noise (median |step|)
    Column("start_warning", Text),  # NULL: the forecast starts where the series is
    # The runway is the median's crossing (days_to_threshold); the p90 band's is the earliest
    # plausible one, and the crossing's chance within the horizon comes from the same band.
    Column("days_to_threshold_earliest", Float),  # NULL: even the upper band stays below
    Column("crossing_probability", Float),  # 0..1, P(reaching the threshold within the horizon)
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
    Column("monthly_cost_change", Float),  # recommended - current: + costs more, - saves
    Column("sized_instance_type", Text),  # what sizing alone picked; differs on a held change
    Column("demand_vcpu", Float),
    Column("demand_memory_gib", Float),
    Column("peak_upper_utilisation", Float),  # forecast upper quantile on the recommended type, %
    Column("exceed_probability", Float),  # P(demand > recommended capacity) at the forecast peak
    Column("current_exceed_probability", Float),  # the same on the current type: the risk of no change
    Column("action", Text, nullable=False),  # downsize / upsize / keep / hold / none_fits / ...
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


_MIGRATION_LOCK_TIMEOUT = "10s"


def add_missing_columns(engine: Engine, tables: Iterable[Table]) -> list[str]:
    """ADD the nullable columns ``tables`` declare that the live tables lack (a store an older
    Foresight created); returns the ``table.column`` names added (none the second time).

    SQLite and PostgreSQL alike: ``ALTER TABLE ... ADD COLUMN`` of a nullable column without a
    default changes no row (PostgreSQL only touches its catalogue). A declared column that is
    NOT NULL cannot be added to rows that exist, so it is refused with the table's name.
    """
    live = inspect(engine)
    missing = {
        table: [c for c in table.columns if c.name not in {col["name"] for col in live.get_columns(table.name)}]
        for table in tables if live.has_table(table.name)
    }
    missing = {table: columns for table, columns in missing.items() if columns}
    if not missing:
        return []
    postgres = engine.dialect.name == "postgresql"
    added: list[str] = []
    try:
        with engine.begin() as conn:
            quote = conn.dialect.identifier_preparer.quote
            if postgres:
                conn.execute(text(f"SET LOCAL lock_timeout = '{_MIGRATION_LOCK_TIMEOUT}'"))
            for table, columns in missing.items():
                for column in columns:
                    if not column.nullable:
                        raise ValueError(f"forecast store: {table.name}.{column.name} is NOT NULL and missing; "
                                         "it cannot be added to existing rows")
                    kind = column.type.compile(dialect=conn.dialect)
                    # Two runs migrating at once: PostgreSQL's IF NOT EXISTS makes the second a no-op.
                    guard = "IF NOT EXISTS " if postgres else ""
                    conn.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {guard}"
                                      f"{quote(column.name)} {kind}"))
                    added.append(f"{table.name}.{column.name}")
    except OperationalError as exc:
        raise _migration_blocked("add the new columns", exc) from exc
    return added


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
        raise _migration_blocked("widen the id columns to text", exc) from exc
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


def _migration_blocked(what: str, exc: OperationalError) -> DependencyUnavailableError:
    """A migration step that could not take its lock (a long dashboard query must not hold a run
    at start-up for long): one line, retried by the next run."""
    first_line = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
    return DependencyUnavailableError(
        f"forecast store: could not {what}: {first_line}",
        hint=f"another session held a lock for over {_MIGRATION_LOCK_TIMEOUT}; the next run retries",
    )
