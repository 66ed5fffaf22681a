"""Throwaway PostgreSQL databases on the server at 127.0.0.1:5432 (or FORESIGHT_TEST_PG_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from support.servers import missing_dependency

PG_ADMIN_URL = os.environ.get("FORESIGHT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def admin_engine() -> Engine:
    """An AUTOCOMMIT engine on the admin URL (dispose it after use).

    Skips when no server answers, except in CI (``CI`` set), where a missing server is a failure.
    """
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        admin.dispose()
        message = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc}"
        missing_dependency(message)
    return admin


def drop_databases(names: Iterable[str]) -> None:
    """Drop the named databases if they exist (sessions still on them are ended)."""
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def temporary_database(prefix: str = "foresight_test") -> Iterator[str]:
    """A fresh, uniquely named database, dropped afterwards; its SQLAlchemy URL.

    Skips when no server answers, except in CI (``CI`` set), where a missing server is a failure.
    """
    admin = admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
