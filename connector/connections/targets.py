"""Which connections a sync or a check acts on, and what follows a business's sync.

`sync_targets` picks the connections (one business or all) in the statuses asked for; `after_sync`
reconciles the ``nomi`` supplier rules, reassesses the business's items and stamps the sync time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from connector.errors import NotConnectedError
from connector.items.assess import ReassessReport, reassess
from connector.rules.vocabulary import ConnectionStatus
from connector.store.base import utcnow
from connector.store.models import Business, Connection
from connector.sync.supplier_rules import RuleChanges, reconcile_nomi_supplier_rules


@dataclass(frozen=True)
class SyncTarget:
    """One business and its connection."""

    business_id: uuid.UUID
    slug: str
    connection_id: uuid.UUID
    status: str


def sync_targets(
    session: Session,
    business_slug: str | None,
    statuses: Iterable[str] = (ConnectionStatus.CONNECTED,),
) -> list[SyncTarget]:
    """The connections to act on, ordered by business slug.

    Args:
        session: An open session.
        business_slug: One business, or None for every business with a connection in ``statuses``.
        statuses: Connection statuses to include.

    Returns:
        The targets (empty when no business qualifies and none was named).

    Raises:
        NotConnectedError: The named business does not exist or its connection is not in
            ``statuses`` (the message says what to do).
    """
    wanted = [str(s) for s in statuses]
    query = (
        select(Business.id, Business.slug, Connection.id, Connection.status)
        .join(Connection, Connection.business_id == Business.id)  # type: ignore[arg-type]
        .order_by(Business.slug)
    )
    if business_slug is not None:
        query = query.where(Business.slug == business_slug)
    rows = list(session.exec(query))
    if business_slug is not None:
        if not rows:
            raise NotConnectedError(f"business {business_slug!r} does not exist or never connected")
        if rows[0][3] not in wanted:
            # Listing disconnected (skipped on purpose by the caller) would only confuse.
            acted_on = [w for w in wanted if w != ConnectionStatus.DISCONNECTED] or wanted
            raise NotConnectedError(
                f"business {business_slug!r} is {rows[0][3]}, not {' or '.join(acted_on)}; "
                "run reconnect-to-nomi first"
            )
    return [SyncTarget(b, s, c, st) for b, s, c, st in rows if st in wanted]


@dataclass(frozen=True)
class AfterSync:
    """What `after_sync` did."""

    rules: RuleChanges
    review: ReassessReport
    last_synced_at: datetime | None


def after_sync(
    session: Session, target: SyncTarget, *, all_lists_ok: bool, now: datetime | None = None
) -> AfterSync:
    """Reconcile Nomi supplier rules, reassess items and stamp the sync time.

    Args:
        session: An open session (the caller commits).
        target: The business just synced.
        all_lists_ok: True when every list synced; only then is ``last_synced_at`` moved.
        now: The time to stamp (default now).

    Returns:
        Rule changes, the reassessment report and the stamped time (None when not stamped).
    """
    rules = reconcile_nomi_supplier_rules(session, target.connection_id)
    review = reassess(session, business_id=target.business_id)
    stamped = None
    if all_lists_ok:
        connection = session.get(Connection, target.connection_id)
        if connection is not None:
            stamped = now or utcnow()
            connection.last_synced_at = stamped
            session.add(connection)
    session.flush()
    return AfterSync(rules=rules, review=review, last_synced_at=stamped)
