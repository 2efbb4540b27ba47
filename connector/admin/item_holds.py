"""Holds an admin lifts by hand: release a possible duplicate, or archive an unpublished item.

Both are for admins and accountants of the business (``require_admin_actor``), audited as
``item.release`` and ``item.archive`` (with the external id as given), and take the item by its
external id. Releasing says "not a duplicate": every pair the item is held for is remembered in
``duplicate_releases`` (with who released it) and never held again, and the item is assessed at
once. Archiving takes an item in review or ready out of
publishing for good (no publish run claims it: claims take Ready items only); the later items
held as its possible duplicates are assessed again. A published item is never archived here:
voiding it in Nomi is ``connector.admin.corrections.archive_published_item``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from connector.access import require_admin_actor
from connector.errors import NotConnectedError
from connector.items.assess import ASSESSABLE, matching_items, possible_duplicates, reassess
from connector.items.lookup import items_by_external_id
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.models import Business, DuplicateRelease, Item

RELEASE = "item.release"
ARCHIVE = "item.archive"


class HoldRefusedError(ValueError):
    """The item cannot be released or archived as it is (the message says why)."""


@dataclass(frozen=True)
class HoldResult:
    """The item after a release or an archive, and the other items the action named."""

    item_id: uuid.UUID
    external_id: str
    status: str
    review_reasons: list[str]
    #: Released: the items it is no longer held for. Archived: the items assessed again.
    others: tuple[str, ...] = ()


def release_duplicate(
    session: Session, *, business: Business, external_id: str, actor_email: str
) -> HoldResult:
    """Say an item held as a possible duplicate is not one; it is then assessed again.

    Args:
        session: A write session on the connector database; the caller commits.
        business: The item's business.
        external_id: The held item's external id (another case finds it too).
        actor_email: The admin or accountant releasing it (audited).

    Returns:
        The item as assessed after the release (Ready when nothing else holds it).

    Raises:
        PermissionDeniedError: Not an admin or accountant of the business (refusal audited).
        UnknownItemsError: No such item.
        HoldRefusedError: The item is not held as a possible duplicate.
    """
    user, _ = require_admin_actor(
        session,
        email=actor_email,
        business_id=business.id,
        action=RELEASE,
        detail={"external_id": external_id},
    )
    [item] = items_by_external_id(session, business, [external_id])
    if item.status not in ASSESSABLE:
        raise HoldRefusedError(
            f"item {item.external_id!r} is {item.status}: only an item in review can be released"
        )
    others = _earlier_lookalikes(session, business.id, item)
    if not others:
        raise HoldRefusedError(f"item {item.external_id!r} is not held as a possible duplicate")
    session.execute(
        sa.insert(table_of(DuplicateRelease)),
        [
            {
                "id": uuid.uuid4(),
                "business_id": business.id,
                "item_id": item.id,
                "other_item_id": other_id,
                "released_by_user_id": user.id,
                "created_at": utcnow(),
            }
            for other_id in others
        ],
    )
    names = tuple(others.values())
    with contextlib.suppress(NotConnectedError):
        reassess(session, business_id=business.id, item_ids=[item.id])
    return _result(session, item.id, names)


def archive_item(
    session: Session, *, business: Business, external_id: str, actor_email: str
) -> HoldResult:
    """Archive an item that was never published: no run ever publishes it.

    Args:
        session: A write session on the connector database; the caller commits.
        business: The item's business.
        external_id: The item's external id.
        actor_email: The admin or accountant archiving it (audited).

    Returns:
        The archived item; ``others`` are the later items held as its possible duplicates,
        assessed again now that it no longer counts.

    Raises:
        PermissionDeniedError: Not an admin or accountant of the business (refusal audited).
        UnknownItemsError: No such item.
        HoldRefusedError: It is published (``items void`` / archive-item voids it first),
            being published by a run now, or archived already.
    """
    require_admin_actor(
        session,
        email=actor_email,
        business_id=business.id,
        action=ARCHIVE,
        detail={"external_id": external_id},
    )
    [item] = items_by_external_id(session, business, [external_id])
    items = table_of(Item)
    archived = session.execute(
        sa.update(items)
        .where(items.c.id == item.id, items.c.status.in_(ASSESSABLE))
        .values(status=ItemStatus.ARCHIVED.value, ready_at=None, updated_at=utcnow())
        .returning(items.c.id)
    ).scalar_one_or_none()
    if archived is None:
        session.refresh(item)
        raise HoldRefusedError(_why_not_archived(item))
    session.refresh(item)
    later = [
        row.id
        for row in matching_items(session, business.id, [item], earliest=None)
        if row.status in ASSESSABLE and (row.created_at, row.id) > (item.created_at, item.id)
    ]
    names: tuple[str, ...] = ()
    if later:
        with contextlib.suppress(NotConnectedError):
            changed = reassess(session, business_id=business.id, item_ids=later).changed
            names = tuple(
                row.external_id
                for row in session.execute(
                    sa.select(items.c.external_id).where(items.c.id.in_(changed))
                )
            )
    return _result(session, item.id, names)


def _why_not_archived(item: Item) -> str:
    if item.status == ItemStatus.PUBLISHED:
        return (
            f"item {item.external_id!r} is published: void it in Nomi and archive it with "
            "`items void` or the archive-item deployment"
        )
    if item.status == ItemStatus.PUBLISHING:
        return f"item {item.external_id!r} is being published by a run now: try again after it"
    return f"item {item.external_id!r} is archived already"


def _earlier_lookalikes(
    session: Session, business_id: uuid.UUID, item: Item
) -> dict[uuid.UUID, str]:
    """Every earlier item ``item`` is held for now (not only the first few): id -> external id."""
    rows = matching_items(session, business_id, [item], earliest=None)
    held = possible_duplicates(session, business_id, [item], candidates=rows)
    wanted = {ref.external_id for ref in held.get(item.id, ())}
    return {row.id: row.external_id for row in rows if row.external_id in wanted}


def _result(session: Session, item_id: uuid.UUID, others: tuple[str, ...]) -> HoldResult:
    item = session.get(Item, item_id, populate_existing=True)
    assert item is not None  # read in this transaction
    return HoldResult(item.id, item.external_id, item.status, list(item.review_reasons), others)
