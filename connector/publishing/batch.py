"""A batch of claimed items published on a few threads sharing one Nomi client.

The first item that says stop (transient failure after the client's retries, lost connection,
daily limit) stops the batch; items not yet started are given back to ``ready`` unpublished.
The threads' outbox writes go through the process's ``GroupCommit`` writer for the engine (shared
by concurrent batches), so the writes that are ready at the same moment share one write
transaction (SQLite has one writer).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from connector.publishing import outbox
from connector.publishing.book import PublishBook
from connector.publishing.outcomes import (
    CLAIM_LOST,
    GIVEN_BACK,
    STOP_CONNECTION_LOST,
    STOP_DAILY_LIMIT,
    ItemOutcome,
)
from connector.publishing.pipeline import publish_item
from connector.publishing.run import write_finishes
from connector.rules.facts import Resolved, RulesContext
from connector.rules.vocabulary import DocumentType, ErrorCode
from connector.store.group_commit import shared_writer
from connector.store.models import Item
from nomi.client import NomiClient


@dataclass
class BatchResult:
    """The outcomes of one batch and why it stopped early, if it did."""

    outcomes: list[ItemOutcome] = field(default_factory=list)
    stopped: str | None = None
    stop_message: str | None = None

    def count(self, outcome: str) -> int:
        """How many items ended with ``outcome``."""
        return sum(1 for o in self.outcomes if o.outcome == outcome)


def publish_batch(
    engine: Engine,
    nomi: NomiClient,
    items: list[Item],
    run_id: uuid.UUID,
    ctx: RulesContext,
    *,
    book: PublishBook,
    workers: int = 1,
    resolved: Mapping[uuid.UUID, Resolved] | None = None,
    on_all_started: Callable[[], None] | None = None,
) -> BatchResult:
    """Publish claimed items on up to ``workers`` threads sharing ``nomi``, credit notes last.

    The first item that says stop (transient failure after the client's retries, lost
    connection, daily limit) stops the batch: items not yet started are given back to ``ready``
    unpublished (with ``connection_expired``/``daily_limit`` as their error when that is why).

    Args:
        engine: The connector database (each thread opens its own session).
        nomi: The client of the business's organisation (thread-safe, throttled).
        items: Items claimed by ``run_id`` (loaded, detached objects are fine).
        run_id: The run holding the claims.
        ctx: The business's rules context.
        book: Shared batch state (new contacts, users).
        workers: Items handled at once; ``nomi``'s throttle bounds their requests in flight
            (Nomi allows 5 per organisation), so threads beyond that prepare and record items.
        resolved: Resolutions the caller made under ``ctx`` (choosing the items), by item id:
            reused for items whose facts did not change since, so each is resolved once.
        on_all_started: Called once, when the last item has been started: from then on the
            batch's requests in flight only fall, so the caller may let the next batch send.

    Returns:
        The outcome of every item and why the batch stopped early, if it did.
    """
    result = BatchResult()
    lock = threading.Lock()
    unstarted = [len(items)]
    if book.tried is None:
        with Session(engine, expire_on_commit=False) as session:
            book.load_history(session, items)

    def one(item: Item) -> ItemOutcome:
        with lock:
            stopped = result.stopped
            unstarted[0] -= 1
            last = unstarted[0] == 0
        if last and on_all_started is not None:
            on_all_started()
        with Session(engine, expire_on_commit=False) as session:
            if stopped is not None:
                return _give_back_unstarted(session, item, run_id, stopped)
            outcome = publish_item(
                session,
                nomi,
                item,
                run_id,
                ctx,
                book=book,
                writer=writer,
                resolved=(resolved or {}).get(item.id),
            )
        if outcome.stop is not None:
            with lock:
                if result.stopped is None:
                    result.stopped, result.stop_message = outcome.stop, outcome.message
        return outcome

    with (
        shared_writer(engine, write_finishes) as writer,
        ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="nomi-publish") as pool,
    ):
        # Credit notes go after the batch's other items: one crediting an item of the same
        # batch then finds it published and links to it (``applies_to_id``), never held for it.
        first = [i for i in items if i.document_type != DocumentType.CREDIT_NOTE]
        credits = [i for i in items if i.document_type == DocumentType.CREDIT_NOTE]
        by_id = {o.item_id: o for o in pool.map(one, first)}
        by_id.update((o.item_id, o) for o in pool.map(one, credits))
        result.outcomes = [by_id[i.id] for i in items]
    return result


def _give_back_unstarted(
    session: Session, item: Item, run_id: uuid.UUID, stopped: str
) -> ItemOutcome:
    """Release a claim the batch will not attempt because it stopped."""
    code = {
        STOP_CONNECTION_LOST: ErrorCode.CONNECTION_EXPIRED,
        STOP_DAILY_LIMIT: ErrorCode.DAILY_LIMIT,
    }.get(stopped)
    message = {
        STOP_CONNECTION_LOST: "the Nomi connection expired: reconnect to publish",
        STOP_DAILY_LIMIT: "Nomi's daily request limit was reached: publishing resumes later",
    }.get(stopped)
    try:
        outbox.release_claim(session, item.id, run_id, error_code=code, error_message=message)
    except outbox.ClaimLostError:
        return ItemOutcome(item.id, CLAIM_LOST)
    return ItemOutcome(item.id, GIVEN_BACK, error_code=code, message=message)
