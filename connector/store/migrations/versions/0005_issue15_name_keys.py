"""Recompute name_normalised with the matching keys of every script (issue 15)

Before, ``normalise_name`` kept only Latin letters and digits, so every name written in another
script (Arabic, Hebrew, Japanese, Greek, Cyrillic...) was stored with the key ``''`` and they all
matched one another. This recomputes the key of every mirrored supplier and customer and every
contact rule with ``connector.rules.names.normalise_name`` as it is now (rows whose key does not
change,
every plain-ASCII name among them, are not written).

Contact rules are unique on (connection, kind, key, source): where recomputed keys meet, the most
recently updated rule keeps the key and the others are deleted, and a rule left with no key at all
(a ``nomi`` rule derived from a supplier whose name has no letter or digit) is deleted; ``nomi``
rules are derived again from the mirrored suppliers by the next sync. Downgrade leaves the keys
as they are: the old code never matched these names correctly anyway.

Revision ID: 0005_issue15_name_keys
Revises: 0004_list_connection_indexes
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from connector.rules.names import normalise_name

revision: str = "0005_issue15_name_keys"
down_revision: str | Sequence[str] | None = "0004_list_connection_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000


def _key(name: str | None) -> str:
    return normalise_name(name or "")[:255]


def _recompute_contacts(conn: sa.Connection, table_name: str) -> None:
    table = sa.table(table_name, sa.column("id"), sa.column("name"), sa.column("name_normalised"))
    rows = conn.execute(sa.select(table.c.id, table.c.name, table.c.name_normalised)).all()
    changed = [
        {"row_id": row_id, "key": _key(name)} for row_id, name, old in rows if _key(name) != old
    ]
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values(name_normalised=sa.bindparam("key"))
    )
    for start in range(0, len(changed), _CHUNK):
        conn.execute(update, changed[start : start + _CHUNK])


def _recompute_rules(conn: sa.Connection) -> None:
    rules = sa.table(
        "contact_rules",
        sa.column("id"),
        sa.column("connection_id"),
        sa.column("kind"),
        sa.column("source"),
        sa.column("name"),
        sa.column("name_normalised"),
        sa.column("updated_at"),
    )
    rows = conn.execute(
        sa.select(
            rules.c.id,
            rules.c.connection_id,
            rules.c.kind,
            rules.c.source,
            rules.c.name,
            rules.c.name_normalised,
        ).order_by(rules.c.updated_at.desc(), rules.c.id.desc())
    ).all()
    kept: set[tuple[Any, ...]] = set()
    doomed: list[Any] = []
    changed: list[dict[str, Any]] = []
    for row_id, connection_id, kind, source, name, old in rows:
        key = _key(name)
        slot = (connection_id, kind, source, key)
        if not key or slot in kept:
            doomed.append(row_id)
            continue
        kept.add(slot)
        if key != old:
            changed.append({"row_id": row_id, "key": key})
    for start in range(0, len(doomed), _CHUNK):
        conn.execute(sa.delete(rules).where(rules.c.id.in_(doomed[start : start + _CHUNK])))
    if not changed:
        return
    # Two steps, so a row never takes a key another row still holds (the unique constraint).
    park = (
        sa.update(rules)
        .where(rules.c.id == sa.bindparam("row_id"))
        .values(name_normalised=sa.bindparam("parked"))
    )
    conn.execute(
        park, [{"row_id": c["row_id"], "parked": f"~issue15~{c['row_id']}"} for c in changed]
    )
    final = (
        sa.update(rules)
        .where(rules.c.id == sa.bindparam("row_id"))
        .values(name_normalised=sa.bindparam("key"))
    )
    for start in range(0, len(changed), _CHUNK):
        conn.execute(final, changed[start : start + _CHUNK])


def upgrade() -> None:
    """Upgrade data: recompute every stored matching key."""
    conn = op.get_bind()
    _recompute_contacts(conn, "suppliers")
    _recompute_contacts(conn, "customers")
    _recompute_rules(conn)


def downgrade() -> None:
    """Downgrade: keys are left as recomputed (see the module docstring)."""
