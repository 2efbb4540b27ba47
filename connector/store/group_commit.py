"""Group commit: the short writes of many threads committed together by one writer thread.

``GroupCommit`` runs every queued write in ONE write transaction on its own thread, each inside a
``SAVEPOINT`` so a failing write rolls back alone, and each caller waits until its write is
committed. ``shared_writer(engine)`` gives every batch of the process the same writer; with
``apply`` the writes are data written a group at once (``connector.publishing.moves.apply_moves``).
Why and how: docs/publishing.md, "Write transactions".
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

T = TypeVar("T")

#: ``Session.info`` key set on the group's session (outbox moves then leave the commit to it).
GROUPED = "connector.store.group_commit"


@dataclass
class _Write(Generic[T]):
    """One queued write and, once done, its result or error."""

    fn: Any  # a function of the session, or a job for ``apply``
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """A writer thread committing the queued writes of other threads in shared transactions.

    Use as a context manager (the thread runs inside it); ``run(fn)`` from any thread.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        apply: Callable[[Session, list[Any]], list[Any]] | None = None,
        max_writes: int = 64,
    ) -> None:
        """Prepare the writer.

        Args:
            engine: The connector database.
            apply: Writes a group of jobs in the open transaction and returns one result per job
                (may raise: then the whole group fails). Default: jobs are functions of the
                session, each run in its own savepoint.
            max_writes: Most writes committed in one transaction.
        """
        self._engine = engine
        self._apply = apply
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

    def run(self, fn: Any) -> Any:
        """Run ``fn(session)`` (or hand the job ``fn`` to ``apply``) in the next group transaction
        and wait until it is committed.

        Args:
            fn: The write, a function of the session that must not commit or roll back; or the
                job given to ``apply``.

        Returns:
            What ``fn`` returned (ORM objects come back detached).

        Raises:
            Exception: What ``fn`` raised (its writes were rolled back, the group's others were
                not), or the group's commit error (then nothing of ``fn`` was written).
            RuntimeError: The writer is closed.
        """
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("the group-commit writer is not running")
        write: _Write[Any] = _Write(fn)
        self._queue.put(write)
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result

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
            if self._apply is not None:
                results = self._apply(session, [write.fn for write in batch])
                for write, result in zip(batch, results, strict=True):
                    write.result = result
            else:
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


_Apply = Callable[[Session, list[Any]], list[Any]] | None
_SHARED: dict[tuple[int, _Apply], tuple[GroupCommit, int]] = {}
_SHARED_LOCK = threading.Lock()


@contextmanager
def shared_writer(engine: Engine, apply: _Apply = None) -> Iterator[GroupCommit]:
    """The process's ``GroupCommit`` for ``engine`` (and ``apply``), running while in use.

    Args:
        engine: The connector database.
        apply: As for ``GroupCommit``.

    Returns:
        A context manager yielding the shared writer.
    """
    key = (id(engine), apply)
    with _SHARED_LOCK:
        writer, users = _SHARED.get(key, (None, 0))
        if writer is None:
            writer = GroupCommit(engine, apply=apply).__enter__()
        _SHARED[key] = (writer, users + 1)
    try:
        yield writer
    finally:
        with _SHARED_LOCK:
            writer, users = _SHARED[key]
            if users > 1:
                _SHARED[key] = (writer, users - 1)
            else:
                del _SHARED[key]
                writer.__exit__(None, None, None)
