"""Corrections and voids in the publish pipeline: void the old record, then apply what was asked.

A correction (or an archive) of a published item is a claim like any other (``publishing``,
``claimed_by_run``) whose item carries ``pending_correction``. Its first step voids the record of
the current generation under its own key (``void_key``); only once Nomi has voided it is the edit
applied, in one guarded write with the void's attempt row: the old record joins
``voided_record_ids``, ``record_generation`` moves on (a new ``source_id`` and new keys) and the
create steps follow as for a first publish. Nomi refusing the void (``period_locked``,
``has_payments``) gives the item back ``published`` with nothing changed. See docs/publishing.md
"Corrections and voids".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connector.publishing.moves import Move
from connector.publishing.outbox import idempotency_key
from connector.publishing.outcomes import ItemOutcome, error_code
from connector.publishing.run import ItemRun, document_columns
from connector.rules.vocabulary import AttemptStep, ItemStatus
from connector.store.models import Item
from nomi.client import NomiClient
from nomi.errors import RejectedError

#: The outcome of a correction or archive whose void Nomi refused (the item is unchanged).
REFUSED = "refused"
#: The outcome of an archive once its record is voided.
ARCHIVED = "archived"
#: Item columns a correction may set, and how a stored (JSON) value is read back.
CORRECTABLE: dict[str, Callable[[Any], Any]] = {
    "category_edit": lambda v: v,
    "tax_rate_edit": lambda v: v,
    "total": lambda v: None if v is None else Decimal(str(v)),
    "tax_amount": lambda v: None if v is None else Decimal(str(v)),
    "contact_name": lambda v: v,
    "contact_mapped_nomi_id": lambda v: v,
    "contact_confirmed": bool,
}


def void_key(item: Item) -> str:
    """The Idempotency-Key voiding the record of the item's current ``record_generation``."""
    return idempotency_key(item.id, item.record_generation, AttemptStep.VOID)


def pending(values: dict[str, Any], *, actor: str, archive: bool = False) -> dict[str, Any]:
    """The ``pending_correction`` of a claim (JSON: amounts as text)."""
    unknown = set(values) - set(CORRECTABLE)
    if unknown:
        raise ValueError(f"columns a correction may not set: {sorted(unknown)}")
    shown = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items()}
    return {"values": shown, "actor": actor, "archive": archive}


def void_call(nomi: NomiClient, record_type: str) -> Callable[[str, str], Any]:
    """The client call voiding a record of ``record_type``."""
    calls: dict[str, Callable[[str, str], Any]] = {
        AttemptStep.EXPENSE: nomi.void_expense,
        AttemptStep.SALES_INVOICE: nomi.void_sales_invoice,
        AttemptStep.SUPPLIER_CREDIT_NOTE: nomi.void_supplier_credit_note,
        AttemptStep.CUSTOMER_CREDIT_NOTE: nomi.void_customer_credit_note,
    }
    return calls[record_type]


def void_then_apply(run: ItemRun) -> ItemOutcome | None:
    """Void the item's record, then apply its pending correction (or archive it).

    Returns:
        The outcome when the claim ended here (refused, archived); None once the edit is applied
        and ``run.item`` is the new generation, ready for the create steps.

    Raises:
        NomiError: Anything but a refusal (the caller gives the claim back; the pending
            correction stays, so the next attempt voids again under the same key).
    """
    item = run.item
    asked = item.pending_correction or {}
    record_id, record_type = item.nomi_record_id, item.nomi_record_type
    if not record_id or not record_type:  # nothing live to void (cannot happen after a claim)
        return _apply(run, asked, voided=None)
    key = void_key(item)
    void = void_call(run.nomi, record_type)
    try:
        run.call(AttemptStep.VOID, key, lambda: void(record_id, key))
    except RejectedError as exc:
        code, message = error_code(exc), exc.detail or exc.message
        run.end(_restored)
        return ItemOutcome(item.id, REFUSED, error_code=code, message=message)
    return _apply(run, asked, voided=f"{record_type}:{record_id}")


def _restored(item_id: uuid.UUID, run_id: uuid.UUID, *, progress: dict[str, Any]) -> Move:
    """Back to ``published`` as it was: the claim and the pending correction dropped."""
    values = {"status": ItemStatus.PUBLISHED, "claimed_by_run": None, "claimed_at": None}
    return Move(item_id, run_id, {**progress, **values, "pending_correction": None})


def _apply(run: ItemRun, asked: dict[str, Any], *, voided: str | None) -> ItemOutcome | None:
    """Write the voided record and the edit (or the archive) in one guarded move."""
    item = run.item
    gone = list(item.voided_record_ids or []) + ([voided] if voided else [])
    values: dict[str, Any] = {
        "pending_correction": None,
        "voided_record_ids": gone,
        "nomi_record_id": None,
        "nomi_record_type": None,
    }
    if asked.get("archive"):
        values |= {"status": ItemStatus.ARCHIVED, "claimed_by_run": None, "claimed_at": None}
        run.end(lambda i, r, progress: Move(i, r, {**progress, **values}))
        return ItemOutcome(item.id, ARCHIVED)
    edits = {k: CORRECTABLE[k](v) for k, v in dict(asked.get("values") or {}).items()}
    values |= edits | {
        "record_generation": (item.record_generation or 0) + 1,
        "image_published": False,
        "image_error": None,
        "payment_recorded": False,
        "published_at": None,
    }
    run.write(Move(item.id, run.run_id, values))
    fresh = run.s.get(Item, item.id, populate_existing=True)
    run.s.commit()  # no read transaction held across the create steps
    assert fresh is not None  # written just above
    run.item = fresh
    run.document = document_columns(fresh, run.book.base_currency(run.s))
    return None
