"""The publish outbox: atomic claims of Ready items, finishing one claim, stale-claim recovery.

An item goes ``ready`` -> ``publishing`` (claimed by exactly one run) -> ``published``, or back to
``ready``/``review`` with its last error. Claims are committed before ``claim_ready`` returns, so a
claim survives the caller crashing and no two runs ever hold the same item (PostgreSQL:
``FOR UPDATE SKIP LOCKED``; SQLite: one ``UPDATE ... RETURNING`` under ``BEGIN IMMEDIATE``). Moves
(``connector.publishing.moves``) are guarded by the claim; ``recover_stale_claims`` hands claims of
dead runs back *without* bumping the generation, so the next attempt reuses the same keys.
These functions commit the session they are given (inside a ``GroupCommit`` they join its
transaction instead).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.publishing.moves import Move
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import begin_write, is_sqlite
from connector.store.group_commit import GROUPED
from connector.store.models import Connection, Item
from connector.store.sqlite import not_indexed


class ClaimLostError(RuntimeError):
    """The item is no longer claimed by this run (finished, recovered or claimed by another run)."""


def idempotency_key(item_id: uuid.UUID, generation: int, step: str) -> str:
    """The Idempotency-Key for one write of one item.

    Args:
        item_id: The item's id.
        generation: The item's ``publish_generation``.
        step: The write (``contact``, ``expense``, ``sales_invoice``, ``attachment``, ``payment``).

    Returns:
        64 lowercase hex characters: sha256 of ``"<item_id>:<generation>:<step>"``.
    """
    return hashlib.sha256(f"{item_id}:{generation}:{step}".encode()).hexdigest()


def claim_ready(
    session: Session,
    *,
    run_id: uuid.UUID,
    limit: int,
    connection_id: uuid.UUID | None = None,
    business_id: uuid.UUID | None = None,
    item_ids: Sequence[uuid.UUID] | None = None,
    kinds: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[Item]:
    """Atomically claim up to ``limit`` Ready items for ``run_id`` (oldest ready first).

    Args:
        session: A session on the connector database (its engine is used for the claim).
        run_id: The claiming run; stored in ``claimed_by_run``.
        limit: Most items to claim (>= 1).
        connection_id: Claim items of this connection's business.
        business_id: Claim items of this business (alternative to ``connection_id``).
        item_ids: Only these items (a selection chosen by ops).
        kinds: Only these item kinds.
        now: Claim time (default: now, UTC).

    Returns:
        The claimed items, status ``publishing``; already committed.

    Raises:
        ValueError: ``limit`` below 1, or ``connection_id`` unknown.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if connection_id is not None:
        business_id = _business_of(session, connection_id)
    claimed_at = now or utcnow()
    c = _items().c
    candidates = sa.select(c.id).where(c.status == ItemStatus.READY)
    if business_id is not None:
        candidates = candidates.where(c.business_id == business_id)
    if item_ids is not None:
        candidates = candidates.where(c.id.in_(list(item_ids)))
    if kinds is not None:
        candidates = candidates.where(c.kind.in_(list(kinds)))
    candidates = candidates.order_by(c.ready_at, c.created_at, c.id).limit(limit)
    conn = _begin_write(session)
    if is_sqlite(conn):
        # One statement under BEGIN IMMEDIATE: no other writer can run between select and update.
        target = c.id.in_(candidates.scalar_subquery())
    else:
        # Lock the chosen rows first; rows another run holds are skipped, not waited for.
        locked = list(conn.execute(candidates.with_for_update(skip_locked=True)).scalars())
        target = c.id.in_(locked)
    statement = (
        sa.update(_items())
        # By id: on SQLite the status index would read every Ready item of every business.
        .where(target, not_indexed(c.status) == ItemStatus.READY)
        .values(
            status=ItemStatus.PUBLISHING,
            claimed_by_run=run_id,
            claimed_at=claimed_at,
            updated_at=claimed_at,
        )
        .returning(c.id)
    )
    ids = list(conn.execute(statement).scalars())
    session.commit()
    if not ids:
        return []
    return _load(session, ids)


def stale_claims(
    session: Session,
    *,
    older_than: timedelta,
    business_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[Item]:
    """Items stuck in ``publishing`` whose claim is older than ``older_than``.

    Args:
        session: A session on the connector database.
        older_than: Claims at least this old count as left by a dead run.
        business_id: Only this business's items.
        now: Reference time (default: now, UTC).

    Returns:
        The stale items, oldest claim first.
    """
    cutoff = (now or utcnow()) - older_than
    query = select(Item).where(
        Item.status == ItemStatus.PUBLISHING,
        Item.claimed_at < cutoff,  # type: ignore[operator]
    )
    if business_id is not None:
        query = query.where(Item.business_id == business_id)
    query = query.order_by(Item.claimed_at).execution_options(populate_existing=True)  # type: ignore[arg-type]
    return list(session.exec(query))


def recover_stale_claims(
    session: Session,
    *,
    older_than: timedelta,
    business_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[Item]:
    """Hand claims left by dead runs back to ``ready`` (same generation, so keys are reused).

    Args:
        session: A session on the connector database.
        older_than: Claims at least this old are recovered.
        business_id: Only this business's items.
        now: Reference time (default: now, UTC).

    Returns:
        The recovered items (now ``ready``); committed. Items finished meanwhile are skipped.
    """
    _begin_write(session)
    recovered: list[uuid.UUID] = []
    for item in stale_claims(session, older_than=older_than, business_id=business_id, now=now):
        if item.claimed_by_run is None:
            continue
        values = {"status": ItemStatus.READY, "claimed_by_run": None, "claimed_at": None}
        if _guarded_update(session, item.id, item.claimed_by_run, values):
            recovered.append(item.id)
    session.commit()
    return _load(session, recovered)


def release_claim(
    session: Session,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    to_status: str = ItemStatus.READY,
    review_reasons: list[str] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    progress: Mapping[str, Any] | None = None,
    also: Callable[[Session], object] | None = None,
) -> Item:
    """Give a claim back unpublished (e.g. the connection was lost, or the item is now held).

    Args:
        session: A session on the connector database.
        item_id: The claimed item.
        run_id: The run holding the claim.
        to_status: ``ready`` (default) or ``review``.
        review_reasons: Reasons shown when going back to ``review``.
        error_code: Stored as ``last_error_code`` when given.
        error_message: Stored as ``last_error_message`` when given.
        progress: Unsaved ``PROGRESS_FIELDS`` values written with the move.
        also: Called with the session inside the move's transaction (rows to add with it).

    Returns:
        The item, reloaded; committed.

    Raises:
        ClaimLostError: ``run_id`` does not hold a claim on the item (nothing is written).
        ValueError: ``to_status`` is not ``ready`` or ``review``, or an unknown progress field.
    """
    move = Move.released(
        item_id,
        run_id,
        to_status=to_status,
        review_reasons=review_reasons,
        error_code=error_code,
        error_message=error_message,
        progress=progress,
    )
    return finish(session, move, also=also)


def finish(
    session: Session, move: Move, *, also: Callable[[Session], object] | None = None
) -> Item:
    """Apply one guarded move (and ``also``) in its own write transaction, commit, reload.

    Args:
        session: A session on the connector database (no other pending writes).
        move: The move of an item claimed by ``move.run_id``.
        also: Called with the session inside the move's transaction (rows to add with it).

    Returns:
        The item, reloaded; committed (inside a ``GroupCommit``: left to the group).

    Raises:
        ClaimLostError: ``move.run_id`` does not hold a claim on the item (nothing is written).
    """
    values = dict(move.values)
    if move.bump_generation:
        values["publish_generation"] = _items().c.publish_generation + 1
    return _finish(session, move.item_id, move.run_id, values, also=also)


def _finish(
    session: Session,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    values: dict[str, Any],
    *,
    also: Callable[[Session], object] | None = None,
) -> Item:
    """Apply a guarded update (and ``also``) in one write transaction, commit, reload the item."""
    grouped = session.info.get(GROUPED, False)
    _begin_write(session)
    if not _guarded_update(session, item_id, run_id, values):
        if not grouped:
            session.rollback()
        raise ClaimLostError(f"item {item_id} is not claimed by run {run_id}")
    if also is not None:
        also(session)
    if not grouped:
        session.commit()
    return _load(session, [item_id])[0]


def _guarded_update(
    session: Session, item_id: uuid.UUID, run_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    """Update the item only while ``run_id`` holds its claim; True when a row changed."""
    c = _items().c
    statement = (
        sa.update(_items())
        .where(c.id == item_id, c.status == ItemStatus.PUBLISHING, c.claimed_by_run == run_id)
        .values(updated_at=utcnow(), **values)
    )
    result = session.connection().execute(statement)
    return result.rowcount > 0


def _begin_write(session: Session) -> sa.Connection:
    """Commit what the session holds and start a write transaction (``BEGIN IMMEDIATE`` on SQLite).

    A fresh transaction also drops any old SQLite read snapshot, which could not be upgraded to a
    write once another process has committed. In a ``GroupCommit`` session the group's write
    transaction is already open: nothing is committed here.
    """
    if session.info.get(GROUPED, False):
        return session.connection()
    return begin_write(session)


def _items() -> sa.Table:
    """The items table (typed Core access)."""
    return table_of(Item)


def _load(session: Session, ids: list[uuid.UUID]) -> list[Item]:
    """Load items by id, refreshed from the database, oldest ready first."""
    if not ids:
        return []
    query = (
        select(Item)
        .where(Item.id.in_(ids))  # type: ignore[attr-defined]
        .order_by(Item.ready_at, Item.created_at, Item.id)  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    return list(session.exec(query))


def _business_of(session: Session, connection_id: uuid.UUID) -> uuid.UUID:
    """The business of a connection."""
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise ValueError(f"unknown connection {connection_id}")
    return connection.business_id
