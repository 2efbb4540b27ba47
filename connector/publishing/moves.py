"""Guarded moves of a claimed item: the values each finish writes, and applying many at once.

A ``Move`` is one change of an item this run has claimed (published, released, failed, progress).
``apply_moves`` writes many in the caller's transaction (the batch's group commit);
``connector.publishing.outbox.finish`` writes one alone. Every move is guarded by
``status = 'publishing' AND claimed_by_run = run_id``: a run can only move its own claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import is_sqlite
from connector.store.models import Item
from connector.store.sqlite import not_indexed

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


@dataclass(frozen=True)
class Move:
    """One guarded change of a claimed item, applied alone (``outbox.finish``) or with others
    (``apply_moves``). Build it with the class methods; ``progress`` (fields of
    ``PROGRESS_FIELDS`` learned since the last save) is written with the move.
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
        """The claimed item is now a Nomi record (``now``: publish time, default now, UTC)."""
        values = _published(
            nomi_record_id, nomi_record_type, image_published, image_error, payment_recorded, now
        )
        return cls(item_id, run_id, _merge(progress, values))

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
        """Give the claim back unpublished (``ready``, or ``review`` with ``review_reasons``)."""
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
        """A failed publish: the claim goes back with the error shown on the item.

        A rejection (Nomi refused the content) bumps ``publish_generation`` so the next attempt,
        after the item is fixed, uses new idempotency keys; a transient failure keeps the
        generation so a retry replays rather than duplicates.
        """
        values = _merge(progress, _failed(error_code, error_message, to_status))
        return cls(item_id, run_id, values, bump_generation=rejected)

    @classmethod
    def progressed(cls, item_id: uuid.UUID, run_id: uuid.UUID, **values: Any) -> Move:
        """Progress on a still-claimed item (e.g. ``nomi_record_id`` before the image upload)."""
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
        c.id.in_(sa.bindparam("ids", expanding=True)),
        not_indexed(c.status) == ItemStatus.PUBLISHING,  # by id: the status index reads them all
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


def _released(
    to_status: str,
    review_reasons: list[str] | None,
    error_code: str | None,
    error_message: str | None,
) -> dict[str, Any]:
    """The values of ``Move.released``."""
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


def _published(
    nomi_record_id: str,
    nomi_record_type: str,
    image_published: bool,
    image_error: str | None,
    payment_recorded: bool,
    now: datetime | None,
) -> dict[str, Any]:
    """The values of ``Move.published``."""
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


def _failed(error_code: str, error_message: str, to_status: str) -> dict[str, Any]:
    """The values of ``Move.failed`` (without the generation bump)."""
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


def _items() -> sa.Table:
    """The items table (typed Core access)."""
    return table_of(Item)
