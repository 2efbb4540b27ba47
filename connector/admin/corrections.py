"""Corrections and archives of published items: who may, what may change, and the Nomi calls.

``correct_item`` re-publishes a published item as a new generation after an edit (category, tax
rate, total, tax, supplier or customer); ``archive_published_item`` voids its record and archives
it for good. Both are for admins and accountants of the business (audited). Each validates the
edit first (the item must still resolve Ready with it), then claims the item like a publish run
(``published`` -> ``publishing``, with the edit in ``pending_correction``) and runs the one item
through ``connector.publishing.pipeline.publish_item``, which voids the old record before it
applies the edit and creates the new one (``connector.publishing.corrections``). A refusal by
Nomi (``period_locked``, ``has_payments``) leaves the item as it was and raises
``CorrectionRefusedError`` with Nomi's reason. See docs/publishing.md "Corrections and voids".
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from connector.access import audit_refusal, require_admin_actor
from connector.admin.lookup import find_contact, nomi_id_or_none
from connector.history import records as history
from connector.items.context import build_context, facts_from_item
from connector.items.lookup import items_by_external_id
from connector.publishing import corrections
from connector.publishing.book import PublishBook
from connector.publishing.pipeline import publish_item
from connector.rules.engine import resolve
from connector.rules.money import to_money
from connector.rules.vocabulary import ItemKind, ItemStatus, ListName, contact_kind
from connector.store.base import table_of, utcnow
from connector.store.db import begin_write
from connector.store.models import Business, Item
from nomi.client import NomiClient

#: What a correction may change: its name -> the words people use for it.
FIELDS = {
    "category": "category",
    "tax_rate": "tax rate",
    "total": "total",
    "tax": "tax",
    "contact": "supplier or customer",
}
#: Item columns -> the ``ItemFacts`` field the rules engine reads them as.
_FACTS = {
    "category_edit": "category_id",
    "tax_rate_edit": "tax_rate_id",
    "total": "total",
    "tax_amount": "extracted_tax",
    "contact_name": "contact_name",
    "contact_mapped_nomi_id": "mapped_contact_id",
    "contact_confirmed": "confirmed_new_contact",
}


class CorrectionRefusedError(ValueError):
    """A correction or archive refused, nothing changed (``code``: Nomi's problem code, if any)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


#: Audits a refusal and returns the error to raise (``_run``'s closure).
Refuse = Callable[..., CorrectionRefusedError]


@dataclass(frozen=True)
class CorrectionResult:
    """How a correction or archive ended (``outcome``: published, archived, given_back, ...)."""

    external_id: str
    outcome: str
    record_generation: int
    nomi_record_id: str | None
    voided_record_ids: list[str]
    message: str | None = None


def correct_item(
    session: Session,
    nomi: NomiClient,
    *,
    business: Business,
    external_id: str,
    actor_email: str,
    changes: Mapping[str, str],
) -> CorrectionResult:
    """Edit a published item and re-publish it as a new generation (old record voided first).

    Args:
        session: A session on the connector database (committed here, step by step).
        nomi: The client of the business's Nomi organisation.
        business: The item's business.
        external_id: The item's id in the import file.
        actor_email: The admin or accountant correcting it.
        changes: ``category``, ``tax_rate`` (code, name or Nomi id), ``total``, ``tax`` (amounts)
            and/or ``contact`` (a mirrored supplier or customer by name or Nomi id).

    Returns:
        The result; ``given_back`` when Nomi failed transiently after the claim (the next
        publish run finishes the correction under the same keys).

    Raises:
        PermissionDeniedError: Not an admin or accountant of the business (audited).
        UnknownItemsError: No such item.
        NameLookupError: A category, tax rate or contact naming no single active entry.
        CorrectionRefusedError: Nothing to change, not published, already being corrected, not
            Ready with the edit, or Nomi refused the void (its reason named).
    """
    return _run(session, nomi, business, external_id, actor_email, changes, archive=False)


def archive_published_item(
    session: Session, nomi: NomiClient, *, business: Business, external_id: str, actor_email: str
) -> CorrectionResult:
    """Void a published item's Nomi record and archive the item: it is never published again.

    Raises:
        PermissionDeniedError: Not an admin or accountant of the business (audited).
        UnknownItemsError: No such item.
        CorrectionRefusedError: Not published, being published, or Nomi refused the void.
    """
    return _run(session, nomi, business, external_id, actor_email, {}, archive=True)


def _run(
    session: Session,
    nomi: NomiClient,
    business: Business,
    external_id: str,
    actor_email: str,
    changes: Mapping[str, str],
    *,
    archive: bool,
) -> CorrectionResult:
    """Check, validate, claim, then publish the one item; audit what happened."""
    action = "item.archive" if archive else "item.correct"
    detail: dict[str, Any] = {"external_id": external_id, **dict(changes)}
    begin_write(session)  # reads then writes its audit row: a write transaction from the start
    user, _ = require_admin_actor(
        session, email=actor_email, business_id=business.id, action=action, detail=detail
    )
    session.commit()  # the "allowed" audit row stays whatever follows
    [item] = items_by_external_id(session, business, [external_id])
    detail["item_id"] = str(item.id)

    def refuse(message: str, code: str | None = None) -> CorrectionRefusedError:
        audit_refusal(
            session,
            action=action,
            business_id=business.id,
            user_id=user.id,
            detail={**detail, "code": code, "reason": message[:500]},
        )
        return CorrectionRefusedError(message, code=code)

    values = {} if archive else _values(session, business, item, changes, refuse)
    ctx = build_context(session, business.id)
    if not archive:
        facts = dataclasses.replace(
            facts_from_item(item), **{_FACTS[k]: v for k, v in values.items()}
        )
        res = resolve(facts, ctx)
        if not res.is_ready:
            raise refuse(f"with this edit the item would not be ready: {'; '.join(res.reasons)}")
    run_id = uuid.uuid4()
    asked = corrections.pending(values, actor=user.email, archive=archive)
    if not _claim(session, item, run_id, asked):
        raise refuse(_not_claimable(session, item))
    claimed = session.get(Item, item.id, populate_existing=True)
    session.commit()
    assert claimed is not None
    book = PublishBook.for_business(session, business.id)
    outcome = publish_item(session, nomi, claimed, run_id, ctx, book=book)
    if outcome.outcome == corrections.REFUSED:
        raise refuse(
            f"Nomi refused to void the record of item '{item.external_id}' "
            f"({outcome.error_code}): {outcome.message}; nothing was changed",
            outcome.error_code,
        )
    after = session.get(Item, item.id, populate_existing=True)
    session.commit()
    assert after is not None
    history.record_audit(
        session,
        action=f"{action}.finished",
        allowed=True,
        business_id=business.id,
        user_id=user.id,
        detail={**detail, "outcome": outcome.outcome, "record_generation": after.record_generation},
    )
    session.commit()
    return CorrectionResult(
        external_id=after.external_id,
        outcome=outcome.outcome,
        record_generation=after.record_generation,
        nomi_record_id=after.nomi_record_id,
        voided_record_ids=list(after.voided_record_ids or []),
        message=outcome.message or outcome.error_code,
    )


def _values(
    session: Session, business: Business, item: Item, changes: Mapping[str, str], refuse: Refuse
) -> dict[str, Any]:
    """The item columns the changes set (names resolved against the mirrored lists)."""
    unknown = [key for key in changes if key not in FIELDS]
    if unknown or not changes:
        what = f"unknown field {unknown[0]!r}" if unknown else "nothing to change"
        raise refuse(f"{what}: a correction changes {', '.join(FIELDS.values())}")
    values: dict[str, Any] = {}
    if "category" in changes:
        values["category_edit"] = nomi_id_or_none(
            session, business, ListName.CATEGORIES, changes["category"], subject="category"
        )
    if "tax_rate" in changes:
        values["tax_rate_edit"] = nomi_id_or_none(
            session, business, ListName.TAX_RATES, changes["tax_rate"], subject="tax rate"
        )
    for key, column in (("total", "total"), ("tax", "tax_amount")):
        if key in changes:
            values[column] = _amount(changes[key], FIELDS[key], refuse)
    if "total" in changes and item.lines:
        raise refuse("an item with lines: its total is the sum of its lines, not set on its own")
    if "contact" in changes:
        kind = contact_kind(ItemKind(item.kind))
        entry = find_contact(session, business, kind, changes["contact"])
        values |= {
            "contact_name": entry.name,
            "contact_mapped_nomi_id": entry.nomi_id,
            "contact_confirmed": True,
        }
    return values


def _amount(text: str, called: str, refuse: Refuse) -> Decimal:
    """An amount as given (``130``, ``130.00``), to the penny."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise refuse(f"the {called} {text!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise refuse(f"the {called} {text!r} is not an amount of zero or more")
    return to_money(value)


def _claim(session: Session, item: Item, run_id: uuid.UUID, asked: dict[str, Any]) -> bool:
    """Claim a published item for this correction (one guarded UPDATE, committed).

    A Ready item whose earlier correction was given back (it still holds ``pending_correction``)
    is claimed too: the correction it asked for is finished, not this one.
    """
    items = table_of(Item)
    c = items.c
    now = utcnow()
    published = sa.and_(c.status == ItemStatus.PUBLISHED, c.nomi_record_id.is_not(None))
    session.commit()
    conn = session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    claimed = conn.execute(
        sa.update(items)
        .where(c.id == item.id, published)
        .values(
            status=ItemStatus.PUBLISHING,
            claimed_by_run=run_id,
            claimed_at=now,
            updated_at=now,
            pending_correction=asked,
        )
    ).rowcount
    session.commit()
    return claimed > 0


def _not_claimable(session: Session, item: Item) -> str:
    """Why an item cannot be claimed for a correction (its status now)."""
    fresh = session.get(Item, item.id, populate_existing=True)
    session.commit()
    status = fresh.status if fresh else "gone"
    if status == ItemStatus.PUBLISHING:
        return f"item '{item.external_id}' is being published or corrected by another run"
    if fresh is not None and fresh.pending_correction:
        return f"item '{item.external_id}' has a correction waiting: the next publish run ends it"
    return (
        f"item '{item.external_id}' is {status}: only a published item can be corrected or "
        "archived here"
    )
