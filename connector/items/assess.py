"""Readiness assessment: resolve a business's items in review/ready and store the outcome.

``reassess`` reads the items with Core statements (no per-item queries) and writes status, reasons,
resolved values and sources. Every write is guarded by ``status IN ('review', 'ready')`` so an item
claimed by a publish run meanwhile is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from connector.items.context import build_context, facts_from_item
from connector.rules.engine import resolve
from connector.rules.facts import LineResolution, Resolution
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.models import Item

ASSESSABLE = (ItemStatus.REVIEW.value, ItemStatus.READY.value)
_CHUNK = 500


@dataclass(frozen=True)
class ReassessReport:
    """What ``reassess`` did: items assessed, their status now, and what changed."""

    assessed: int = 0
    ready: int = 0
    review: int = 0
    updated: int = 0
    became_ready: tuple[uuid.UUID, ...] = ()
    became_review: tuple[uuid.UUID, ...] = ()
    #: Every item whose stored values (status, reasons, resolved values) changed.
    changed: tuple[uuid.UUID, ...] = ()


def resolved_values(res: Resolution, old: Any, now: datetime) -> dict[str, Any]:
    """The ``Item`` column values that store ``res`` (``ready_at`` kept while the item stays ready).

    Args:
        res: The engine's resolution of the item.
        old: The item (or a row) as stored before, for its ``status`` and ``ready_at``.
        now: The time to stamp on an item that becomes ready.

    Returns:
        Column name -> value for ``status``, ``review_reasons``, ``resolved_*`` and ``ready_at``.
    """
    ready = res.is_ready
    return {
        "status": ItemStatus.READY.value if ready else ItemStatus.REVIEW.value,
        "review_reasons": list(res.reasons),
        "resolved_contact_nomi_id": res.contact_id,
        "resolved_category_nomi_id": res.category_id,
        "resolved_tax_rate_nomi_id": res.tax_rate_id,
        "resolved_net": res.net,
        "resolved_tax": res.tax,
        "resolved_bank_account_nomi_id": res.bank_account_id,
        "resolved_description": res.description,
        "resolved_sources": {k: str(v) for k, v in res.sources.items()},
        "resolved_lines": [stored_line(line) for line in res.lines],
        "ready_at": (old.ready_at if old.status == ItemStatus.READY and old.ready_at else now)
        if ready
        else None,
    }


def stored_line(line: LineResolution) -> dict[str, Any]:
    """One resolved line as ``Item.resolved_lines`` keeps it (money as decimal strings)."""
    return {
        "number": line.number,
        "category": line.category_id,
        "tax_rate": line.tax_rate_id,
        "net": None if line.net is None else str(line.net),
        "tax": None if line.tax is None else str(line.tax),
        "sources": {k: str(v) for k, v in line.sources.items()},
    }


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _load(
    session: Session, business_id: uuid.UUID, item_ids: Sequence[uuid.UUID] | None
) -> list[Any]:
    table = table_of(Item)
    base = sa.select(table).where(
        table.c.business_id == business_id, table.c.status.in_(ASSESSABLE)
    )
    if item_ids is None:
        return list(session.execute(base.order_by(table.c.id)).all())
    found: list[Any] = []
    for chunk in _chunks(list(dict.fromkeys(item_ids))):
        found.extend(session.execute(base.where(table.c.id.in_(chunk))).all())
    return found


def reassess(
    session: Session,
    *,
    business_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> ReassessReport:
    """Resolve the business's items in ``review``/``ready`` and store the outcome.

    Items in ``publishing``, ``published`` or ``archived`` (or of another business) are never
    touched, even when listed in ``item_ids``. Only items whose stored values change are written.
    The caller commits.

    Args:
        session: An open database session.
        business_id: The business whose items to assess.
        item_ids: Only these items; ``None`` means every item of the business.
        now: The time to stamp as ``ready_at`` (default: now, UTC).

    Returns:
        A ``ReassessReport`` with counts and the ids that changed status.

    Raises:
        NotConnectedError: If the business has no Nomi connection.
    """
    session.flush()
    ctx = build_context(session, business_id)
    stamp = now or utcnow()
    rows = _load(session, business_id, item_ids)
    updates: list[dict[str, Any]] = []
    became_ready: list[uuid.UUID] = []
    became_review: list[uuid.UUID] = []
    ready = 0
    for row in rows:
        values = resolved_values(resolve(facts_from_item(row), ctx), row, stamp)
        ready += values["status"] == ItemStatus.READY
        if all(getattr(row, k) == v for k, v in values.items()):
            continue
        if values["status"] != row.status:
            (became_ready if values["status"] == ItemStatus.READY else became_review).append(row.id)
        updates.append(
            {"b_id": row.id, "b_updated_at": stamp, **{f"v_{k}": v for k, v in values.items()}}
        )
    if updates:
        _write(session, updates)
    return ReassessReport(
        assessed=len(rows),
        ready=ready,
        review=len(rows) - ready,
        updated=len(updates),
        became_ready=tuple(became_ready),
        became_review=tuple(became_review),
        changed=tuple(u["b_id"] for u in updates),
    )


def _write(session: Session, updates: list[dict[str, Any]]) -> None:
    """One guarded executemany UPDATE; then expire any loaded ``Item`` objects that changed."""
    table = table_of(Item)
    columns = [k.removeprefix("v_") for k in updates[0] if k.startswith("v_")]
    stmt = (
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("b_id"),
            sa.or_(*(table.c.status == status for status in ASSESSABLE)),  # no IN: executemany
        )
        .values(
            {
                **{c: sa.bindparam(f"v_{c}") for c in columns},
                "updated_at": sa.bindparam("b_updated_at"),
            }
        )
    )
    session.connection().execute(stmt, updates)
    for values in updates:
        loaded = session.identity_map.get(identity_key(Item, values["b_id"]))
        if loaded is not None:
            session.expire(loaded)
