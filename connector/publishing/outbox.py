"""The publish outbox: atomic claims of Ready items and the guarded moves that finish them.

An item goes ``ready`` -> ``publishing`` (claimed by exactly one run) -> ``published``, or back to
``ready``/``review`` with its last error. Claims are committed before ``claim_ready`` returns, so a
claim survives the caller crashing and no two runs (threads, processes, machines) ever hold the same
item:

- PostgreSQL: ``SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED`` then ``UPDATE ... WHERE id IN (...)
  AND status = 'ready' RETURNING id`` in the same transaction.
- SQLite: the same single ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE`` (one writer).

Every later move (``mark_published``, ``mark_failed``, ``release_claim``, ``record_progress``) is
guarded by ``status = 'publishing' AND claimed_by_run = run_id``, so a run can only finish its own
claim; a lost guard raises ``ClaimLostError``. A claim left by a dead run is found by
``stale_claims`` and handed back by ``recover_stale_claims`` *without* bumping the publish
generation, so the next attempt reuses the same idempotency keys and Nomi replays instead of
duplicating.

These functions commit the session they are given: outbox state must be durable before the next
call to Nomi. Call them with no other pending writes you are not ready to commit. The moves also
take ``progress`` (fields of ``PROGRESS_FIELDS`` learned since the last save) and ``also`` (a
callable adding rows, e.g. the item's publish attempts), written in the same transaction as the
move, so an item whose only Nomi write is its record costs one write transaction. Inside a
``connector.store.group_commit.GroupCommit`` the moves join the group's transaction instead (no
commit of
their own; a lost claim raises and the group rolls back that move alone).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, overload

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import begin_write, is_sqlite
from connector.store.group_commit import GROUPED
from connector.store.models import Connection, Item


class ClaimLostError(RuntimeError):
    """The item is no longer claimed by this run (finished, recovered or claimed by another run)."""


# Fields a run may change on its own claimed item while publishing it.
PROGRESS_FIELDS = frozenset(
    {
        "nomi_record_id",
        "nomi_record_type",
        "image_published",
        "image_error",
        "payment_recorded",
        "resolved_contact_nomi_id",
        "last_error_code",
        "last_error_message",
    }
)


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
        .where(target, c.status == ItemStatus.READY)
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
    values = _released(to_status, review_reasons, error_code, error_message)
    return _finish(session, item_id, run_id, _merge(progress, values), also=also)


def _released(
    to_status: str,
    review_reasons: list[str] | None,
    error_code: str | None,
    error_message: str | None,
) -> dict[str, Any]:
    """The values of ``release_claim``."""
    if to_status not in (ItemStatus.READY, ItemStatus.REVIEW):
        raise ValueError("a released claim goes back to 'ready' or 'review'")
    values: dict[str, Any] = {"status": to_status, "claimed_by_run": None, "claimed_at": None}
    if to_status == ItemStatus.REVIEW:
        values["review_reasons"] = review_reasons or []
    else:
        values["ready_at"] = utcnow()
    if error_code is not None or error_message is not None:
        values["last_error_code"] = error_code
        values["last_error_message"] = error_message
    return values


@overload
def mark_published(
    session: Session,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    nomi_record_id: str,
    nomi_record_type: str,
    image_published: bool = ...,
    image_error: str | None = ...,
    payment_recorded: bool = ...,
    now: datetime | None = ...,
    progress: Mapping[str, Any] | None = ...,
    also: Callable[[Session], object] | None = ...,
    plan: Literal[False] = ...,
) -> Item: ...


@overload
def mark_published(
    session: Session | None,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    nomi_record_id: str,
    nomi_record_type: str,
    image_published: bool = ...,
    image_error: str | None = ...,
    payment_recorded: bool = ...,
    now: datetime | None = ...,
    progress: Mapping[str, Any] | None = ...,
    also: Callable[[Session], object] | None = ...,
    plan: Literal[True],
) -> Move: ...


def mark_published(
    session: Session | None,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    nomi_record_id: str,
    nomi_record_type: str,
    image_published: bool = False,
    image_error: str | None = None,
    payment_recorded: bool = False,
    now: datetime | None = None,
    progress: Mapping[str, Any] | None = None,
    also: Callable[[Session], object] | None = None,
    plan: bool = False,
) -> Item | Move:
    """Record that the claimed item is now a Nomi record.

    Args:
        session: A session on the connector database.
        item_id: The claimed item.
        run_id: The run holding the claim.
        nomi_record_id: The Nomi expense or sales-invoice id.
        nomi_record_type: ``expense`` or ``sales_invoice``.
        image_published: The document image was uploaded.
        image_error: Why the image was not uploaded (the item stays published, flagged).
        payment_recorded: A payment was added to the sales invoice.
        now: Publish time (default: now, UTC).
        progress: Unsaved ``PROGRESS_FIELDS`` values written with the move.
        also: Called with the session inside the move's transaction (rows to add with it).
        plan: Write nothing (``session`` unused): return the ``Move`` for ``apply_moves``.

    Returns:
        The item, reloaded, status ``published``; committed. With ``plan``: the move.

    Raises:
        ClaimLostError: ``run_id`` does not hold a claim on the item (nothing is written).
        ValueError: An unknown progress field.
    """
    values = _merge(
        progress,
        _published(
            nomi_record_id, nomi_record_type, image_published, image_error, payment_recorded, now
        ),
    )
    if plan:
        return Move(item_id, run_id, values)
    if session is None:
        raise ValueError("mark_published needs a session unless it only plans")
    return _finish(session, item_id, run_id, values, also=also)


def _published(
    nomi_record_id: str,
    nomi_record_type: str,
    image_published: bool,
    image_error: str | None,
    payment_recorded: bool,
    now: datetime | None,
) -> dict[str, Any]:
    """The values of ``mark_published``."""
    return {
        "status": ItemStatus.PUBLISHED,
        "nomi_record_id": nomi_record_id,
        "nomi_record_type": nomi_record_type,
        "image_published": image_published,
        "image_error": image_error,
        "payment_recorded": payment_recorded,
        "published_at": now or utcnow(),
        "claimed_by_run": None,
        "claimed_at": None,
        "last_error_code": None,
        "last_error_message": None,
    }


def mark_failed(
    session: Session,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    error_code: str,
    error_message: str,
    rejected: bool,
    to_status: str = ItemStatus.READY,
    progress: Mapping[str, Any] | None = None,
    also: Callable[[Session], object] | None = None,
) -> Item:
    """Record a failed publish and give the claim back with the error shown on the item.

    A rejection (Nomi refused the content) bumps ``publish_generation`` so the next attempt, after
    the item is fixed, uses new idempotency keys; a transient failure keeps the generation so a
    retry replays rather than duplicates.

    Args:
        session: A session on the connector database.
        item_id: The claimed item.
        run_id: The run holding the claim.
        error_code: A stable code (e.g. Nomi's ``tax_rate_archived``).
        error_message: A message for people (never a secret).
        rejected: True for a rejection, False for a transient failure.
        to_status: ``ready`` (default) or ``review``.
        progress: Unsaved ``PROGRESS_FIELDS`` values written with the move.
        also: Called with the session inside the move's transaction (rows to add with it).

    Returns:
        The item, reloaded; committed.

    Raises:
        ClaimLostError: ``run_id`` does not hold a claim on the item (nothing is written).
        ValueError: ``to_status`` is not ``ready`` or ``review``, or an unknown progress field.
    """
    values = _failed(error_code, error_message, to_status)
    if rejected:
        values["publish_generation"] = _items().c.publish_generation + 1
    return _finish(session, item_id, run_id, _merge(progress, values), also=also)


def _failed(error_code: str, error_message: str, to_status: str) -> dict[str, Any]:
    """The values of ``mark_failed`` (without the generation bump)."""
    if to_status not in (ItemStatus.READY, ItemStatus.REVIEW):
        raise ValueError("a failed item goes back to 'ready' or 'review'")
    values: dict[str, Any] = {
        "status": to_status,
        "claimed_by_run": None,
        "claimed_at": None,
        "last_error_code": error_code,
        "last_error_message": error_message,
    }
    if to_status == ItemStatus.REVIEW:
        values["review_reasons"] = [f"rejected by Nomi: {error_message}"]
    return values


def record_progress(
    session: Session,
    item_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    also: Callable[[Session], object] | None = None,
    **values: Any,
) -> Item:
    """Save progress on a still-claimed item (e.g. ``nomi_record_id`` before the image upload).

    Args:
        session: A session on the connector database.
        item_id: The claimed item.
        run_id: The run holding the claim.
        also: Called with the session inside the same transaction (rows to add with it).
        **values: Fields from ``PROGRESS_FIELDS``.

    Returns:
        The item, reloaded, still ``publishing``; committed.

    Raises:
        ClaimLostError: ``run_id`` does not hold a claim on the item (nothing is written).
        ValueError: A field outside ``PROGRESS_FIELDS``.
    """
    return _finish(session, item_id, run_id, _merge(values, {}), also=also)


@dataclass(frozen=True)
class Move:
    """One guarded change of a claimed item, applied with others by ``apply_moves``.

    Build it with the class methods, which take the same arguments (and give the same values) as
    ``mark_published``, ``release_claim``, ``mark_failed`` and ``record_progress``.
    """

    item_id: uuid.UUID
    run_id: uuid.UUID
    values: dict[str, Any]
    bump_generation: bool = False

    @classmethod
    def published(
        cls,
        item_id: uuid.UUID,
        run_id: uuid.UUID,
        *,
        nomi_record_id: str,
        nomi_record_type: str,
        image_published: bool = False,
        image_error: str | None = None,
        payment_recorded: bool = False,
        now: datetime | None = None,
        progress: Mapping[str, Any] | None = None,
    ) -> Move:
        """As ``mark_published`` (which it calls with ``plan=True``, so a hook on it sees this)."""
        return mark_published(
            None,
            item_id,
            run_id,
            nomi_record_id=nomi_record_id,
            nomi_record_type=nomi_record_type,
            image_published=image_published,
            image_error=image_error,
            payment_recorded=payment_recorded,
            now=now,
            progress=progress,
            plan=True,
        )

    @classmethod
    def released(
        cls,
        item_id: uuid.UUID,
        run_id: uuid.UUID,
        *,
        to_status: str = ItemStatus.READY,
        review_reasons: list[str] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        progress: Mapping[str, Any] | None = None,
    ) -> Move:
        """As ``release_claim``."""
        values = _released(to_status, review_reasons, error_code, error_message)
        return cls(item_id, run_id, _merge(progress, values))

    @classmethod
    def failed(
        cls,
        item_id: uuid.UUID,
        run_id: uuid.UUID,
        *,
        error_code: str,
        error_message: str,
        rejected: bool,
        to_status: str = ItemStatus.READY,
        progress: Mapping[str, Any] | None = None,
    ) -> Move:
        """As ``mark_failed``."""
        values = _merge(progress, _failed(error_code, error_message, to_status))
        return cls(item_id, run_id, values, bump_generation=rejected)

    @classmethod
    def progressed(cls, item_id: uuid.UUID, run_id: uuid.UUID, **values: Any) -> Move:
        """As ``record_progress``."""
        return cls(item_id, run_id, _merge(values, {}))


def apply_moves(session: Session, moves: Sequence[Move]) -> list[bool]:
    """Apply guarded moves inside the caller's write transaction, a few statements for all.

    The claims are read first (locked ``FOR UPDATE`` on PostgreSQL; under ``BEGIN IMMEDIATE`` on
    SQLite no other writer can move them), then each group of moves with the same fields is one
    ``executemany`` (still guarded by status and run). Nothing is committed.

    Args:
        session: A session whose write transaction is open (``BEGIN IMMEDIATE`` on SQLite).
        moves: At most one move per item.

    Returns:
        Per move, True when its run held the claim and the move was applied (False: claim lost,
        nothing written for that item).
    """
    if not moves:
        return []
    conn = session.connection()
    claims = _claims_statement(for_update=not is_sqlite(conn))
    held = {
        row.id: row.claimed_by_run
        for row in conn.execute(claims, {"ids": [m.item_id for m in moves]})
    }
    applied = [held.get(m.item_id) == m.run_id for m in moves]
    groups: dict[tuple[tuple[str, ...], bool], list[Move]] = {}
    for move, ok in zip(moves, applied, strict=True):
        if ok:
            groups.setdefault((tuple(sorted(move.values)), move.bump_generation), []).append(move)
    now = utcnow()
    for (fields, bump), group in groups.items():
        rows = [
            {
                "k_id": m.item_id,
                "k_run": m.run_id,
                "v_updated_at": now,
                **{f"v_{f}": m.values[f] for f in fields},
            }
            for m in group
        ]
        conn.execute(_move_statement(fields, bump), rows)
    return applied


@lru_cache(maxsize=2)
def _claims_statement(*, for_update: bool) -> sa.Select[Any]:
    """Who holds the claims of a list of items (``ids``), built once: a group commit runs it
    for every transaction, and building and cache-keying it each time cost more than running it."""
    c = _items().c
    statement = sa.select(c.id, c.claimed_by_run).where(
        c.id.in_(sa.bindparam("ids", expanding=True)), c.status == ItemStatus.PUBLISHING
    )
    return statement.with_for_update() if for_update else statement


@lru_cache(maxsize=64)
def _move_statement(fields: tuple[str, ...], bump: bool) -> sa.Update:
    """The guarded ``UPDATE`` of one set of fields (parameters ``k_id``, ``k_run``, ``v_<field>``),
    built once per field set."""
    c = _items().c
    sets: dict[str, Any] = {f: sa.bindparam(f"v_{f}") for f in fields}
    sets["updated_at"] = sa.bindparam("v_updated_at")
    if bump:
        sets["publish_generation"] = c.publish_generation + 1
    return (
        sa.update(_items())
        .where(
            c.id == sa.bindparam("k_id"),
            c.status == ItemStatus.PUBLISHING,
            c.claimed_by_run == sa.bindparam("k_run"),
        )
        .values(sets)
    )


def _merge(progress: Mapping[str, Any] | None, values: dict[str, Any]) -> dict[str, Any]:
    """Progress fields (checked against ``PROGRESS_FIELDS``) overlaid by the move's own values."""
    unknown = set(progress or ()) - PROGRESS_FIELDS
    if unknown:
        raise ValueError(f"fields not allowed during publishing: {sorted(unknown)}")
    return {**(progress or {}), **values}


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
