"""What ops must be told about a business's items: held in review too long, rejected by Nomi.

Plain queries on the connector database (no Prefect). The daily connection check
(``tasks.verify``) turns ``held_in_review`` into the event ``nomi.items.held``, so it lives beside
``checks``; ``tasks.publish`` names a run's rejected items by their external ids with
``external_ids`` for ``nomi.items.rejected``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from connector.rules.vocabulary import ItemStatus
from connector.store.models import Item

#: How long an item may wait in review before ops are told (PRODUCT.md: "longer than a day").
HELD_TOO_LONG = timedelta(hours=24)
#: Ids one query asks for (SQLite's limit on bound parameters, with room to spare).
_CHUNK = 500


@dataclass(frozen=True)
class NamedItem:
    """One item as ops know it: its external id, why, and since when it waits."""

    external_id: str
    reason: str
    since: datetime | None = None


@dataclass
class HeldItems:
    """A business's items held in review for too long (oldest first, at most ``named`` named)."""

    business_id: uuid.UUID
    count: int = 0
    oldest: datetime | None = None
    items: list[NamedItem] = field(default_factory=list)


def _utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive ones)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def held_in_review(
    session: Session,
    *,
    business_ids: Sequence[uuid.UUID] | None = None,
    older_than: timedelta = HELD_TOO_LONG,
    now: datetime | None = None,
    named: int = 20,
) -> dict[uuid.UUID, HeldItems]:
    """Items in ``review`` that have waited longer than ``older_than``, per business.

    An item's wait starts when it was imported (``created_at``), as in the run-history report's
    waiting items: an item edited and still held has waited since it arrived.

    Args:
        session: A session on the connector database.
        business_ids: Only these businesses (default: every business).
        older_than: The wait after which an item counts.
        now: The time to judge against (default now).
        named: Most items named per business (the count covers them all).

    Returns:
        Business id -> its held items; businesses with none are left out.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    query = (
        select(Item.business_id, Item.external_id, Item.review_reasons, Item.created_at)
        .where(Item.status == ItemStatus.REVIEW, col(Item.created_at) < cutoff)
        .order_by(col(Item.created_at), col(Item.external_id))
    )
    if business_ids is not None:
        query = query.where(col(Item.business_id).in_(list(business_ids)))
    found: dict[uuid.UUID, HeldItems] = {}
    for business_id, external_id, reasons, created_at in session.exec(query):
        held = found.setdefault(business_id, HeldItems(business_id=business_id))
        held.count += 1
        since = _utc(created_at)
        held.oldest = held.oldest or since
        if len(held.items) < named:
            held.items.append(
                NamedItem(external_id, "; ".join(reasons or []) or "in review", since)
            )
    return found


def external_ids(session: Session, item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Item id -> external id, for the ids that name an item."""
    wanted = list(dict.fromkeys(item_ids))
    found: dict[uuid.UUID, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = session.exec(select(Item.id, Item.external_id).where(col(Item.id).in_(chunk)))
        found.update({item_id: external_id for item_id, external_id in rows})
    return found
