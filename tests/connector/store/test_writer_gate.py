"""The in-process writer gate of SQLite engines (``connector.store.sqlite.WriterGate``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.store.db import make_engine
from connector.store.sqlite import WriterGate, make_sqlite_engine

IMMEDIATE = {"sqlite_begin": "IMMEDIATE"}


GATES: dict[Engine, WriterGate] = {}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite engine as ``make_engine`` builds it, with a gate the test can look at."""
    gate = WriterGate(timeout=30.0)
    built = make_sqlite_engine(
        sa.make_url(f"sqlite:///{tmp_path}/gate.db"), timeout_ms=30_000, gate=gate
    )
    GATES[built] = gate
    with built.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    try:
        yield built
    finally:
        GATES.pop(built)
        built.dispose()


def _gate(engine: Engine) -> WriterGate:
    return GATES[engine]


def _bump(session: Session) -> None:
    """Read-modify-write the counter inside an IMMEDIATE transaction."""
    conn = session.connection(execution_options=IMMEDIATE)
    n = conn.exec_driver_sql("SELECT n FROM counter").scalar_one()
    conn.exec_driver_sql(f"UPDATE counter SET n = {n + 1}")
    session.commit()


def test_many_threads_writing_at_once_lose_no_update_and_leave_the_gate_open(
    engine: Engine,
) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                with Session(engine) as session:
                    _bump(session)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar_one() == 200
    assert not _gate(engine).held


def test_the_gate_is_held_only_during_an_immediate_transaction(engine: Engine) -> None:
    gate = _gate(engine)
    with Session(engine) as session:
        session.connection().exec_driver_sql("SELECT n FROM counter").scalar_one()
        assert not gate.held  # a deferred (read) transaction never takes it
        session.commit()
        session.connection(execution_options=IMMEDIATE)
        assert gate.held
        session.commit()
        assert not gate.held


@pytest.mark.parametrize("ending", ["rollback", "close", "error"])
def test_the_gate_opens_however_the_write_transaction_ends(engine: Engine, ending: str) -> None:
    gate = _gate(engine)
    session = Session(engine)
    conn = session.connection(execution_options=IMMEDIATE)
    conn.exec_driver_sql("UPDATE counter SET n = 99")
    assert gate.held
    if ending == "rollback":
        session.rollback()
    elif ending == "close":
        session.close()
    else:
        with pytest.raises(sa.exc.OperationalError):
            conn.exec_driver_sql("UPDATE no_such_table SET n = 1")
        session.rollback()
    session.close()

    assert not gate.held
    with engine.connect() as check:
        assert check.exec_driver_sql("SELECT n FROM counter").scalar_one() == 0


def test_a_waiting_writer_gets_the_gate_as_soon_as_the_holder_commits(engine: Engine) -> None:
    gate = _gate(engine)
    holder = Session(engine)
    holder.connection(execution_options=IMMEDIATE).exec_driver_sql("UPDATE counter SET n = 1")
    started, done = threading.Event(), threading.Event()

    def waiter() -> None:
        started.set()
        with Session(engine) as session:
            _bump(session)
        done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait(5)
    assert not done.wait(0.3)  # queued behind the holder
    holder.commit()
    holder.close()
    assert done.wait(5)
    thread.join(5)
    assert not gate.held
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar_one() == 2


def test_make_engine_gates_sqlite_engines_and_not_postgres_ones(tmp_path: Path) -> None:
    def gated(engine: Engine) -> bool:
        """The gate wraps the dialect's commit (a function on the instance, not the class's)."""
        return (
            getattr(engine.dialect.do_commit, "__func__", None)
            is not type(engine.dialect).do_commit
        )

    sqlite = make_engine(f"sqlite:///{tmp_path}/plain.db")
    postgres = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    try:
        assert gated(sqlite)
        assert not gated(postgres)
    finally:
        sqlite.dispose()
        postgres.dispose()
