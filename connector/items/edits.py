"""Edits on the item itself: the category and tax rate a user sets on one item.

They rank first in "which value wins" (``docs/rules.md``): an item-level category beats every
rule, and an item-level tax rate counts while ``use_tax_list`` is on (the tax dropdown exists only
then). The review reasons send users here ("no category: set one on the item").

The category and tax rate are named by code, name or Nomi id of the business's mirrored lists
(``connector.admin.lookup``) and stored as Nomi ids. An edit is allowed to any member of the
business (as publishing chosen items is), only on items in ``review`` or ``ready`` (never on one
a run is publishing, or already published), and is audited. The item is then assessed again;
when that leaves it Ready and Nomi had rejected it, the rejection is cleared so the next
auto-publish run takes it (an edit is the user's "fixed it").
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.admin.lookup import CLEAR, fold, label_of, nomi_id_or_none
from connector.errors import NotConnectedError
from connector.history import records as history
from connector.items.assess import reassess
from connector.items.choices import allow_retry, require_member
from connector.items.lookup import items_by_external_id
from connector.rules.vocabulary import ItemStatus, ListName
from connector.store.base import table_of, utcnow
from connector.store.models import Business, Connection, ConnectionSettings, Item

#: What an edit may change: field -> (item column, the mirrored list it names, what it is called).
EDITABLE = {
    "category": ("category_edit", ListName.CATEGORIES, "category"),
    "tax_rate": ("tax_rate_edit", ListName.TAX_RATES, "tax rate"),
}
EDITABLE_STATUSES = (ItemStatus.REVIEW, ItemStatus.READY)


@dataclass(frozen=True)
class EditResult:
    """An edited item after its new assessment (``category``/``tax_rate``: as people name them,
    ``453 Office Expenses``; the ids are what it publishes with)."""

    item_id: uuid.UUID
    external_id: str
    status: str
    review_reasons: list[str]
    category_id: str | None
    tax_rate_id: str | None
    rejection_cleared: bool
    category: str | None = None
    tax_rate: str | None = None


def edit_item(
    session: Session,
    *,
    business: Business,
    external_id: str,
    actor_email: str,
    changes: Mapping[str, str],
) -> EditResult:
    """Set (or clear, with ``none``) the item-level category or tax rate of one item.

    Args:
        session: A write session on the connector database (``session(engine, write=True)``);
            the caller commits.
        business: The item's business.
        external_id: The item's id in the import file (what ``items list`` shows; another case
            finds it too, ``items_by_external_id``).
        actor_email: The member making the edit.
        changes: ``category`` and/or ``tax_rate`` -> a code, a name or a Nomi id of the
            business's mirrored lists (``453``, ``Office Expenses``), or ``none`` to clear the
            edit (the rules decide again).

    Returns:
        The item as assessed after the edit.

    Raises:
        PermissionDeniedError: The actor is not a member of the business (refusal audited).
        UnknownItemsError: The business has no such item (a ``LookupError``; close ids named).
        NameLookupError: A category or tax rate naming no single active entry (a ``ValueError``
            whose ``subject`` is ``category`` or ``tax rate``; close matches listed).
        ValueError: Nothing to change, an unknown field, a tax rate while ``use_tax_list`` is
            off, or an item that is not in review or ready.
    """
    fields = _fields(changes)
    user = require_member(session, business_id=business.id, email=actor_email, action="item.edit")
    [item] = items_by_external_id(session, business, [external_id])
    if fold(fields.get("tax_rate", "")) not in CLEAR and not _uses_tax_list(session, business.id):
        raise ValueError(
            "a tax rate can be set on an item only while the business's use_tax_list setting is on"
        )
    values: dict[str, str | None] = {}
    for key, text in fields.items():
        column, list_name, called = EDITABLE[key]
        values[column] = nomi_id_or_none(session, business, list_name, text, subject=called)
    item_id = _write_edit(session, item, values)
    history.record_audit(
        session,
        action="item.edit",
        allowed=True,
        business_id=business.id,
        user_id=user.id,
        detail={"item_id": str(item_id), "external_id": item.external_id, **values},
    )
    with contextlib.suppress(NotConnectedError):  # assessed once the business is connected
        reassess(session, business_id=business.id, item_ids=[item_id])
    cleared = allow_retry(session, [item_id]) == 1
    edited = session.get(Item, item_id, populate_existing=True)
    assert edited is not None  # written above in this transaction
    return EditResult(
        item_id=edited.id,
        external_id=edited.external_id,
        status=edited.status,
        review_reasons=list(edited.review_reasons),
        category_id=edited.resolved_category_nomi_id,
        tax_rate_id=edited.resolved_tax_rate_nomi_id,
        rejection_cleared=cleared,
        category=label_of(session, business, ListName.CATEGORIES, edited.resolved_category_nomi_id),
        tax_rate=label_of(session, business, ListName.TAX_RATES, edited.resolved_tax_rate_nomi_id),
    )


def _fields(changes: Mapping[str, str]) -> dict[str, str]:
    """The changes, each field checked to be editable (values are resolved later)."""
    if not changes:
        raise ValueError("nothing to change: give a category and/or a tax rate")
    unknown = [key for key in changes if key not in EDITABLE]
    if unknown:
        raise ValueError(f"unknown item field {unknown[0]!r}; editable: {', '.join(EDITABLE)}")
    return dict(changes)


def _uses_tax_list(session: Session, business_id: uuid.UUID) -> bool:
    """Whether the business's connection settings have ``use_tax_list`` on (False: none)."""
    found = session.exec(
        select(ConnectionSettings.use_tax_list)
        .join(Connection, Connection.id == ConnectionSettings.connection_id)  # type: ignore[arg-type]
        .where(Connection.business_id == business_id)
    ).first()
    return bool(found)


def _write_edit(session: Session, item: Item, values: dict[str, str | None]) -> uuid.UUID:
    """One guarded UPDATE: only an item in review or ready changes (a run may claim it meanwhile).

    Raises:
        ValueError: It is not in review or ready.
    """
    items = table_of(Item)
    edited = (
        session.connection()
        .execute(
            sa.update(items)
            .where(
                items.c.id == item.id,
                items.c.status.in_([str(s) for s in EDITABLE_STATUSES]),
            )
            .values(**values, updated_at=utcnow())
            .returning(items.c.id)
        )
        .scalar_one_or_none()
    )
    if edited is not None:
        return uuid.UUID(str(edited))
    status = session.exec(select(Item.status).where(Item.id == item.id)).one()
    raise ValueError(
        f"item {item.external_id!r} is {status}: only items in review or ready can be edited"
    )
