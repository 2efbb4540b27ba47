"""Group commit: many threads' writes share transactions, each failing write rolls back alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.store.db import make_engine
from connector.store.group_commit import GROUPED, GroupCommit


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = make_engine(f"sqlite:///{tmp_path}/group.db")
    with built.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (n INTEGER PRIMARY KEY)")
    try:
        yield built
    finally:
        built.dispose()


def _insert(n: int) -> Callable[[Session], int]:
    def write(session: Session) -> int:
        assert session.info[GROUPED]
        session.connection().exec_driver_sql(f"INSERT INTO notes (n) VALUES ({n})")
        return n

    return write


def _notes(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.exec_driver_sql("SELECT n FROM notes").scalars())


def test_writes_of_many_threads_are_committed_in_fewer_transactions(engine: Engine) -> None:
    begun: list[str] = []
    sa.event.listen(engine, "begin", lambda conn: begun.append("begin"))
    results: list[int] = []
    with GroupCommit(engine) as writer:

        def worker(base: int) -> None:
            for i in range(20):
                results.append(writer.run(_insert(base + i)))
                assert base + i in _notes(engine)  # committed when run() returns

        threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert sorted(results) == [k * 100 + i for k in range(6) for i in range(20)]
    assert _notes(engine) == sorted(results)
    writes = len(begun) - 6 * 20  # each check above is one read transaction
    assert 1 <= writes <= 120


def test_a_failing_write_rolls_back_alone_and_raises_in_its_caller(engine: Engine) -> None:
    class Refused(Exception):
        pass

    def half_then_fail(session: Session) -> None:
        session.connection().exec_driver_sql("INSERT INTO notes (n) VALUES (2)")
        raise Refused("no")

    gate = threading.Event()
    outcomes: dict[str, object] = {}

    def slow_first(session: Session) -> None:
        gate.wait(5)  # lets the other writes queue into the same group
        session.connection().exec_driver_sql("INSERT INTO notes (n) VALUES (1)")

    with GroupCommit(engine) as writer:

        def call(name: str, fn: Callable[[Session], object]) -> None:
            try:
                outcomes[name] = writer.run(fn)
            except Refused as exc:
                outcomes[name] = exc

        threads = [
            threading.Thread(target=call, args=("first", slow_first)),
            threading.Thread(target=call, args=("failing", half_then_fail)),
            threading.Thread(target=call, args=("third", _insert(3))),
        ]
        for thread in threads:
            thread.start()
        gate.set()
        for thread in threads:
            thread.join(timeout=30)

    assert isinstance(outcomes["failing"], Refused)
    assert outcomes["third"] == 3
    assert _notes(engine) == [1, 3]


def test_a_closed_writer_refuses_new_writes(engine: Engine) -> None:
    writer = GroupCommit(engine)
    with writer:
        assert writer.run(_insert(7)) == 7
    with pytest.raises(RuntimeError, match="not running"):
        writer.run(_insert(8))
    assert _notes(engine) == [7]
