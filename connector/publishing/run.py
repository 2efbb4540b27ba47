"""The state of publishing one claimed item: its Nomi calls' attempt rows and its outbox writes.

Attempt rows and progress are kept in memory and written together with the next save, which
happens before any further Nomi write of the item, right after an image upload, and with the
item's final state. An item whose only write is its record costs one write transaction, and with
a ``connector.store.group_commit.GroupCommit`` the writes of a batch's threads share transactions.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from sqlmodel import Session

from connector.history import records as history
from connector.publishing import outbox
from connector.publishing.book import PublishBook
from connector.publishing.moves import Move, apply_moves
from connector.publishing.outcomes import attempt_outcome, error_code
from connector.rules.money import to_money
from connector.rules.vocabulary import AttemptOutcome
from connector.store.base import utcnow
from connector.store.group_commit import GroupCommit
from connector.store.models import Item
from nomi.client import NomiClient
from nomi.errors import NomiError

T = TypeVar("T")

#: The HTTP status of the last response this thread received from a watched Nomi client.
_last_response = threading.local()


def _note_status(response: httpx.Response) -> None:
    """httpx response hook: remember the status (hooks run in the thread that sent the request)."""
    _last_response.status = response.status_code


def watch_statuses(nomi: NomiClient) -> None:
    """Let the attempt rows of ``nomi``'s successful calls carry the HTTP status Nomi answered.

    The client returns typed records, not responses; a response hook (``NomiSession.on_response``)
    notes each status per thread, and ``ItemRun.call`` reads the one of its own call.
    """
    nomi.on_response(_note_status)


def base_total(
    total: Decimal | None, currency: str, base_currency: str | None, rate: Decimal | None
) -> Decimal | None:
    """``total`` in the organisation's base currency, when the item alone can say it.

    The total itself when the item is in the base currency; ``total x rate`` rounded to the
    penny (``connector.rules.money``) when the item gives its exchange rate; otherwise None (the
    record Nomi creates may say it: ``ItemRun.call`` then takes Nomi's ``base_total``).
    """
    if total is None or base_currency is None:
        return None
    if currency == base_currency:
        return to_money(total)
    if rate is not None:
        return to_money(total * rate)
    return None


def document_columns(item: Item, base_currency: str | None) -> dict[str, Any]:
    """The document columns of every attempt row of ``item`` (docs/history.md)."""
    return {
        "document_type": str(item.document_type),
        "currency": item.currency,
        "total": item.total,
        "base_currency": base_currency,
        "base_total": base_total(item.total, item.currency, base_currency, item.exchange_rate),
    }


@dataclass(frozen=True)
class Finish:
    """One item's write for the batch's group commit: a guarded move and its new attempt rows."""

    move: Move
    attempts: list[dict[str, Any]]


def write_finishes(session: Session, jobs: list[Finish]) -> list[bool]:
    """Apply the moves and append every attempt row, in the caller's open write transaction.

    The attempt rows of a lost claim are appended too: they record calls really made.

    Args:
        session: A session in a write transaction (``GroupCommit`` gives one).
        jobs: The items' writes.

    Returns:
        Per job, True when the move was applied (False: the run had lost the claim).
    """
    applied = apply_moves(session, [job.move for job in jobs])
    history.record_attempts(session, [row for job in jobs for row in job.attempts])
    return applied


class ItemRun:
    """One claimed item being published: its calls, unsaved attempt rows and progress."""

    def __init__(
        self,
        session: Session,
        nomi: NomiClient,
        item: Item,
        run_id: uuid.UUID,
        book: PublishBook,
        writer: GroupCommit | None = None,
    ) -> None:
        self.s, self.nomi, self.item, self.run_id, self.book = session, nomi, item, run_id, book
        self.writer = writer
        self.flags: list[str] = []
        self.pending: list[dict[str, Any]] = []  # attempt rows not written yet
        self.progress: dict[str, Any] = {}  # moves.PROGRESS_FIELDS values not written yet
        self.document = document_columns(item, book.base_currency(session))
        watch_statuses(nomi)

    def call(self, step: str, key: str | None, send: Callable[[], T]) -> T:
        """Make one Nomi call and append its attempt row, whatever happens."""
        started = time.monotonic()
        _last_response.status = None
        try:
            result = send()
        except NomiError as exc:
            self.attempt(
                step,
                key,
                attempt_outcome(exc),
                started,
                status=exc.status,
                code=error_code(exc),
                message=exc.message,
            )
            raise
        record_id = getattr(result, "id", None)
        status = getattr(_last_response, "status", None)
        self._take_base_total(result)
        self.attempt(
            step, key, AttemptOutcome.PUBLISHED, started, status=status, record_id=record_id
        )
        return result

    def _take_base_total(self, result: object) -> None:
        """Take Nomi's ``base_total`` from a created record when the item could not say it.

        Only with a mirrored base currency: an amount without its currency is not recorded.
        """
        doc = self.document
        nomi_total = getattr(result, "base_total", None)
        known = doc["base_total"] is not None or doc["base_currency"] is None
        if not known and isinstance(nomi_total, Decimal):
            doc["base_total"] = nomi_total  # Nomi applied its own daily rate

    def attempt(
        self,
        step: str,
        key: str | None,
        outcome: AttemptOutcome,
        started: float,
        *,
        status: int | None = None,
        record_id: str | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Note one ``PublishAttempt`` row (written with the next save or the final move)."""
        self.pending.append(
            {
                "run_id": self.run_id,
                "item_id": self.item.id,
                "business_id": self.item.business_id,
                "step": step,
                "idempotency_key": key,
                "outcome": outcome.value,
                "http_status": status,
                "nomi_record_id": record_id,
                "error_code": code,
                "error_message": message,
                "latency_ms": int((time.monotonic() - started) * 1000),
                "at": utcnow(),
                **self.document,
            }
        )

    def save(self, **progress: Any) -> None:
        """Write the unsaved attempt rows and progress (plus ``progress``) in one transaction."""
        self.progress.update(progress)
        if self.pending or self.progress:
            self._write(Move.progressed(self.item.id, self.run_id, **self.progress))

    def end(self, build: Callable[..., Move], **values: Any) -> None:
        """Finish the claim with a ``Move`` constructor (unsaved rows and progress too)."""
        self._write(build(self.item.id, self.run_id, progress=self.progress, **values))

    def write(self, move: Move) -> None:
        """Apply a guarded move built by the caller (a correction's), with the unsaved rows."""
        self._write(move)

    def _write(self, move: Move) -> None:
        """Apply ``move`` with the unsaved attempt rows: in the batch's group transaction, or alone.

        Raises:
            outbox.ClaimLostError: The run no longer holds the claim (the attempt rows are kept).
        """
        job = Finish(move, self.pending)
        self.s.commit()  # end any read transaction: the connection goes back to the pool
        if self.writer is not None:
            applied = self.writer.run(job)
        else:
            self.s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                [applied] = write_finishes(self.s, [job])
                self.s.commit()
            except BaseException:
                self.s.rollback()
                raise
        self.pending, self.progress = [], {}
        if not applied:
            raise outbox.ClaimLostError(f"item {move.item_id} is not claimed by run {move.run_id}")
