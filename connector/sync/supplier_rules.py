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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from connector.rules.vocabulary import ContactKind, RuleSource
from connector.store.base import table_of, utcnow
from connector.store.models import ConnectionSettings, ContactRule, Supplier
from connector.sync.writer import ACTIVE, insert_for

_CHUNK = 1000
_rules = table_of(ContactRule)
_suppliers = table_of(Supplier)
_settings = table_of(ConnectionSettings)
#: A rule to write: ``(name_normalised, name, tax rate nomi id)``.
_Rule = tuple[str, str, str]


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
    mine = _nomi_supplier_rules(connection_id)
    if not _uses_supplier_tax_rates(session, connection_id):
        return RuleChanges(removed=_delete_rules(session, mine))
    wanted = _wanted_suppliers(connection_id)
    changed = _changed_rules(session, wanted, mine)
    _upsert_rules(session, connection_id, changed)
    stale = sa.and_(mine, ~_still_wanted(wanted))
    return RuleChanges(upserted=len(changed), removed=_delete_rules(session, stale))


def _nomi_supplier_rules(connection_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The connection's supplier rules that came from Nomi (never the user's)."""
    return sa.and_(
        _rules.c.connection_id == connection_id,
        _rules.c.kind == ContactKind.SUPPLIER.value,
        _rules.c.source == RuleSource.NOMI.value,
    )


def _uses_supplier_tax_rates(session: Session, connection_id: uuid.UUID) -> bool:
    """The connection's ``use_supplier_tax_rates`` setting (off when it has no settings row)."""
    enabled = session.execute(
        sa.select(_settings.c.use_supplier_tax_rates).where(
            _settings.c.connection_id == connection_id
        )
    ).scalar_one_or_none()
    return bool(enabled)


def _wanted_suppliers(connection_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The connection's suppliers that give a rule: active, with a default rate and a name."""
    return sa.and_(
        _suppliers.c.connection_id == connection_id,
        _suppliers.c.status == ACTIVE,
        _suppliers.c.default_tax_rate_id.is_not(None),
        _suppliers.c.name_normalised != "",  # a name with nothing to match on matches nothing
    )


def _desired_rules(wanted: sa.ColumnElement[bool]) -> sa.Subquery:
    """One row per normalised name: the most recently updated wanted supplier's name and rate."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=_suppliers.c.name_normalised,
            order_by=(_suppliers.c.nomi_updated_at.desc(), _suppliers.c.nomi_id.desc()),
        )
        .label("rank")
    )
    ranked = (
        sa.select(
            _suppliers.c.name_normalised,
            _suppliers.c.name,
            _suppliers.c.default_tax_rate_id,
            rank,
        )
        .where(wanted)
        .subquery()
    )
    return sa.select(ranked).where(ranked.c.rank == 1).subquery()


def _changed_rules(
    session: Session, wanted: sa.ColumnElement[bool], mine: sa.ColumnElement[bool]
) -> list[_Rule]:
    """The desired rules that are missing or differ: ``(name_normalised, name, tax rate)``."""
    desired = _desired_rules(wanted)
    rules = _rules
    matched = desired.outerjoin(
        rules, sa.and_(mine, rules.c.name_normalised == desired.c.name_normalised)
    )
    differs = sa.or_(
        rules.c.id.is_(None),
        rules.c.tax_rate_nomi_id.is_(None),
        rules.c.tax_rate_nomi_id != desired.c.default_tax_rate_id,
        rules.c.name != desired.c.name,
    )
    query = sa.select(desired.c.name_normalised, desired.c.name, desired.c.default_tax_rate_id)
    return list(session.execute(query.select_from(matched).where(differs)).tuples().all())


def _upsert_rules(session: Session, connection_id: uuid.UUID, changed: Sequence[_Rule]) -> None:
    """Insert or update the changed rules, ``_CHUNK`` per statement."""
    now = utcnow()
    for start in range(0, len(changed), _CHUNK):
        rows = [
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
        ]
        session.connection().execute(_upsert_statement(session), rows)


def _upsert_statement(session: Session) -> Any:
    """``INSERT .. ON CONFLICT (connection, kind, name, source) DO UPDATE`` of name and rate."""
    stmt = insert_for(session, _rules)
    return stmt.on_conflict_do_update(
        index_elements=[
            _rules.c.connection_id,
            _rules.c.kind,
            _rules.c.name_normalised,
            _rules.c.source,
        ],
        set_={
            "name": stmt.excluded.name,
            "tax_rate_nomi_id": stmt.excluded.tax_rate_nomi_id,
            "updated_at": stmt.excluded.updated_at,
        },
    )


def _still_wanted(wanted: sa.ColumnElement[bool]) -> sa.Exists:
    """True for a rule whose normalised name still has a wanted supplier."""
    return (
        sa.select(_suppliers.c.id)
        .where(wanted, _suppliers.c.name_normalised == _rules.c.name_normalised)
        .exists()
    )


def _delete_rules(session: Session, where: sa.ColumnElement[bool]) -> int:
    """Delete the rules matching ``where``; returns how many."""
    gone = session.connection().execute(sa.delete(_rules).where(where))
    return int(gone.rowcount or 0)
