"""Fixtures for connector tests: a migrated engine on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.store.db import make_engine, migrate


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty connector database (runs each test on SQLite and on PostgreSQL)."""
    built = make_engine(database_url)
    migrate(built)
    try:
        yield built
    finally:
        built.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on ``engine`` (``expire_on_commit=False``), closed afterwards."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def commit_elsewhere_before_first_write(
    engine: Engine, *, any_engine: bool = False
) -> Iterator[list[BaseException]]:
    """Just before the first INSERT/UPDATE sent through ``engine``, another connection commits.

    ``any_engine``: watch every engine of the process (code under test that builds its own, as
    the CLI does) instead of ``engine`` only; ``engine`` still names the database.

    On SQLite a transaction that already read cannot become a writer after that commit ("database
    is locked" at once); one that starts as a write makes the other wait instead. The other write
    runs on its own thread, which the block waits for at most 2 s before letting the write go on.
    Yields the other write's errors (expected: none).
    """
    other = make_engine(str(engine.url))
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def write_elsewhere() -> None:
        try:
            with other.begin() as conn:
                conn.execute(sa.text("UPDATE businesses SET name = name || '.'"))
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not threads and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            thread = threading.Thread(target=write_elsewhere)
            threads.append(thread)
            thread.start()
            thread.join(timeout=2)

    watched: Any = Engine if any_engine else engine
    sa.event.listen(watched, "before_cursor_execute", hook)
    try:
        yield errors
    finally:
        sa.event.remove(watched, "before_cursor_execute", hook)
        for thread in threads:
            thread.join(timeout=60)
        other.dispose()
    assert threads, "nothing was written: the test proves nothing"


@contextmanager
def statements_on(target: Engine | sa.Connection) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement (and its parameters) sent through ``target`` inside the block."""
    seen: list[tuple[str, Any]] = []

    def note(conn: object, cursor: object, sql: str, params: Any, *_: object) -> None:
        seen.append((sql, params))

    sa.event.listen(target, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(target, "before_cursor_execute", note)
