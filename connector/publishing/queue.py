"""Which items a publish run takes, and the bookkeeping around runs (no Prefect).

- ``Selection`` + ``select_candidates``: the Ready items auto-publish may take (the rejection
  policy lives here: an item whose last error is a rejection is not picked up again until someone
  changes it or publishes it by hand), and the reconnect hook (items that waited while the
  connection was down).
- ``claim_next``: claim the next batch of candidates (skipping items other runs hold).
- ``recover_stale``: give back claims left by dead runs and leave a trace in history, so the next
  attempt looks its record up by ``source_id`` before creating it.
- ``require_member``, ``apply_contact_choices``, ``allow_retry``, ``reassess_after_change``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.access import EMAIL_MAX, PermissionDeniedError, audit_refusal, require_actor
from connector.history import records as history
from connector.items.assess import ReassessReport, reassess
from connector.items.context import build_context, facts_from_item
from connector.publishing import outbox
from connector.publishing.outcomes import CONNECTION_EXPIRED, RETRYABLE_ERROR_CODES
from connector.publishing.payloads import contact_kind, record_step
from connector.rules.engine import resolve
from connector.rules.facts import RulesContext
from connector.rules.names import normalise_name
from connector.rules.vocabulary import AttemptOutcome, ConnectionStatus, ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.models import Business, Connection, ConnectionSettings, Item, Membership, User


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


def _auto_eligible(item: Item | sa.Row[Any], ctx: RulesContext) -> bool:
    """Not rejected last time, and auto-published by the account setting or a rule."""
    if item.last_error_code is not None and item.last_error_code not in RETRYABLE_ERROR_CODES:
        return False
    return resolve(facts_from_item(item), ctx).auto_publish


def select_candidates(
    session: Session,
    business_id: uuid.UUID,
    ctx: RulesContext,
    selection: Selection,
    *,
    limit: int,
) -> list[uuid.UUID]:
    """Ids of up to ``limit`` Ready items of the business the selection takes (oldest first).

    Args:
        session: A session on the connector database.
        business_id: The business.
        ctx: Its rules context (to read ``auto_publish`` per item).
        selection: Which items to take.
        limit: Most ids to return.

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
        query = query.where(items.c.last_error_code == CONNECTION_EXPIRED)
    found: list[uuid.UUID] = []
    for item in session.execute(query):
        waited = selection.waiting and item.last_error_code == CONNECTION_EXPIRED
        if waited or (selection.auto and _auto_eligible(item, ctx)):
            found.append(item.id)
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
        step = record_step(item)
        history.record_attempt(
            session,
            run_id=run_id,
            item_id=item.id,
            business_id=item.business_id,
            step=step,
            idempotency_key=outbox.idempotency_key(item.id, item.publish_generation, step),
            outcome=AttemptOutcome.RECOVERED.value,
            error_message=f"claim older than {older_than} given back",
        )
    session.commit()
    return recovered


def require_member(session: Session, *, business_id: uuid.UUID, email: str, action: str) -> User:
    """The acting user (email compared normalised), who must be a member of the business (any
    role); refusals, an unknown user's too, are audited.

    Raises:
        PermissionDeniedError: Unknown user or not a member (audited in a transaction of its
            own, as ``require_admin`` does).
    """
    user = require_actor(session, email=email, business_id=business_id, action=action)
    membership = session.exec(
        select(Membership).where(
            Membership.business_id == business_id, Membership.user_id == user.id
        )
    ).first()
    if membership is not None:
        return user
    message = (
        f"user {user.email} may not perform '{action}': they are not a member of this business"
    )
    audit_refusal(
        session,
        action=action,
        business_id=business_id,
        user_id=user.id,
        detail={"reason": message, "email": email[:EMAIL_MAX]},
    )
    raise PermissionDeniedError(message, user_id=user.id, business_id=business_id, action=action)


def apply_contact_choices(
    session: Session,
    *,
    business_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID],
    user_id: uuid.UUID,
    confirm_new_contacts: bool,
    map_contacts: dict[str, str],
) -> list[uuid.UUID]:
    """Record the user's answer to the new-supplier warning on the chosen items (audited).

    A mapping (contact name -> existing Nomi contact id, names compared normalised) wins over a
    confirmation; a confirmation only marks items whose contact Nomi does not have. Only items
    in ``review``/``ready`` with a contact name change; the caller then reassesses them.
    Committed.

    Returns:
        The ids of the items that changed.
    """
    mapping = {normalise_name(name): nomi_id for name, nomi_id in map_contacts.items()}
    mapping.pop("", None)  # a name with nothing to match on maps no item
    if not confirm_new_contacts and not mapping:
        return []
    ctx = build_context(session, business_id)
    rows = session.exec(
        select(Item).where(
            col(Item.id).in_(list(item_ids)),
            Item.business_id == business_id,
            col(Item.status).in_([ItemStatus.REVIEW, ItemStatus.READY]),
        )
    ).all()
    changed: list[uuid.UUID] = []
    for item in rows:
        if not item.contact_name:
            continue
        key = normalise_name(item.contact_name)
        mapped = mapping.get(key) if key else None
        if mapped is not None and mapped != item.contact_mapped_nomi_id:
            item.contact_mapped_nomi_id = mapped
            action, detail = "publish.map_contact", {"nomi_id": mapped}
        elif (
            mapped is None
            and confirm_new_contacts
            and not item.contact_confirmed
            and not ctx.contacts_named(contact_kind(item), item.contact_name)
        ):
            item.contact_confirmed = True
            action, detail = "publish.confirm_new_contact", {}
        else:
            continue
        item.updated_at = utcnow()
        session.add(item)
        history.record_audit(
            session,
            action=action,
            allowed=True,
            business_id=business_id,
            user_id=user_id,
            detail={"item_id": str(item.id), "contact": item.contact_name, **detail},
        )
        changed.append(item.id)
    session.commit()
    return changed


def allow_retry(session: Session, item_ids: Sequence[uuid.UUID]) -> int:
    """Clear Nomi's rejection of Ready items (after an edit) so auto-publish takes them again.

    Only rejections: an item waiting for a reconnect (``connection_expired``) or after a
    transient failure keeps its code, which auto-publish does not hold it back for anyway (and a
    reconnect run looks for ``connection_expired``). The caller commits.

    Returns:
        How many items changed.
    """
    if not item_ids:
        return 0
    table = table_of(Item)
    result = session.connection().execute(
        sa.update(table)
        .where(
            table.c.id.in_(list(item_ids)),
            table.c.status == ItemStatus.READY,
            table.c.last_error_code.is_not(None),
            table.c.last_error_code.not_in(sorted(RETRYABLE_ERROR_CODES)),
        )
        .values(last_error_code=None, last_error_message=None, updated_at=utcnow())
    )
    return int(result.rowcount)


def reassess_after_change(session: Session, business_id: uuid.UUID) -> tuple[ReassessReport, int]:
    """Reassess a business's items after its rules or settings changed; retry what changed.

    An item Nomi rejected keeps its rejection, and auto-publish passes it by, until someone acts
    on it. A rules or settings change that changes what the item would publish as is such an act
    (the usual fix for "category archived" or "tax rate not valid for this account"), so Ready
    items whose values changed lose the rejection and the next auto-publish run takes them. Items
    the change left as they were keep theirs. The caller commits.

    Returns:
        The reassessment, and how many rejected items will be tried again.

    Raises:
        NoConnectionError: The business has no Nomi connection.
    """
    report = reassess(session, business_id=business_id)
    return report, allow_retry(session, report.changed)


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
