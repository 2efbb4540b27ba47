"""Group commit: the short writes of many threads committed together by one writer thread.

SQLite has one writer. When twenty publishing threads each commit their own small transaction,
they queue for the write lock one by one, and under the GIL each waiting hand-over costs more than
the write itself. ``GroupCommit`` runs every queued write (a function of a session) in ONE write
transaction on its own thread, each inside a ``SAVEPOINT`` so one failing write (a lost claim)
rolls back alone, then commits once; each caller waits until its write is committed (or failed),
so "committed before the next Nomi call" still holds for every caller.

Outbox moves run inside it unchanged: the session is marked ``GROUPED`` and
``connector.outbox`` then neither commits nor rolls back itself (the group's transaction does).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

T = TypeVar("T")

#: ``Session.info`` key set on the group's session (outbox moves then leave the commit to it).
GROUPED = "connector.group_commit"


@dataclass
class _Write(Generic[T]):
    """One queued write and, once done, its result or error."""

    fn: Callable[[Session], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """A writer thread committing the queued writes of other threads in shared transactions.

    Use as a context manager (the thread runs inside it); ``run(fn)`` from any thread.
    """

    def __init__(self, engine: Engine, *, max_writes: int = 64) -> None:
        """Prepare the writer.

        Args:
            engine: The connector database.
            max_writes: Most writes committed in one transaction.
        """
        self._engine = engine
        self._max = max(1, max_writes)
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="nomi-group-commit", daemon=True)
        self._closed = False

    def __enter__(self) -> GroupCommit:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in the next group transaction and wait until it is committed.

        Args:
            fn: The write; it must not commit or roll back the session itself.

        Returns:
            What ``fn`` returned (ORM objects come back detached).

        Raises:
            Exception: What ``fn`` raised (its writes were rolled back, the group's others were
                not), or the group's commit error (then nothing of ``fn`` was written).
            RuntimeError: The writer is closed.
        """
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("the group-commit writer is not running")
        write: _Write[T] = _Write(fn)
        self._queue.put(write)
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _loop(self) -> None:
        """Take what is queued, commit it as one transaction, repeat until closed."""
        try:
            self._serve()
        finally:  # normally empty; if the writer itself broke, nobody may wait forever
            self._closed = True
            while True:
                try:
                    left = self._queue.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    left.error = RuntimeError("the group-commit writer stopped")
                    left.done.set()

    def _serve(self) -> None:
        """The writer's loop."""
        with Session(self._engine, expire_on_commit=False) as session:
            session.info[GROUPED] = True
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    return
                batch: list[_Write[Any]] = [first]
                while len(batch) < self._max:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._commit(session, batch)

    def _commit(self, session: Session, batch: list[_Write[Any]]) -> None:
        """One write transaction for ``batch``, a savepoint per write; wake every caller."""
        try:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            for write in batch:
                try:
                    with session.begin_nested():
                        write.result = write.fn(session)
                except Exception as exc:  # the write's own failure: rolled back alone
                    write.error = exc
            session.commit()
        except BaseException as exc:
            session.rollback()
            for write in batch:
                if write.error is None:
                    write.result, write.error = None, exc
        finally:
            session.expunge_all()
            for write in batch:
                write.done.set()
