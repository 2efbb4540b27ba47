"""SQLite engines: WAL, busy timeout, foreign keys, and one writer at a time inside a process.

SQLAlchemy emits ``BEGIN`` itself, so a connection opened with
``execution_options(sqlite_begin="IMMEDIATE")`` (``connector.store.db.WRITE``) takes the write lock
when its transaction starts. Threads of one process that write through the same engine queue on an
in-process ``WriterGate`` (taken before ``BEGIN IMMEDIATE``, released right after the commit or
rollback) instead of SQLite's busy handler, which sleeps in growing steps while the lock is taken.
Other processes still meet ``BEGIN IMMEDIATE`` and the busy timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import ReturnTypeFromArgs

SQLITE_BUSY_TIMEOUT_MS = 30_000


class not_indexed(ReturnTypeFromArgs[Any]):
    """A column that SQLite's planner must not answer from an index: ``+items.status``.

    Without ``ANALYZE`` statistics SQLite guesses that an equality on an indexed column keeps
    about ten rows, so ``id IN (...11 ids...) AND status = 'publishing'`` searched the status
    index and read every claimed item of every business, per statement (the publish path's
    group commit and claim). The unary ``+`` leaves the value as it is and the term out of the
    index choice, so the primary key is used. Other databases get the plain column (their
    planners have statistics).
    """

    inherit_cache = True
    _register = False


@compiles(not_indexed)
def _plain_column(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(not_indexed, "sqlite")
def _unindexed_column(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def make_sqlite_engine(
    url: sa.URL, *, timeout_ms: int, gate: WriterGate | None = None, **kwargs: Any
) -> Engine:
    """A SQLite engine for ``url`` with the pragmas and a writer gate (a new one unless given).

    For a file database the parent folder is created.
    """
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    if database and database != ":memory:":
        # Publishing runs ~20 threads on one engine; a SQLite connection costs next to nothing.
        kwargs.setdefault("pool_size", 32)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", timeout_ms / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_on_connect(dbapi_connection, record, busy_timeout_ms=timeout_ms)

    sa.event.listen(engine, "connect", on_connect)
    (gate or WriterGate(timeout_ms / 1000)).install(engine)
    return engine


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
