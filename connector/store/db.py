"""Engine, session and migration helpers (SQLite or PostgreSQL).

Nothing is built at import time: the edge (CLI, flows) calls ``make_engine(settings.database_url)``
and passes the engine (or sessions) inward.

SQLite engines run in WAL mode with a busy timeout and foreign keys on; SQLAlchemy emits ``BEGIN``
itself, so a connection opened with ``execution_options(sqlite_begin="IMMEDIATE")`` takes the write
lock when its transaction starts (used by the outbox to claim items atomically).

Threads of one process that write through the same SQLite engine queue on an in-process writer
gate (``WriterGate``: a lock taken before ``BEGIN IMMEDIATE`` and released right after the commit
or rollback) instead of SQLite's busy handler, which sleeps in growing steps (up to 100 ms) while
the database lock is taken and so leaves it idle between short write transactions. Other processes
still meet ``BEGIN IMMEDIATE`` and the busy timeout. PostgreSQL engines are unchanged.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
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
_GATES: weakref.WeakKeyDictionary[Engine, WriterGate] = weakref.WeakKeyDictionary()


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
    database = sa_url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    if database and database != ":memory:":
        # Publishing runs ~20 threads on one engine; a SQLite connection costs next to nothing.
        kwargs.setdefault("pool_size", 32)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", timeout_ms / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = sa.create_engine(sa_url, connect_args=connect_args, **kwargs)

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_on_connect(dbapi_connection, record, busy_timeout_ms=timeout_ms)

    sa.event.listen(engine, "connect", on_connect)
    WriterGate(timeout_ms / 1000).install(engine)
    return engine


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


def _sqlite_on_connect(
    dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    """Let SQLAlchemy emit BEGIN itself and set WAL, busy timeout and foreign keys."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class WriterGate:
    """One writer at a time per SQLite engine inside this process, handed over without sleeping.

    ``install(engine)`` makes the engine's ``BEGIN IMMEDIATE``/``EXCLUSIVE`` transactions take the
    gate first and release it once the DBAPI commit or rollback has returned (also when the pool
    resets, closes or invalidates the connection). Deferred (read) transactions never wait. A thread
    that already holds the gate through another connection does not wait for itself, and a wait
    longer than ``timeout`` seconds goes on to SQLite's own lock (and its busy timeout) rather than
    hanging.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._state = threading.Lock()  # guards the two fields below
        self._holder: int | None = None  # id() of the DBAPI connection holding the gate
        self._owner: int | None = None  # its thread

    def install(self, engine: Engine) -> None:
        """Hook the gate into ``engine`` (a SQLite engine built by ``make_engine``)."""
        _GATES[engine] = self
        sa.event.listen(engine, "begin", self.begin)
        dialect = engine.dialect
        setattr(dialect, "do_commit", self._releasing(dialect.do_commit))  # noqa: B010
        setattr(dialect, "do_rollback", self._releasing(dialect.do_rollback))  # noqa: B010
        for name in ("checkin", "close", "invalidate", "soft_invalidate"):
            sa.event.listen(engine.pool, name, self._on_pool_event)

    @property
    def held(self) -> bool:
        """True while some connection holds the gate."""
        return self._lock.locked()

    def begin(self, conn: sa.Connection) -> None:
        """Start a deferred transaction, or take the gate and start an IMMEDIATE one."""
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
            raise ValueError(f"unknown sqlite_begin mode {mode!r}")
        if mode == "DEFERRED":
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        holder = id(conn.connection.dbapi_connection)
        gated = self._acquire(holder)
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if gated:
                self.release(holder)
            raise

    def release(self, holder: int) -> None:
        """Open the gate if the DBAPI connection ``holder`` holds it."""
        with self._state:
            if self._holder != holder:
                return
            self._holder = self._owner = None
            self._lock.release()

    def _acquire(self, holder: int) -> bool:
        """Take the gate for ``holder``; False when it went on without it (re-entry, timeout)."""
        if self._owner == threading.get_ident():
            return False
        if not self._lock.acquire(timeout=self.timeout):
            return False
        with self._state:
            self._holder, self._owner = holder, threading.get_ident()
        return True

    def _releasing(self, end: Callable[[Any], None]) -> Callable[[Any], None]:
        """Wrap a dialect's ``do_commit``/``do_rollback`` to open the gate once it returned."""

        def ended(dbapi_connection: Any) -> None:
            try:
                end(dbapi_connection)
            finally:
                raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
                self.release(id(raw))

        return ended

    def _on_pool_event(self, dbapi_connection: Any, *_args: Any) -> None:
        """A connection going back to the pool, closed or invalidated can't hold the gate."""
        if dbapi_connection is not None:
            self.release(id(dbapi_connection))


def writer_gate(engine: Engine) -> WriterGate | None:
    """The writer gate of a SQLite engine built by ``make_engine`` (None for PostgreSQL)."""
    return _GATES.get(engine)


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
    bind = engine.execution_options(sqlite_begin="IMMEDIATE") if write else engine
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
    return session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


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
