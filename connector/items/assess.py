"""Readiness assessment: resolve a business's items in review/ready and store the outcome.

``reassess`` reads the items with Core statements (no per-item queries) and writes status, reasons,
resolved values and sources. Every write is guarded by ``status IN ('review', 'ready')`` so an item
claimed by a publish run meanwhile is never touched. The possible duplicates of each batch of
``_CHUNK`` items are found with one indexed query (``possible_duplicates``) and handed to the
engine as facts.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from connector.errors import NotConnectedError
from connector.items.context import build_context, facts_from_item
from connector.items.names import ItemNames, explain
from connector.rules.engine import resolve
from connector.rules.facts import DuplicateRef, LineResolution, Resolution
from connector.rules.names import contact_key
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.models import Connection, DuplicateRelease, Item

ASSESSABLE = (ItemStatus.REVIEW.value, ItemStatus.READY.value)
#: Items assessed (and looked up for possible duplicates) per query.
BATCH = 500
_CHUNK = BATCH


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


def _chunks(ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
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
    duplicates: dict[uuid.UUID, tuple[DuplicateRef, ...]] = {}
    for chunk in _chunks(rows):
        duplicates |= possible_duplicates(session, business_id, chunk)
    names = ItemNames(session, business_id, ctx)  # categories and tax rates by code or name
    for row in rows:
        facts, unnamed = names.facts(row, facts_from_item(row))
        if row.id in duplicates:
            facts = dataclasses.replace(facts, possible_duplicates=duplicates[row.id])
        values = resolved_values(explain(resolve(facts, ctx), unnamed), row, stamp)
        values["supplier_key"] = contact_key(row.contact_name)  # kept current for the look-ups
        ready += values["status"] == ItemStatus.READY
        if all(getattr(row, k) == v for k, v in values.items()):
            continue
        if values["status"] != row.status:
            (became_ready if values["status"] == ItemStatus.READY else became_review).append(row.id)
        updates.append(
            {"b_id": row.id, "b_updated_at": stamp, **{f"v_{k}": v for k, v in values.items()}}
        )
    names.write()
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


SAME_AMOUNTS = "supplier, date and total"
SAME_REFERENCE = "supplier and reference"


def _order(row: Any) -> tuple[Any, uuid.UUID]:
    """Import order: ``created_at``, then the id (intake's ids grow within a chunk)."""
    return (row.created_at, row.id)


#: The earliest items of each group of look-alikes a batch's query returns (a file of 100,000
#: identical rows must not make each batch read all the earlier ones).
EARLIEST = 3


def matching_items(
    session: Session,
    business_id: uuid.UUID,
    probes: Iterable[Any],
    *,
    earliest: int | None = EARLIEST,
) -> list[Any]:
    """Items of the business, not archived, with the supplier key and date and total, or the
    supplier key and reference, of one of ``probes`` (rows or items), probes included: one
    indexed query (``ix_items_duplicate_amounts``, ``ix_items_duplicate_reference``) that keeps
    the ``earliest`` of each group of the same kind, document type and values (None: all)."""
    amounts: set[tuple[str, Any, Any]] = set()
    references: set[tuple[str, str]] = set()
    for probe in probes:
        key = contact_key(probe.contact_name)
        if key is None:
            continue
        if probe.date is not None and probe.total is not None:
            amounts.add((key, probe.date, probe.total))
        if probe.reference:
            references.add((key, probe.reference))
    table = table_of(Item)
    columns = (
        table.c.id,
        table.c.external_id,
        table.c.kind,
        table.c.document_type,
        table.c.contact_name,
        table.c.supplier_key,
        table.c.date,
        table.c.total,
        table.c.reference,
        table.c.status,
        table.c.nomi_record_id,
        table.c.created_at,
    )
    same = (table.c.kind, table.c.document_type, table.c.supplier_key)
    parts: list[sa.Select[Any]] = []
    for values, found in (
        ((table.c.date, table.c.total), amounts),
        ((table.c.reference,), references),
    ):
        if not found:
            continue
        # A join on the probes: each probe one seek of the index (SQLite walks every item of
        # the business for ``(...) IN (VALUES ...)``).
        probe = (
            sa.values(
                *(sa.column(f"p{n}", c.type) for n, c in enumerate((same[2], *values))),
                name=f"probe{len(parts)}",
            )
            .data(sorted(found))
            .cte(f"probe{len(parts)}")
        )
        on = sa.and_(
            table.c.business_id == business_id,
            *(c == probe.c[f"p{n}"] for n, c in enumerate((same[2], *values))),
        )
        query = (
            sa.select(*columns)
            .select_from(probe.join(table, on))
            .where(table.c.status != ItemStatus.ARCHIVED.value)
        )
        if earliest is not None:
            number = sa.func.row_number().over(
                partition_by=(*same, *values), order_by=(table.c.created_at, table.c.id)
            )
            ranked = query.add_columns(number.label("n")).subquery()
            query = sa.select(*(ranked.c[c.name] for c in columns)).where(ranked.c.n <= earliest)
        parts.append(query)
    if not parts:
        return []
    statement = parts[0] if len(parts) == 1 else sa.union(*parts)
    return list(session.execute(statement).all())


def _same(row: Any, other: Any) -> str | None:
    """What ``other`` shares with ``row`` that makes it a possible duplicate, if anything."""
    key = contact_key(row.contact_name)
    if key is None or other.id == row.id or other.supplier_key != key:
        return None
    if (other.kind, other.document_type) != (row.kind, row.document_type):
        return None
    same_amounts = (other.date, other.total) == (row.date, row.total)
    if row.date is not None and row.total is not None and same_amounts:
        return SAME_AMOUNTS
    if row.reference and other.reference == row.reference:
        return SAME_REFERENCE
    return None


def possible_duplicates(
    session: Session,
    business_id: uuid.UUID,
    rows: Sequence[Any],
    *,
    candidates: Sequence[Any] | None = None,
) -> dict[uuid.UUID, tuple[DuplicateRef, ...]]:
    """For each of ``rows`` (a batch of items), the earlier items it may duplicate.

    Earlier is import order (``created_at``, then id): of a pair only the later item is held.
    Archived items and pairs an admin released (``duplicate_releases``) never count. One query
    for the batch, and one more for the released pairs when anything matched.

    Args:
        session: An open database session.
        business_id: The business of the items.
        rows: The items (rows or ``Item`` objects).
        candidates: What ``matching_items`` found for ``rows`` already (default: look it up).

    Returns:
        Item id -> its possible duplicates, earliest first (items with none are left out).
    """
    if not rows:
        return {}
    if candidates is None:
        candidates = matching_items(session, business_id, rows)
    by_key: dict[str, list[Any]] = {}
    for other in sorted(candidates, key=_order):
        by_key.setdefault(other.supplier_key, []).append(other)
    found: dict[uuid.UUID, list[tuple[Any, str]]] = {}
    for row in rows:
        for other in by_key.get(contact_key(row.contact_name) or "", ()):
            if _order(other) >= _order(row):
                break
            same = _same(row, other)
            if same is not None:
                found.setdefault(row.id, []).append((other, same))
    released = _released(session, list(found)) if found else set()
    duplicates: dict[uuid.UUID, tuple[DuplicateRef, ...]] = {}
    for item_id, pairs in found.items():
        refs = tuple(
            DuplicateRef(other.external_id, same, other.nomi_record_id)
            for other, same in pairs
            if (item_id, other.id) not in released
        )
        if refs:
            duplicates[item_id] = refs
    return duplicates


def _released(session: Session, item_ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The released (held item, other item) pairs of these items, in either order."""
    table = table_of(DuplicateRelease)
    rows = session.execute(
        sa.select(table.c.item_id, table.c.other_item_id).where(
            sa.or_(table.c.item_id.in_(item_ids), table.c.other_item_id.in_(item_ids))
        )
    ).all()
    return {(a, b) for a, b in rows} | {(b, a) for a, b in rows}


def reassess_after_organisation_change(
    session: Session,
    *,
    business_id: uuid.UUID | None = None,
    connection_id: uuid.UUID | None = None,
) -> ReassessReport:
    """Assess again every review/ready item of a business whose Nomi organisation changed.

    For the sync to call when the mirrored lock date (or base currency) moves: items dated on
    or before a new lock date are held, items a lock date no longer covers become Ready again.
    Give the business or its connection. The caller commits.

    Raises:
        NotConnectedError: If the business (or the connection) has no Nomi connection.
        ValueError: Neither or both of ``business_id`` and ``connection_id`` given.
    """
    if (business_id is None) == (connection_id is None):
        raise ValueError("give business_id or connection_id")
    if business_id is None:
        business_id = session.execute(
            sa.select(table_of(Connection).c.business_id).where(
                table_of(Connection).c.id == connection_id
            )
        ).scalar_one_or_none()
        if business_id is None:
            raise NotConnectedError(f"connection {connection_id} does not exist")
    return reassess(session, business_id=business_id)
