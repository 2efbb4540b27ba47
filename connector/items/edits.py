"""Edits on the item itself: the category and tax rate a user sets on one item.

They rank first in "which value wins" (``docs/rules.md``): an item-level category beats every
rule, and an item-level tax rate counts while ``use_tax_list`` is on (the tax dropdown exists only
then). The review reasons send users here ("no category: set one on the item").

An edit is allowed to any member of the business (as publishing chosen items is), only on items in
``review`` or ``ready`` (never on one a run is publishing, or already published), and is audited.
The item is then assessed again; when that leaves it Ready and Nomi had rejected it, the
rejection is cleared so the next auto-publish run takes it (an edit is the user's "fixed it").
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.admin.common import nomi_id_or_none
from connector.errors import NotConnectedError
from connector.history import records as history
from connector.items.assess import reassess
from connector.items.choices import allow_retry, require_member
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.models import Business, Connection, ConnectionSettings, Item

#: What ``items edit`` may change: option name -> (item column, what the id is of).
EDITABLE = {"category": ("category_edit", "category"), "tax_rate": ("tax_rate_edit", "tax-rate")}
EDITABLE_STATUSES = (ItemStatus.REVIEW, ItemStatus.READY)


@dataclass(frozen=True)
class EditResult:
    """An edited item after its new assessment."""

    item_id: uuid.UUID
    external_id: str
    status: str
    review_reasons: list[str]
    category_id: str | None
    tax_rate_id: str | None
    rejection_cleared: bool


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
        external_id: The item's id in the import file (what ``items list`` shows).
        actor_email: The member making the edit.
        changes: ``category`` and/or ``tax_rate`` -> a Nomi id, or ``none`` to clear the edit
            (the rules decide again).

    Returns:
        The item as assessed after the edit.

    Raises:
        PermissionDeniedError: The actor is not a member of the business (refusal audited).
        ValueError: Nothing to change, an unknown field, a malformed id, a tax rate while
            ``use_tax_list`` is off, or an item that is not in review or ready.
        LookupError: The business has no such item.
    """
    values = _parse(changes)
    user = require_member(session, business_id=business.id, email=actor_email, action="item.edit")
    if values.get("tax_rate_edit") is not None and not _uses_tax_list(session, business.id):
        raise ValueError(
            "a tax rate can be set on an item only while use_tax_list is on "
            f"(nomi-connector settings set use_tax_list=true --business {business.slug})"
        )
    if "\x00" in external_id:  # no stored id has one (and PostgreSQL cannot query it)
        raise LookupError(f"business '{business.slug}' has no item {external_id!r}")
    item_id = _write_edit(session, business, external_id, values)
    history.record_audit(
        session,
        action="item.edit",
        allowed=True,
        business_id=business.id,
        user_id=user.id,
        detail={"item_id": str(item_id), "external_id": external_id, **values},
    )
    with contextlib.suppress(NotConnectedError):  # assessed once the business is connected
        reassess(session, business_id=business.id, item_ids=[item_id])
    cleared = allow_retry(session, [item_id]) == 1
    item = session.get(Item, item_id, populate_existing=True)
    assert item is not None  # written above in this transaction
    return EditResult(
        item_id=item.id,
        external_id=item.external_id,
        status=item.status,
        review_reasons=list(item.review_reasons),
        category_id=item.resolved_category_nomi_id,
        tax_rate_id=item.resolved_tax_rate_nomi_id,
        rejection_cleared=cleared,
    )


def _parse(changes: Mapping[str, str]) -> dict[str, str | None]:
    """Item columns -> new values, each id checked for shape."""
    if not changes:
        raise ValueError("nothing to change: give --category and/or --tax-rate")
    values: dict[str, str | None] = {}
    for key, text in changes.items():
        if key not in EDITABLE:
            raise ValueError(f"unknown item field {key!r}; editable: {', '.join(EDITABLE)}")
        column, what = EDITABLE[key]
        values[column] = nomi_id_or_none(key, text, what)
    return values


def _uses_tax_list(session: Session, business_id: uuid.UUID) -> bool:
    """Whether the business's connection settings have ``use_tax_list`` on (False: none)."""
    found = session.exec(
        select(ConnectionSettings.use_tax_list)
        .join(Connection, Connection.id == ConnectionSettings.connection_id)  # type: ignore[arg-type]
        .where(Connection.business_id == business_id)
    ).first()
    return bool(found)


def _write_edit(
    session: Session, business: Business, external_id: str, values: dict[str, str | None]
) -> uuid.UUID:
    """One guarded UPDATE: only an item in review or ready changes (a run may claim it meanwhile).

    Raises:
        LookupError: No such item. ValueError: It is not in review or ready.
    """
    items = table_of(Item)
    edited = (
        session.connection()
        .execute(
            sa.update(items)
            .where(
                items.c.business_id == business.id,
                items.c.external_id == external_id,
                items.c.status.in_([str(s) for s in EDITABLE_STATUSES]),
            )
            .values(**values, updated_at=utcnow())
            .returning(items.c.id)
        )
        .scalar_one_or_none()
    )
    if edited is not None:
        return uuid.UUID(str(edited))
    status = session.exec(
        select(Item.status).where(Item.business_id == business.id, Item.external_id == external_id)
    ).first()
    if status is None:
        raise LookupError(f"business '{business.slug}' has no item {external_id!r}")
    raise ValueError(
        f"item {external_id!r} is {status}: only items in review or ready can be edited"
    )
