"""Engines and sessions. One engine per URL per process (re-created after a fork)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from hms_celery.errors import InfrastructureError, SettingsError, StoreNotMigratedError
from hms_celery.settings import get_settings

_engines: dict[tuple[int, str], Engine] = {}


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the client read while a worker writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured store), created on first use."""
    url = url or get_settings().effective_database_url
    key = (os.getpid(), url)  # engines must not cross a fork (prefork pool children)
    engine = _engines.get(key)
    if engine is None:
        engine = _create_engine(url)
        _engines[key] = engine
    return engine


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        timeout = int(get_settings().connect_timeout)
        # No pre-ping round trip per checkout: a dropped connection surfaces as a connection
        # error, SQLAlchemy invalidates the pool, and the task retries (autoretry).
        return create_engine(
            url, pool_recycle=3600, connect_args={"connect_timeout": max(timeout, 1)}
        )
    except (ArgumentError, ImportError) as exc:
        raise SettingsError(f"HMS_DATABASE_URL={safe_url(url)!r} cannot be used: {exc}") from None


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error.

    A database that cannot be reached raises :class:`InfrastructureError` naming the URL.
    """
    engine = get_engine(url)
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        _raise_mapped(exc, engine)
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def connection_scope(url: str | None = None) -> Iterator[Connection]:
    """A Core transaction (lighter than a Session: the hot paths of every task use it).

    Errors are mapped as in :func:`session_scope`.
    """
    engine = get_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        _raise_mapped(exc, engine)
        raise


@contextmanager
def statement_scope(url: str | None = None) -> Iterator[Connection]:
    """A connection in autocommit, for ONE statement: a single statement is atomic on its
    own, and psycopg2 would otherwise spend a round trip each on BEGIN and COMMIT.

    Errors are mapped as in :func:`session_scope`.
    """
    engine = get_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection
    except SQLAlchemyError as exc:
        _raise_mapped(exc, engine)
        raise


def check_database(url: str | None = None) -> None:
    """Raise :class:`InfrastructureError` unless the database answers a query."""
    with session_scope(url) as session:
        session.execute(text("SELECT 1"))


def dialect_insert(conn: Connection) -> Any:
    """``insert`` of ``conn``'s dialect (PostgreSQL's or SQLite's: both have
    ``on_conflict_do_nothing``)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def safe_url(url: object) -> str:
    """The URL with any password hidden (for messages and logs)."""
    return make_url(str(url)).render_as_string(hide_password=True)


def _raise_mapped(exc: SQLAlchemyError, engine: Engine) -> None:
    """Raise the :class:`InfrastructureError` that ``exc`` stands for, if any: a store
    without HMS's tables (never migrated), or one that cannot be reached."""
    if _is_missing_schema(exc):
        raise StoreNotMigratedError(
            f"the store has no HMS schema ({_short(exc)}): run `hms db upgrade`, or `hms up`, "
            "which migrates it",
            url=safe_url(engine.url),
        ) from exc
    if _is_connection_error(exc):
        raise InfrastructureError(
            f"database unreachable: {_short(exc)}", url=safe_url(engine.url)
        ) from exc


def _is_missing_schema(exc: SQLAlchemyError) -> bool:
    # SQLite: OperationalError "no such table"; PostgreSQL: SQLSTATE 42P01 undefined_table.
    orig = getattr(exc, "orig", None)
    return "no such table" in str(orig) or getattr(orig, "pgcode", None) == "42P01"


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _short(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def dispose_engines() -> None:
    """Close every pooled connection of this process."""
    for key, engine in list(_engines.items()):
        engine.dispose()
        del _engines[key]
