"""Publishing one claimed item to Nomi exactly once: resolve, plan, the calls, and how it ended.

``publish_item`` takes ONE item this run has claimed (``connector.publishing.outbox.claim_ready``)
through PRODUCT.md "Publishing to Nomi" and always leaves it in a recorded state: ``published``,
back to ``review`` (held, with reasons), or back to ``ready`` with its last error shown. It
resolves the item once, checks what Nomi would refuse anyway (a paid item's bank currency, a
credited item not published yet), builds its ``Plan`` (every body and key) before the first Nomi
call, then runs the ``steps``. Nomi errors never escape: they become an ``ItemOutcome`` whose
``stop`` tells the batch (``connector.publishing.batch``) whether to go on. The exactly-once
argument is in docs/publishing.md.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from sqlmodel import Session

from connector.items.context import facts_from_item
from connector.publishing import corrections, outbox, steps
from connector.publishing.book import PublishBook
from connector.publishing.moves import Move
from connector.publishing.outcomes import CLAIM_LOST, GIVEN_BACK, ItemOutcome, error_code, stop_for
from connector.publishing.plan import Plan, plan_item
from connector.publishing.run import ItemRun
from connector.rules.engine import resolve
from connector.rules.facts import Resolution, Resolved, RulesContext
from connector.rules.taxes import ZERO_RATE_NOTE
from connector.rules.vocabulary import (
    AttemptOutcome,
    AttemptStep,
    DocumentType,
    ErrorCode,
    HoldCode,
    ItemStatus,
)
from connector.store.group_commit import GroupCommit
from connector.store.models import Item
from nomi.client import NomiClient
from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    NomiError,
    OutcomeUnknownError,
    RejectedError,
)

#: The flag of a paid credit note: Nomi's credit notes take no payment (NOMI_API.md).
CREDIT_NOTE_UNPAID = "credit notes are published without a payment: Nomi records none on them"


def bank_currency_clash(res: Resolution, ctx: RulesContext) -> tuple[str, str, str] | None:
    """(bank account name, its currency, the base currency) when they cannot pay the item.

    A paid item's bank account must be in the item's currency or the organisation's base
    currency (NOMI_API.md); without a mirrored organisation the base is unknown and nothing is
    refused here (Nomi's ``currency_mismatch`` is then recorded as a rejection).
    """
    method = ctx.payment_method(res.payment_method_id) if res.payment_method_id else None
    bank = ctx.bank_account(method.bank_account_id) if method and method.bank_account_id else None
    if bank is None or ctx.organisation is None or not bank.currency or res.currency is None:
        return None
    held, base = bank.currency.upper(), ctx.organisation.base_currency.upper()
    return None if held in (res.currency.upper(), base) else (bank.name, held, base)


def hold_code(res: Resolution, ctx: RulesContext) -> str | None:
    """The ``HoldCode`` of a held resolution when its reasons include a known one."""
    clash = bank_currency_clash(res, ctx)
    if clash is not None and any(f"'{clash[0]}' in {clash[1]}" in r for r in res.reasons):
        return HoldCode.BANK_CURRENCY
    return None


def resolution_of(item: Item, ctx: RulesContext, resolved: Resolved | None = None) -> Resolution:
    """The item's resolution: the caller's when made from the same facts, else ``resolve`` once.

    A caller that resolved the item before claiming it (e.g. to choose it) passes that on; if the
    item changed meanwhile its facts differ and it is resolved again, so the result is the same.
    """
    facts = facts_from_item(item)
    if resolved is not None and resolved.facts == facts:
        return resolved.resolution
    return resolve(facts, ctx)


def publish_item(
    session: Session,
    nomi: NomiClient,
    item: Item,
    run_id: uuid.UUID,
    ctx: RulesContext,
    *,
    book: PublishBook | None = None,
    writer: GroupCommit | None = None,
    resolved: Resolved | None = None,
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
        resolved: The caller's resolution of the item, reused when its facts are unchanged.

    Returns:
        The outcome; ``stop`` says whether the batch must stop (transient failure, lost
        connection, daily limit). Nomi errors are recorded, never raised.

    Raises:
        Exception: Only unexpected errors (bugs, database down), after giving the claim back.
    """
    book = book or PublishBook.for_business(session, item.business_id)
    run = ItemRun(session, nomi, item, run_id, book, writer)
    res: Resolution | None = None
    try:
        if item.pending_correction:  # a correction or archive: void first (corrections.py)
            ended = corrections.void_then_apply(run)
            if ended is not None:
                return ended
            item, resolved = run.item, None
        res = resolution_of(item, ctx, resolved)
        if not res.is_ready:
            raise steps.Held("; ".join(res.reasons), hold_code(res, ctx))
        paying = res.paid and res.document_type != DocumentType.CREDIT_NOTE
        if paying and (clash := bank_currency_clash(res, ctx)) is not None:
            name, held, base = clash
            raise steps.Held(
                f"bank account '{name}' in {held}: an item in {res.currency} is paid from an "
                f"account in {res.currency} or {base}",
                HoldCode.BANK_CURRENCY,
            )
        applies_to_id = steps.credited(run)
        return _publish(run, plan_item(item, res, book.connection_id, applies_to_id=applies_to_id))
    except steps.Held as held:
        reasons = list(res.reasons) if res is not None else []
        return _hold(run, str(held), reasons or [str(held)], held.code)
    except outbox.ClaimLostError as exc:
        return ItemOutcome(item.id, CLAIM_LOST, message=str(exc))
    except RejectedError as exc:
        return _rejected(run, exc)
    except ConnectionLostError as exc:
        return _give_back(run, ErrorCode.CONNECTION_EXPIRED, exc)
    except DailyLimitError as exc:
        return _give_back(run, ErrorCode.DAILY_LIMIT, exc)
    except OutcomeUnknownError as exc:
        return _give_back(run, ErrorCode.OUTCOME_UNKNOWN, exc)
    except NomiError as exc:
        return _give_back(run, ErrorCode.TRANSIENT, exc)
    except Exception:
        session.rollback()
        with contextlib.suppress(outbox.ClaimLostError):
            run.end(
                Move.released,
                error_code=ErrorCode.INTERNAL_ERROR,
                error_message="publishing stopped on an internal error; see the run's logs",
            )
        raise


def _publish(run: ItemRun, plan: Plan) -> ItemOutcome:
    """The steps in order, then the ``published`` move."""
    run.flags.extend(note for note in plan.resolution.notes if note.endswith(ZERO_RATE_NOTE))
    if plan.credit_note is not None and plan.resolution.paid:
        run.flags.append(CREDIT_NOTE_UNPAID)
    contact_id = steps.contact(run, plan)
    user_id = steps.claimant(run)
    record_id, resumed = steps.record(run, plan, contact_id, user_id)
    image_published, image_error = steps.image(run, plan, record_id)
    payment_recorded = steps.payment(run, plan, record_id, resumed)
    run.end(
        Move.published,
        nomi_record_id=record_id,
        nomi_record_type=plan.record_type,
        image_published=image_published,
        image_error=image_error,
        payment_recorded=payment_recorded,
    )
    return ItemOutcome(
        run.item.id,
        AttemptOutcome.PUBLISHED.value,
        nomi_record_id=record_id,
        image_error=image_error,
        payment_recorded=payment_recorded,
        flags=tuple(run.flags),
    )


def _hold(run: ItemRun, message: str, reasons: list[str], code: str | None) -> ItemOutcome:
    """Back to review with the reasons (the item cannot be published as it stands)."""
    run.attempt(
        AttemptStep.RESOLVE, None, AttemptOutcome.HELD, time.monotonic(), code=code, message=message
    )
    run.end(Move.released, to_status=ItemStatus.REVIEW, review_reasons=reasons)
    return ItemOutcome(run.item.id, AttemptOutcome.HELD.value, message=message)


def _rejected(run: ItemRun, exc: RejectedError) -> ItemOutcome:
    """Nomi refused the content: back with the error, under a new generation."""
    code, message = error_code(exc), exc.detail or exc.message
    run.end(Move.failed, error_code=code, error_message=message, rejected=True)
    return ItemOutcome(run.item.id, AttemptOutcome.REJECTED.value, error_code=code, message=message)


def _give_back(run: ItemRun, code: str, exc: NomiError) -> ItemOutcome:
    """Give the claim back to ``ready`` (same generation) with the error shown."""
    run.end(Move.released, error_code=code, error_message=exc.message)
    return ItemOutcome(
        run.item.id, GIVEN_BACK, error_code=code, message=exc.message, stop=stop_for(code)
    )
