"""Engine, session and migration helpers (SQLite or PostgreSQL).

Nothing is built at import time: the edge (CLI, flows) calls ``make_engine(settings.database_url)``
and passes the engine (or sessions) inward.

SQLite engines run in WAL mode with a busy timeout and foreign keys on; SQLAlchemy emits ``BEGIN``
itself, so a connection opened with ``execution_options(sqlite_begin="IMMEDIATE")`` takes the write
lock when its transaction starts (used by the outbox to claim items atomically).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine | sa.Connection) -> bool:
    """True when the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine for ``url``.

    Args:
        url: ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://user@host:port/db``.
        **kwargs: Passed to ``sqlalchemy.create_engine``.

    Returns:
        The engine. For a SQLite file the parent folder is created.
    """
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(sa_url, **kwargs)
    database = sa_url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = sa.create_engine(sa_url, connect_args=connect_args, **kwargs)
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Let SQLAlchemy emit BEGIN itself and set WAL, busy timeout and foreign keys."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    """Start a deferred transaction, or an IMMEDIATE one when the connection asks for it."""
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
        raise ValueError(f"unknown sqlite_begin mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """Open a session: committed on a clean exit, rolled back on an exception, always closed.

    Args:
        engine: From ``make_engine``.

    Returns:
        A context manager yielding a ``sqlmodel.Session`` (``expire_on_commit=False`` so loaded rows
        stay readable after the commit).
    """
    with Session(engine, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini), optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database schema with Alembic.

    Args:
        engine: The database to upgrade.
        revision: Target revision (default ``head``).
    """
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
