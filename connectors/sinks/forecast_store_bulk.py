"""Bulk row writes into the forecast store, inside the caller's transaction, per database.

PostgreSQL with psycopg: ``COPY`` of pandas-rendered CSV, and upserts through a COPY-filled
temporary table with one ``INSERT ... ON CONFLICT``. SQLite: ``executemany``, upserts with its
``ON CONFLICT``. Any other database: ``executemany``, upserts as delete-then-insert. Never one
round trip per row.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import MetaData, Table, bindparam, delete, insert, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection


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


def insert_rows(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
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


def upsert_rows(conn: Connection, table: Table, frame: pd.DataFrame, *, keys: tuple[str, ...]) -> int:
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
