"""Which items a publish run takes, and the bookkeeping around runs (no Prefect).

- ``Selection`` + ``select_candidates``: the Ready items auto-publish may take (the rejection
  policy lives here: an item whose last error is a rejection is not picked up again until someone
  changes it or publishes it by hand), and the reconnect hook (items that waited while the
  connection was down).
- ``claim_next``: claim the next batch of candidates (skipping items other runs hold).
- ``recover_stale``: give back claims left by dead runs and leave a trace in history, so the next
  attempt looks its record up by ``source_id`` before creating it.
- ``publish_targets`` and ``count_ready``: the businesses a run sweeps and how many items wait;
  ``ready_since``: the items that became Ready lately (a run's drain and on-ready watch).

What a user chose for the items (membership, contact answers, retries) is in
``connector.items.choices``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.history import records as history
from connector.items.context import facts_from_item
from connector.publishing import outbox
from connector.publishing.payloads import generation_step
from connector.rules.engine import resolve
from connector.rules.facts import Resolved, RulesContext
from connector.rules.vocabulary import (
    RETRYABLE_ERROR_CODES,
    AttemptOutcome,
    ConnectionStatus,
    ErrorCode,
    ItemStatus,
    record_step,
)
from connector.store.base import table_of
from connector.store.models import Business, Connection, ConnectionSettings, Item


@dataclass(frozen=True)
class Selection:
    """Which Ready items a run takes.

    Attributes:
        auto: Items the account (or a rule) auto-publishes, whose last error is not a rejection.
        waiting: Also items given back because the connection expired (any kind, any rule).
    """

    auto: bool = True
    waiting: bool = False


def selection_for(trigger: str, auto_publish_on: bool) -> Selection:
    """The selection of an auto-publish run for one business.

    A ``reconnect`` run publishes what waited while the connection was down even when the
    business has ``auto_publish`` off, plus every auto-publishable item when it is on.
    """
    return Selection(auto=auto_publish_on, waiting=trigger == "reconnect")


def _auto_eligible(item: Item | sa.Row[Any], ctx: RulesContext) -> Resolved | None:
    """The item's resolution when it is not rejected last time and auto-published by the
    account setting or a rule; None otherwise."""
    if item.last_error_code is not None and item.last_error_code not in RETRYABLE_ERROR_CODES:
        return None
    facts = facts_from_item(item)
    resolved = Resolved(facts, resolve(facts, ctx))
    return resolved if resolved.resolution.auto_publish else None


def select_candidates(
    session: Session,
    business_id: uuid.UUID,
    ctx: RulesContext,
    selection: Selection,
    *,
    limit: int,
    resolutions: dict[uuid.UUID, Resolved] | None = None,
) -> list[uuid.UUID]:
    """Ids of up to ``limit`` Ready items of the business the selection takes (oldest first).

    Args:
        session: A session on the connector database.
        business_id: The business.
        ctx: Its rules context (to read ``auto_publish`` per item).
        selection: Which items to take.
        limit: Most ids to return.
        resolutions: Filled with the resolution of each item chosen by its ``auto_publish``
            (publishing reuses it instead of resolving the item again).

    Returns:
        Candidate ids in ready order; another run may claim some of them first.
    """
    if not selection.auto and not selection.waiting:
        return []
    # Plain rows, not ORM objects: only ids leave this function (the claim loads what it
    # claimed), and building an ``Item`` per Ready item was most of a batch's selection time.
    items = table_of(Item)
    query = (
        sa.select(items)
        .where(items.c.business_id == business_id, items.c.status == ItemStatus.READY)
        .order_by(items.c.ready_at, items.c.created_at, items.c.id)
        .execution_options(yield_per=500)
    )
    if not selection.auto:
        query = query.where(items.c.last_error_code == ErrorCode.CONNECTION_EXPIRED)
    found: list[uuid.UUID] = []
    for item in session.execute(query):
        waited = selection.waiting and item.last_error_code == ErrorCode.CONNECTION_EXPIRED
        resolved = None if waited or not selection.auto else _auto_eligible(item, ctx)
        if waited or resolved is not None:
            found.append(item.id)
            if resolved is not None and resolutions is not None:
                resolutions[item.id] = resolved
            if len(found) >= limit:
                break
    session.commit()
    return found


def claim_next(
    session: Session,
    *,
    run_id: uuid.UUID,
    business_id: uuid.UUID,
    candidates: Sequence[uuid.UUID],
    batch_size: int,
) -> list[Item]:
    """Claim up to ``batch_size`` of ``candidates``, window by window, until some are claimed.

    Returns:
        The claimed items (committed); empty when every candidate is held by other runs.
    """
    for start in range(0, len(candidates), batch_size):
        window = list(candidates[start : start + batch_size])
        claimed = outbox.claim_ready(
            session, run_id=run_id, limit=batch_size, business_id=business_id, item_ids=window
        )
        if claimed:
            return claimed
    return []


def recover_stale(
    session: Session,
    *,
    older_than: timedelta,
    run_id: uuid.UUID,
    business_id: uuid.UUID | None = None,
) -> list[Item]:
    """Give claims left by dead runs back to ``ready`` and record a ``recovered`` attempt each.

    The attempt carries the record step's idempotency key, so the next publish of the item sees
    that its record may exist and looks it up by ``source_id`` before creating it.

    Returns:
        The recovered items (committed).
    """
    recovered = outbox.recover_stale_claims(session, older_than=older_than, business_id=business_id)
    for item in recovered:
        step = record_step(item.kind, item.document_type)
        keyed = generation_step(step, item.record_generation or 0)
        history.record_attempt(
            session,
            run_id=run_id,
            item_id=item.id,
            business_id=item.business_id,
            step=step,
            idempotency_key=outbox.idempotency_key(item.id, item.publish_generation, keyed),
            outcome=AttemptOutcome.RECOVERED.value,
            error_message=f"claim older than {older_than} given back",
        )
    session.commit()
    return recovered


@dataclass(frozen=True)
class Target:
    """A business a publish run acts for."""

    business_id: uuid.UUID
    slug: str
    selection: Selection
    skipped: str | None = None


def publish_targets(session: Session, business_slug: str | None, trigger: str) -> list[Target]:
    """The businesses an auto-publish run acts for, each with its selection.

    Without a slug: every connected business with ``auto_publish`` on (on a ``reconnect``
    trigger, every connected business). With a slug: that business, or a skipped target saying
    why (not connected, nothing to publish under its settings).

    Raises:
        LookupError: No business has the slug.
    """
    query = (
        select(Business, Connection, ConnectionSettings)
        .join(Connection, col(Connection.business_id) == col(Business.id))
        .join(ConnectionSettings, col(ConnectionSettings.connection_id) == col(Connection.id))
        .order_by(col(Business.slug))
    )
    if business_slug is not None:
        query = query.where(Business.slug == business_slug)
    rows = session.exec(query).all()
    if business_slug is not None and not rows:
        exists = session.exec(select(Business.id).where(Business.slug == business_slug)).first()
        if exists is None:
            raise LookupError(f"no business with slug {business_slug!r}")
        connected = session.exec(select(Connection.id).where(Connection.business_id == exists))
        why = (
            "its connection has no settings row (`nomi-connector settings show` recreates it)"
            if connected.first() is not None
            else "no Nomi connection"
        )
        return [Target(exists, business_slug, Selection(False), skipped=why)]
    targets: list[Target] = []
    for business, connection, settings in rows:
        selection = selection_for(trigger, settings.auto_publish)
        skipped = None
        if connection.status != ConnectionStatus.CONNECTED:
            skipped = f"connection is {connection.status}"
        elif not selection.auto and not selection.waiting:
            skipped = "auto-publish is off"
        if skipped is not None and business_slug is None:
            continue
        targets.append(Target(business.id, business.slug, selection, skipped))
    return targets


def count_ready(session: Session, business_ids: Sequence[uuid.UUID]) -> int:
    """Ready items of these businesses (the progress artifact's 100%)."""
    if not business_ids:
        return 0
    found = session.exec(
        select(sa.func.count())
        .select_from(Item)
        .where(col(Item.business_id).in_(list(business_ids)), Item.status == ItemStatus.READY)
    ).one()
    return int(found)


def ready_since(
    session: Session, business_ids: Sequence[uuid.UUID], since: datetime
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Per business, the ids of its Ready items that became Ready at ``since`` or later.

    One indexed read for all the businesses, no rules: a publish run asks it between batches
    whether items turned Ready while it ran (its batch selects and checks them).
    """
    found: dict[uuid.UUID, set[uuid.UUID]] = {b: set() for b in business_ids}
    if not business_ids:
        return found
    items = table_of(Item)
    rows = session.execute(
        sa.select(items.c.business_id, items.c.id).where(
            items.c.business_id.in_(list(business_ids)),
            items.c.status == ItemStatus.READY,
            items.c.ready_at >= since,
        )
    )
    for row in rows:
        found.setdefault(row.business_id, set()).add(row.id)
    return found
