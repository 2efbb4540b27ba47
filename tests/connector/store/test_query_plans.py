"""The publish path's guarded statements find their items by primary key on SQLite.

Without statistics SQLite's planner took ``status = ...`` for the narrow term and searched the
status index: every statement of a group commit or claim then read every claimed (or Ready)
item of every business instead of the few it names (docs/performance.md, eleventh session).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.publishing import moves, outbox
from connector.store.db import is_sqlite
from tests.connector.conftest import statements_on
from tests.connector.factories import make_business, make_item


def plan(engine: Engine, sql: str, params: object) -> str:
    """SQLite's query plan for one statement, as one line."""
    first = params[0] if isinstance(params, list) else params
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", first).all()  # type: ignore[arg-type]
    return "; ".join(str(row[-1]) for row in rows)


def items_searches(engine: Engine, seen: list[tuple[str, object]], needle: str) -> list[str]:
    """The plans of the statements containing ``needle``, at least one."""
    plans = [plan(engine, sql, params) for sql, params in seen if needle in sql]
    assert plans, f"no statement with {needle!r} was sent"
    return plans


def test_a_group_commit_reads_and_moves_its_claims_by_primary_key(
    engine: Engine, db: Session
) -> None:
    if not is_sqlite(engine):
        pytest.skip("SQLite's planner without statistics")
    business = make_business(db)
    for _ in range(30):
        make_item(db, business=business)
    db.commit()
    run_id = uuid.uuid4()
    claimed = outbox.claim_ready(db, run_id=run_id, limit=30, business_id=business.id)
    group = [
        moves.Move.published(i.id, run_id, nomi_record_id=f"exp-{n}", nomi_record_type="expense")
        for n, i in enumerate(claimed[:11])
    ]
    db.commit()
    with statements_on(engine) as seen:
        db.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        assert all(moves.apply_moves(db, group))
        db.commit()
    for searched in items_searches(engine, seen, "claimed_by_run"):
        assert "ix_items_status_claimed_at" not in searched, searched
        assert "USING INDEX sqlite_autoindex_items_1 (id=?)" in searched, searched


def test_a_claim_takes_ready_items_by_primary_key_not_by_scanning_every_ready_item(
    engine: Engine, db: Session
) -> None:
    if not is_sqlite(engine):
        pytest.skip("SQLite's planner without statistics")
    business, other = make_business(db), make_business(db)
    for _ in range(5):
        make_item(db, business=business)
        make_item(db, business=other)
    db.commit()
    with statements_on(engine) as seen:
        claimed = outbox.claim_ready(db, run_id=uuid.uuid4(), limit=3, business_id=business.id)
    assert len(claimed) == 3
    assert {i.business_id for i in claimed} == {business.id}
    [update] = items_searches(engine, seen, "UPDATE items")
    outer = update.split("; ")[0]  # the UPDATE's own search; the subquery's come after it
    assert outer.startswith("SEARCH items USING INDEX sqlite_autoindex_items_1 (id=?)"), update
