"""Append-only history: publish runs and attempts, sync runs, connection checks, the audit log.

Every helper inserts one row and flushes it; none updates or deletes (there are no update helpers
on purpose). The caller's transaction decides when rows are committed. The one mutable sync
pointer lives in ``connector.sync.bookmarks``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.rules.vocabulary import AttemptOutcome, ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.history_tables import (
    AuditLog,
    ConnectionCheck,
    PublishAttempt,
    PublishRun,
    SyncRun,
)
from connector.store.models import Item


def _insert(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


def record_audit(
    session: Session,
    *,
    action: str,
    allowed: bool,
    business_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row (``detail`` must hold no secrets)."""
    return _insert(
        session,
        AuditLog(
            action=action,
            allowed=allowed,
            business_id=business_id,
            actor_user_id=user_id,
            detail=detail or {},
        ),
    )


def record_publish_run(session: Session, **fields: Any) -> PublishRun:
    """Append a finished publish run (pass ``id=`` the run id used for claims)."""
    return _insert(session, PublishRun(**fields))


#: The steps that create an item's Nomi record (``connector.publishing.payloads.record_step``).
_RECORD_STEPS = (  # as docs/history.md "published"
    "expense",
    "sales_invoice",
    "supplier_credit_note",
    "customer_credit_note",
    "lookup",
)


def published_in_run(session: Session, run_id: uuid.UUID) -> set[uuid.UUID]:
    """The items a publish run published, read from the durable attempt rows (issue 15).

    An item counts for the run whose attempt created (or found, after a lost answer) its Nomi
    record, provided it is published now: every try of every batch of the run is seen, also a
    try that stopped on a transient failure and was retried by Prefect (its in-memory results
    are lost). Each published item therefore counts for exactly one run.

    Args:
        session: A session on the connector database.
        run_id: The run id its claims and attempts were made under.

    Returns:
        The ids of the items.
    """
    attempts = table_of(PublishAttempt)
    items = table_of(Item)
    rows = session.execute(
        sa.select(attempts.c.item_id)
        .distinct()
        .join(items, items.c.id == attempts.c.item_id)
        .where(
            attempts.c.run_id == run_id,
            attempts.c.step.in_(_RECORD_STEPS),
            attempts.c.outcome.in_(
                [AttemptOutcome.PUBLISHED.value, AttemptOutcome.RECOVERED.value]
            ),
            items.c.status == ItemStatus.PUBLISHED.value,
        )
    ).all()
    return {row[0] for row in rows}


def record_attempt(session: Session, **fields: Any) -> PublishAttempt:
    """Append a publish attempt; ``attempt_no`` defaults to one more than the item's last call of
    the same step (so ``attempt_no > 1`` means that call was repeated: a retry)."""
    if "attempt_no" not in fields:
        last = session.exec(
            select(sa.func.max(PublishAttempt.attempt_no)).where(
                PublishAttempt.item_id == fields["item_id"],
                PublishAttempt.step == fields["step"],
            )
        ).one()
        fields["attempt_no"] = (last or 0) + 1
    return _insert(session, PublishAttempt(**fields))


def record_attempts(
    session: Session, attempts: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Append attempts in the given order, numbering each (item, step) after its last call.

    Two statements whatever the count (the items' last numbers, one ``executemany`` insert), so a
    batch's attempts cost little inside a write transaction.

    Args:
        session: The session whose transaction the rows join.
        attempts: ``PublishAttempt`` fields, one mapping per attempt, all with the same keys
            (``item_id`` required; ``id``, ``attempt_no`` and ``at`` are filled in when missing).

    Returns:
        The inserted rows' values.
    """
    if not attempts:
        return []
    last = session.connection().execute(
        _last_attempt_numbers(), {"items": list({a["item_id"] for a in attempts})}
    )
    next_no = {(item_id, step): (n or 0) + 1 for item_id, step, n in last}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for fields in attempts:
        key = (fields["item_id"], fields["step"])
        number = next_no.get(key, 1)
        next_no[key] = number + 1
        rows.append({"id": uuid.uuid4(), "attempt_no": number, "at": now, **fields})
    session.connection().execute(sa.insert(table_of(PublishAttempt)), rows)
    return rows


@lru_cache(maxsize=1)
def _last_attempt_numbers() -> sa.Select[Any]:
    """The highest ``attempt_no`` per item and step of a list of items (``items``), built once:
    the group commit runs it for every transaction."""
    c = table_of(PublishAttempt).c
    return (
        sa.select(c.item_id, c.step, sa.func.max(c.attempt_no))
        .where(c.item_id.in_(sa.bindparam("items", expanding=True)))
        .group_by(c.item_id, c.step)
    )


def record_sync_run(session: Session, **fields: Any) -> uuid.UUID:
    """Append one list sync of one connection; returns the row's id.

    A Core insert of the model's defaults overlaid by ``fields``: building a ``SyncRun`` object
    would configure every ORM mapper first, about 50 ms in the fresh process of a sync flow run
    (a sixth of a small incremental sync).

    Raises:
        ValueError: A field ``SyncRun`` does not have.
    """
    unknown = set(fields) - set(SyncRun.model_fields)
    if unknown:
        raise ValueError(f"SyncRun has no field(s) {sorted(unknown)}")
    row = {
        name: info.get_default(call_default_factory=True)
        for name, info in SyncRun.model_fields.items()
        if name not in fields
    }
    row.update(fields)
    table = table_of(SyncRun)
    session.connection().execute(sa.insert(table), row)
    return cast(uuid.UUID, row["id"])


def record_connection_check(session: Session, **fields: Any) -> ConnectionCheck:
    """Append one connection health check."""
    return _insert(session, ConnectionCheck(**fields))
