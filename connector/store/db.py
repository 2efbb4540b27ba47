"""Engines, sessions and migrations, for SQLite or PostgreSQL.

Nothing is built at import time: the edge (CLI, flows) calls ``make_engine(settings.database_url)``
and passes the engine (or sessions) inward. A write transaction starts with the ``WRITE`` options
(``session(..., write=True)``, ``begin_write``); on SQLite see ``connector.store.sqlite``.
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

from connector.store.sqlite import SQLITE_BUSY_TIMEOUT_MS, make_sqlite_engine

#: Execution options of a write transaction: ``BEGIN IMMEDIATE`` on SQLite, nothing on PostgreSQL.
WRITE: dict[str, str] = {"sqlite_begin": "IMMEDIATE"}

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine | sa.Connection) -> bool:
    """True when the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout: float | None = None, **kwargs: Any) -> Engine:
    """Build an engine for ``url``.

    Args:
        url: ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://user@host:port/db``.
        busy_timeout: Seconds a statement waits for a lock another connection holds before it
            fails (SQLite: the busy timeout, default ``SQLITE_BUSY_TIMEOUT_MS``; PostgreSQL:
            ``lock_timeout``, default none: wait). The CLI passes its ``busy_timeout`` setting.
        **kwargs: Passed to ``sqlalchemy.create_engine``.

    Returns:
        The engine. For a SQLite file the parent folder is created.
    """
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        if busy_timeout is not None:
            connect_args = kwargs.setdefault("connect_args", {})
            connect_args["options"] = (
                connect_args.get("options", "") + f" -c lock_timeout={int(busy_timeout * 1000)}"
            ).strip()
        return sa.create_engine(sa_url, **kwargs)
    timeout_ms = SQLITE_BUSY_TIMEOUT_MS if busy_timeout is None else int(busy_timeout * 1000)
    return make_sqlite_engine(sa_url, timeout_ms=timeout_ms, **kwargs)


def is_busy_error(exc: BaseException) -> bool:
    """True when ``exc`` says another connection held a lock longer than the busy timeout.

    SQLite: "database is locked" / "database is busy"; PostgreSQL: ``lock_timeout`` expired
    (SQLSTATE 55P03, lock not available).
    """
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "55P03":
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


@contextmanager
def session(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """Open a session: committed on a clean exit, rolled back on an exception, always closed.

    Args:
        engine: From ``make_engine``.
        write: The session reads and then writes. On SQLite every transaction in it then starts
            as a write (``BEGIN IMMEDIATE``, after a commit in the middle too): a read snapshot
            cannot be upgraded to a write once another connection has committed ("database is
            locked" at once, no busy wait), and publishing commits all the time. Do not open
            another write session inside one.

    Returns:
        A context manager yielding a ``sqlmodel.Session`` (``expire_on_commit=False`` so loaded rows
        stay readable after the commit).
    """
    bind = engine.execution_options(**WRITE) if write else engine
    with Session(bind, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


def begin_write(session: Session) -> sa.Connection:
    """End the session's transaction (committed) and begin a write transaction in its place.

    On SQLite it starts with ``BEGIN IMMEDIATE``: what it reads cannot go stale before it writes,
    and it never meets "database is locked" for having read first. For a session that reads for
    a while (parsing a file, say) before a short read-then-write.
    """
    session.commit()
    return session.connection(execution_options=WRITE)


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
