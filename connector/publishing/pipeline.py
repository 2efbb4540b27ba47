"""Publishing claimed items to Nomi exactly once: contact, record, image, payment, finish.

``publish_item`` takes ONE item this run has claimed (``connector.publishing.outbox.claim_ready``)
through the
pipeline of PRODUCT.md "Publishing to Nomi" and always leaves it in a recorded state: ``published``,
back to ``review`` (held, with reasons), or back to ``ready`` with its last error shown. Every call
to Nomi appends a ``PublishAttempt``. ``connector.publishing.batch`` runs many on a few threads.

The exactly-once argument (keys, ``source_id`` look-ups, claims, crash points) is in
docs/publishing.md. Nomi errors never escape: they become an ``ItemOutcome`` whose ``stop`` tells
the batch whether to go on.

Write transactions are few (SQLite has one writer): attempt rows and progress are kept in memory
and written together with the next save, which happens before any further Nomi write of the item,
right after an image upload, and with the item's final state. An item whose only write is its
record costs one write transaction (attempt rows + ``published``), and with a
``connector.store.group_commit.GroupCommit`` (``publish_batch`` uses one) the writes of the batch's
threads share transactions.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import Session, select

from connector.history import records as history
from connector.items.context import facts_from_item
from connector.publishing import outbox
from connector.publishing.book import PublishBook
from connector.publishing.payloads import (
    RECORD_EXPENSE,
    RECORD_SALES_INVOICE,
    STEP_ATTACHMENT,
    STEP_CLAIMANT,
    STEP_PAYMENT,
    STEP_RESOLVE,
    attachment_name,
    contact_body,
    contact_key,
    contact_kind,
    expense_body,
    payment_body,
    record_step,
    sales_invoice_body,
)
from connector.rules.engine import ZERO_RATE_NOTE, resolve
from connector.rules.facts import Resolution, RulesContext
from connector.rules.names import normalise_name
from connector.rules.vocabulary import AttemptOutcome, ItemKind, ItemStatus
from connector.store.base import utcnow
from connector.store.group_commit import GroupCommit
from connector.store.history_tables import PublishAttempt
from connector.store.models import Customer, Item, Supplier
from nomi.client import NomiClient
from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    NomiError,
    OutcomeUnknownError,
    RejectedError,
)

T = TypeVar("T")

#: ``last_error_code`` of items given back unpublished for a reason that passes by itself.
CONNECTION_EXPIRED = "connection_expired"
DAILY_LIMIT = "daily_limit"
TRANSIENT = "transient"
OUTCOME_UNKNOWN = "outcome_unknown"
INTERNAL_ERROR = "internal_error"
RETRYABLE_ERROR_CODES = frozenset(
    {CONNECTION_EXPIRED, DAILY_LIMIT, TRANSIENT, OUTCOME_UNKNOWN, INTERNAL_ERROR}
)

#: Why a batch stopped early (``ItemOutcome.stop`` / ``BatchResult.stopped``).
STOP_TRANSIENT = "transient"
STOP_CONNECTION_LOST = "connection_lost"
STOP_DAILY_LIMIT = "daily_limit"

#: Outcomes of an item that are not ``AttemptOutcome`` values.
GIVEN_BACK = "given_back"
CLAIM_LOST = "claim_lost"


@dataclass(frozen=True)
class ItemOutcome:
    """How publishing one claimed item ended (``outcome``: an ``AttemptOutcome`` value or
    ``given_back``/``claim_lost``); ``stop`` is set when the batch must stop."""

    item_id: uuid.UUID
    outcome: str
    nomi_record_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    image_error: str | None = None
    payment_recorded: bool = False
    flags: tuple[str, ...] = ()
    stop: str | None = None


@dataclass(frozen=True)
class Finish:
    """One item's write for the batch's group commit: a guarded move and its new attempt rows."""

    move: outbox.Move
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
    applied = outbox.apply_moves(session, [job.move for job in jobs])
    history.record_attempts(session, [row for job in jobs for row in job.attempts])
    return applied


class _Held(Exception):
    """The item cannot be published as it stands (goes back to review with this reason)."""


def publish_item(
    session: Session,
    nomi: NomiClient,
    item: Item,
    run_id: uuid.UUID,
    ctx: RulesContext,
    *,
    book: PublishBook | None = None,
    writer: GroupCommit | None = None,
) -> ItemOutcome:
    """Publish one item claimed by ``run_id`` and record how it ended.

    Args:
        session: A session on the connector database (used by this thread only).
        nomi: The client of the business's Nomi organisation.
        item: The claimed item (status ``publishing``, ``claimed_by_run == run_id``).
        run_id: The run holding the claim.
        ctx: The business's rules context (``connector.items.context.build_context``, once per
        batch).
        book: Shared state of the batch (made for the item's business when omitted).
        writer: Where the item's outbox writes are committed (default: ``session`` itself).

    Returns:
        The outcome; ``stop`` says whether the batch must stop (transient failure, lost
        connection, daily limit). Nomi errors are recorded, never raised.

    Raises:
        Exception: Only unexpected errors (bugs, database down), after giving the claim back.
    """
    book = book or PublishBook.for_business(session, item.business_id)
    res = resolve(facts_from_item(item), ctx)
    run = _Run(session, nomi, item, run_id, book, writer)
    try:
        if not res.is_ready:
            raise _Held("; ".join(res.reasons))
        return run.publish(res)
    except _Held as held:
        return run.hold(str(held), list(res.reasons) or [str(held)])
    except outbox.ClaimLostError as exc:
        return ItemOutcome(item.id, CLAIM_LOST, message=str(exc))
    except RejectedError as exc:
        return run.rejected(exc)
    except ConnectionLostError as exc:
        return run.give_back(CONNECTION_EXPIRED, exc)
    except DailyLimitError as exc:
        return run.give_back(DAILY_LIMIT, exc)
    except OutcomeUnknownError as exc:
        return run.give_back(OUTCOME_UNKNOWN, exc)
    except NomiError as exc:
        return run.give_back(TRANSIENT, exc)
    except Exception:
        session.rollback()
        with contextlib.suppress(outbox.ClaimLostError):
            run.end(
                outbox.Move.released,
                error_code=INTERNAL_ERROR,
                error_message="publishing stopped on an internal error; see the run's logs",
            )
        raise


class _Run:
    """The steps of publishing one item (state kept between steps)."""

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
        self.progress: dict[str, Any] = {}  # outbox.PROGRESS_FIELDS values not written yet

    # ---- the pipeline ------------------------------------------------------------------------

    def publish(self, res: Resolution) -> ItemOutcome:
        self.flags.extend(note for note in res.notes if note.endswith(ZERO_RATE_NOTE))
        contact_id = self.contact(res)
        user_id = self.claimant()
        record_id, resumed = self.record(res, contact_id, user_id)
        image_published, image_error = self.image(res, record_id)
        payment_recorded = self.payment(res, record_id, resumed)
        is_sales = self.item.kind == ItemKind.SALES
        self.end(
            outbox.Move.published,
            nomi_record_id=record_id,
            nomi_record_type=RECORD_SALES_INVOICE if is_sales else RECORD_EXPENSE,
            image_published=image_published,
            image_error=image_error,
            payment_recorded=payment_recorded,
        )
        return ItemOutcome(
            self.item.id,
            AttemptOutcome.PUBLISHED.value,
            nomi_record_id=record_id,
            image_error=image_error,
            payment_recorded=payment_recorded,
            flags=tuple(self.flags),
        )

    def contact(self, res: Resolution) -> str | None:
        """The Nomi contact id, creating the contact first when the resolution says so."""
        if res.contact_id is not None or res.new_contact_name is None:
            return res.contact_id
        kind, name = contact_kind(self.item), res.new_contact_name
        with self.book.contact_lock(kind, name):
            found = self.book.known_contact(kind, name) or self._stored_contact(kind, name)
            if found is None:
                key = contact_key(self.book.connection_id, kind, name)
                body = contact_body(name, self.item.currency)
                create = (
                    self.nomi.create_customer if kind == "customer" else self.nomi.create_supplier
                )
                created = self.call("contact", key, lambda: create(body, key))
                self._store_contact(kind, created.id, created.name)
                found = created.id
            self.book.remember_contact(kind, name, found)
        self.progress["resolved_contact_nomi_id"] = found
        return found

    def claimant(self) -> str | None:
        """The claimant's Nomi user id for an expense claim (looked up by email if missing)."""
        if self.item.kind != ItemKind.EXPENSE_CLAIM:
            return None
        if self.item.claimant_nomi_user_id:
            return self.item.claimant_nomi_user_id
        email = self.item.claimant_email or ""
        started = time.monotonic()
        user_id = self.book.user_id(self.nomi, email) if email else None
        if user_id is None:
            self.attempt(STEP_CLAIMANT, None, AttemptOutcome.HELD, started, message="not found")
            raise _Held(f"claimant '{email}' is not a user of the Nomi organisation")
        return user_id

    def record(
        self, res: Resolution, contact_id: str | None, user_id: str | None
    ) -> tuple[str, bool]:
        """Create the expense or sales invoice once; returns (record id, resumed an earlier one)."""
        if self.item.nomi_record_id:
            return self.item.nomi_record_id, True
        step = record_step(self.item)
        key = outbox.idempotency_key(self.item.id, self.item.publish_generation, step)
        is_sales = self.item.kind == ItemKind.SALES
        if self._tried_before(key):
            started = time.monotonic()
            finder = (
                self.nomi.find_sales_invoice_by_source_id
                if is_sales
                else self.nomi.find_expense_by_source_id
            )
            found = finder(str(self.item.id))
            if found is not None:
                self.attempt(step, key, AttemptOutcome.RECOVERED, started, record_id=found.id)
                self._save_record(found.id, step)
                return found.id, True
        if is_sales:
            if contact_id is None:
                raise _Held("no customer to invoice")
            invoice = sales_invoice_body(self.item, res, contact_id=contact_id)
            created_id = self.call(
                step, key, lambda: self.nomi.create_sales_invoice(invoice, key)
            ).id
        else:
            expense = expense_body(self.item, res, contact_id=contact_id, user_id=user_id)
            created_id = self.call(step, key, lambda: self.nomi.create_expense(expense, key)).id
        self._save_record(created_id, step)
        return created_id, False

    def image(self, res: Resolution, record_id: str) -> tuple[bool, str | None]:
        """Upload the document image; a refusal flags the item instead of failing it."""
        if not res.attach_image or self.item.image_path is None:
            return False, None
        if self.item.image_published:
            return True, None
        path = Path(self.item.image_path)
        if not path.is_file():
            return False, f"image file not found: {path.name}"
        content = path.read_bytes()
        self.save()  # the record id is durable before a second write depends on it
        key = outbox.idempotency_key(self.item.id, self.item.publish_generation, STEP_ATTACHMENT)
        name = attachment_name(self.item)
        kind = self.item.image_content_type or "application/octet-stream"
        upload = (
            self.nomi.upload_sales_invoice_attachment
            if self.item.kind == ItemKind.SALES
            else self.nomi.upload_expense_attachment
        )
        try:
            self.call(STEP_ATTACHMENT, key, lambda: upload(record_id, name, content, kind, key))
        except RejectedError as exc:
            error = f"{_code(exc)}: {exc.detail or exc.message}"
            self.progress["image_error"] = error
            return False, error
        self.save(image_published=True)
        return True, None

    def payment(self, res: Resolution, record_id: str, resumed: bool) -> bool:
        """Record the payment of a paid sales item into its linked bank account."""
        body = payment_body(self.item, res)
        if body is None:
            return False
        if self.item.payment_recorded:
            return True
        if resumed:
            invoice = self.nomi.find_sales_invoice_by_source_id(str(self.item.id))
            if invoice is not None and invoice.payments:
                self.progress["payment_recorded"] = True
                return True
        key = outbox.idempotency_key(self.item.id, self.item.publish_generation, STEP_PAYMENT)
        self.save()  # the invoice id is durable before the payment depends on it
        try:
            self.call(
                STEP_PAYMENT, key, lambda: self.nomi.add_sales_invoice_payment(record_id, body, key)
            )
        except RejectedError as exc:
            self.flags.append(f"payment refused: {_code(exc)}: {exc.detail or exc.message}")
            return False
        self.progress["payment_recorded"] = True
        return True

    # ---- endings -----------------------------------------------------------------------------

    def hold(self, message: str, reasons: list[str]) -> ItemOutcome:
        self.attempt(STEP_RESOLVE, None, AttemptOutcome.HELD, time.monotonic(), message=message)
        self.end(outbox.Move.released, to_status=ItemStatus.REVIEW, review_reasons=reasons)
        return ItemOutcome(self.item.id, AttemptOutcome.HELD.value, message=message)

    def rejected(self, exc: RejectedError) -> ItemOutcome:
        code, message = _code(exc), exc.detail or exc.message
        self.end(outbox.Move.failed, error_code=code, error_message=message, rejected=True)
        return ItemOutcome(
            self.item.id, AttemptOutcome.REJECTED.value, error_code=code, message=message
        )

    def give_back(self, code: str, exc: NomiError) -> ItemOutcome:
        """Give the claim back to ``ready`` (same generation) with the error shown."""
        self.end(outbox.Move.released, error_code=code, error_message=exc.message)
        stop = {
            CONNECTION_EXPIRED: STOP_CONNECTION_LOST,
            DAILY_LIMIT: STOP_DAILY_LIMIT,
        }.get(code, STOP_TRANSIENT)
        return ItemOutcome(
            self.item.id, GIVEN_BACK, error_code=code, message=exc.message, stop=stop
        )

    # ---- writes ------------------------------------------------------------------------------

    def save(self, **progress: Any) -> None:
        """Write the unsaved attempt rows and progress (plus ``progress``) in one transaction."""
        self.progress.update(progress)
        if self.pending or self.progress:
            self._write(outbox.Move.progressed(self.item.id, self.run_id, **self.progress))

    def end(self, build: Callable[..., outbox.Move], **values: Any) -> None:
        """Finish the claim with an ``outbox.Move`` constructor (unsaved rows and progress too)."""
        self._write(build(self.item.id, self.run_id, progress=self.progress, **values))

    def _write(self, move: outbox.Move) -> None:
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

    # ---- helpers -----------------------------------------------------------------------------

    def call(self, step: str, key: str | None, send: Callable[[], T]) -> T:
        """Make one Nomi call and append its attempt row, whatever happens."""
        started = time.monotonic()
        try:
            result = send()
        except NomiError as exc:
            self.attempt(
                step,
                key,
                _attempt_outcome(exc),
                started,
                status=exc.status,
                code=_code(exc),
                message=exc.message,
            )
            raise
        record_id = getattr(result, "id", None)
        self.attempt(step, key, AttemptOutcome.PUBLISHED, started, record_id=record_id)
        return result

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
            }
        )

    def _tried_before(self, key: str) -> bool:
        """True when history shows an attempt (or a recovery) under this record key."""
        if self.book.tried is not None:
            return self.item.id in self.book.tried
        found = self.s.exec(
            select(PublishAttempt.id)
            .where(PublishAttempt.item_id == self.item.id, PublishAttempt.idempotency_key == key)
            .limit(1)
        ).first()
        self.s.commit()  # don't hold a connection (and a read snapshot) across the Nomi call
        return found is not None

    def _save_record(self, record_id: str, step: str) -> None:
        """Note the record id (saved before any later write of the item, or with its end)."""
        self.progress.update(nomi_record_id=record_id, nomi_record_type=step)

    def _stored_contact(self, kind: str, name: str) -> str | None:
        """An active mirrored contact with this normalised name (created by a peer meanwhile)."""
        table: type[Supplier] | type[Customer] = Customer if kind == "customer" else Supplier
        key = normalise_name(name)
        if not key:  # nothing to match on: never another contact's row
            return None
        row = self.s.exec(
            select(table.nomi_id).where(
                table.connection_id == self.book.connection_id,
                table.name_normalised == key,
                table.status == "ACTIVE",
            )
        ).first()
        return row

    def _store_contact(self, kind: str, nomi_id: str, name: str) -> None:
        """Mirror a contact we created so the rest of the run (and reassessment) finds it."""
        table: type[Supplier] | type[Customer] = Customer if kind == "customer" else Supplier
        self.s.commit()
        self.s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        exists = self.s.exec(
            select(table.id).where(
                table.connection_id == self.book.connection_id, table.nomi_id == nomi_id
            )
        ).first()
        if exists is None:
            self.s.add(
                table(
                    connection_id=self.book.connection_id,
                    nomi_id=nomi_id,
                    name=name,
                    name_normalised=normalise_name(name),
                    currency=self.item.currency,
                )
            )
        self.s.commit()


def _code(exc: NomiError) -> str:
    """A stable code for an error (Nomi's first code for a rejection)."""
    if isinstance(exc, RejectedError) and exc.codes:
        return exc.codes[0]
    if isinstance(exc, ConnectionLostError):
        return exc.code or CONNECTION_EXPIRED
    if isinstance(exc, RejectedError):
        return "rejected"
    if isinstance(exc, OutcomeUnknownError):
        return OUTCOME_UNKNOWN
    if isinstance(exc, DailyLimitError):
        return DAILY_LIMIT
    return TRANSIENT


def _attempt_outcome(exc: NomiError) -> AttemptOutcome:
    if isinstance(exc, RejectedError):
        return AttemptOutcome.REJECTED
    if isinstance(exc, ConnectionLostError):
        return AttemptOutcome.CONNECTION_LOST
    if isinstance(exc, OutcomeUnknownError):
        return AttemptOutcome.UNKNOWN
    return AttemptOutcome.TRANSIENT
