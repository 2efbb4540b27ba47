"""Nomi supplier rules: each supplier's default tax rate as a ``ContactRule`` (source ``nomi``).

With the connection setting ``use_supplier_tax_rates`` on, every active supplier with a
``default_tax_rate_id`` gives one rule keyed by its normalised name (when two suppliers share a
normalised name, the most recently updated one wins). Rules whose supplier was archived, renamed or
lost its default rate are deleted, and with the setting off every ``nomi`` supplier rule is deleted.
The reconciliation is set-based: one query finds the rules to add or change, one upsert per 1000 of
them writes, one ``DELETE`` removes the stale ones. User rules (source ``user``) are never touched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from connector.rules.vocabulary import ContactKind, RuleSource
from connector.store.base import table_of, utcnow
from connector.store.models import ConnectionSettings, ContactRule, Supplier
from connector.sync.writer import ACTIVE, insert_for

_CHUNK = 1000


@dataclass(frozen=True)
class RuleChanges:
    """What `reconcile_nomi_supplier_rules` changed."""

    upserted: int = 0
    removed: int = 0


def reconcile_nomi_supplier_rules(session: Session, connection_id: uuid.UUID) -> RuleChanges:
    """Make the ``nomi`` supplier rules match the mirrored suppliers and the setting.

    Args:
        session: An open session (the caller commits).
        connection_id: The connection whose rules to reconcile.

    Returns:
        How many rules were inserted or changed, and how many removed.
    """
    rules = table_of(ContactRule)
    suppliers = table_of(Supplier)
    settings = table_of(ConnectionSettings)
    enabled = session.execute(
        sa.select(settings.c.use_supplier_tax_rates).where(
            settings.c.connection_id == connection_id
        )
    ).scalar_one_or_none()
    mine = sa.and_(
        rules.c.connection_id == connection_id,
        rules.c.kind == ContactKind.SUPPLIER.value,
        rules.c.source == RuleSource.NOMI.value,
    )
    if not enabled:
        gone = session.connection().execute(sa.delete(rules).where(mine))
        return RuleChanges(removed=int(gone.rowcount or 0))

    wanted = sa.and_(
        suppliers.c.connection_id == connection_id,
        suppliers.c.status == ACTIVE,
        suppliers.c.default_tax_rate_id.is_not(None),
        suppliers.c.name_normalised != "",  # a name with nothing to match on matches nothing
    )
    rank = (
        sa.func.row_number()
        .over(
            partition_by=suppliers.c.name_normalised,
            order_by=(suppliers.c.nomi_updated_at.desc(), suppliers.c.nomi_id.desc()),
        )
        .label("rank")
    )
    ranked = (
        sa.select(
            suppliers.c.name_normalised, suppliers.c.name, suppliers.c.default_tax_rate_id, rank
        )
        .where(wanted)
        .subquery()
    )
    desired = sa.select(ranked).where(ranked.c.rank == 1).subquery()
    changed = session.execute(
        sa.select(desired.c.name_normalised, desired.c.name, desired.c.default_tax_rate_id)
        .select_from(
            desired.outerjoin(
                rules, sa.and_(mine, rules.c.name_normalised == desired.c.name_normalised)
            )
        )
        .where(
            sa.or_(
                rules.c.id.is_(None),
                rules.c.tax_rate_nomi_id.is_(None),
                rules.c.tax_rate_nomi_id != desired.c.default_tax_rate_id,
                rules.c.name != desired.c.name,
            )
        )
    ).all()
    now = utcnow()
    for start in range(0, len(changed), _CHUNK):
        stmt = insert_for(session, rules)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                rules.c.connection_id,
                rules.c.kind,
                rules.c.name_normalised,
                rules.c.source,
            ],
            set_={
                "name": stmt.excluded.name,
                "tax_rate_nomi_id": stmt.excluded.tax_rate_nomi_id,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        session.connection().execute(
            stmt,
            [
                {
                    "id": uuid.uuid4(),
                    "connection_id": connection_id,
                    "kind": ContactKind.SUPPLIER.value,
                    "source": RuleSource.NOMI.value,
                    "name": name,
                    "name_normalised": normalised,
                    "tax_rate_nomi_id": rate,
                    "created_at": now,
                    "updated_at": now,
                }
                for normalised, name, rate in changed[start : start + _CHUNK]
            ],
        )
    still_wanted = (
        sa.select(suppliers.c.id)
        .where(wanted, suppliers.c.name_normalised == rules.c.name_normalised)
        .exists()
    )
    gone = session.connection().execute(sa.delete(rules).where(mine, ~still_wanted))
    return RuleChanges(upserted=len(changed), removed=int(gone.rowcount or 0))
