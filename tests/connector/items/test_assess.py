"""Readiness assessment against a real database (SQLite and PostgreSQL): what reassess writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connector.items.assess import reassess
from connector.rules.vocabulary import ItemStatus
from connector.store.models import ContactRule, Item
from tests.connector.conftest import statements_on
from tests.connector.factories import (
    make_payment_method,
)
from tests.connector.items.conftest import T0, T1, build_world, cost, stored


def test_reassess_resolves_review_and_ready_items_and_leaves_claimed_published_and_archived_alone(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    fixable = cost(db, world)
    blocked = cost(db, world, status=ItemStatus.READY, contact_name="Bolt Supplies")
    untouchable = {
        status: cost(db, world, status=status, contact_name="Nobody", total=None)
        for status in (ItemStatus.PUBLISHING, ItemStatus.PUBLISHED, ItemStatus.ARCHIVED)
    }
    db.commit()

    report = reassess(db, business_id=world.business.id, now=T0)
    db.commit()

    assert (report.assessed, report.ready, report.review, report.updated) == (2, 1, 1, 2)
    assert report.became_ready == (fixable.id,)
    assert report.became_review == (blocked.id,)
    ready = stored(engine, fixable.id)
    assert ready.status == ItemStatus.READY
    assert ready.review_reasons == []
    assert ready.resolved_contact_nomi_id == "sup-acme"
    assert ready.resolved_category_nomi_id == "cat-office"
    assert ready.resolved_tax_rate_nomi_id == "vat20"
    assert (ready.resolved_net, ready.resolved_tax) == (Decimal("100.00"), Decimal("20.00"))
    assert ready.resolved_sources["category"] == "user_rule"
    assert ready.resolved_sources["tax_rate"] == "default_tax"
    assert ready.resolved_sources["tax_amount"] == "extracted"
    assert ready.ready_at == T0
    review = stored(engine, blocked.id)
    assert review.status == ItemStatus.REVIEW
    assert review.review_reasons == [
        "no category: set one on the item or add a supplier rule for 'Bolt Supplies'"
    ]
    assert review.ready_at is None
    for status, item in untouchable.items():
        after = stored(engine, item.id)
        assert after.status == status
        assert after.resolved_sources == {}
        assert after.updated_at == item.updated_at


def test_a_second_reassess_writes_nothing_and_keeps_ready_at(engine: Engine, db: Session) -> None:
    world = build_world(db)
    item = cost(db, world)
    db.commit()
    reassess(db, business_id=world.business.id, now=T0)
    db.commit()

    again = reassess(db, business_id=world.business.id, now=T1)
    db.commit()

    assert (again.assessed, again.ready, again.updated) == (1, 1, 0)
    assert stored(engine, item.id).ready_at == T0


def test_a_rule_change_reapplies_on_reassess_but_never_overwrites_an_item_edit(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    plain = cost(db, world)
    edited = cost(db, world, category_edit="cat-travel")
    db.commit()
    reassess(db, business_id=world.business.id, now=T0)
    db.commit()
    rule = db.exec(select(ContactRule).where(ContactRule.name == "Acme Ltd")).one()
    rule.category_nomi_id = "cat-old"
    db.commit()

    report = reassess(db, business_id=world.business.id, now=T1)
    db.commit()

    assert report.became_review == (plain.id,)
    after = stored(engine, plain.id)
    assert after.status == ItemStatus.REVIEW
    assert after.review_reasons == [
        "category 'Old' (from the supplier rule for 'Acme Ltd') is archived in Nomi: choose another"
    ]
    kept = stored(engine, edited.id)
    assert kept.status == ItemStatus.READY
    assert kept.resolved_category_nomi_id == "cat-travel"
    assert kept.resolved_sources["category"] == "item"
    assert kept.ready_at == T0


def test_item_ids_limit_the_assessment_and_other_businesses_are_never_touched(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    other = build_world(db)
    chosen = cost(db, world)
    left = cost(db, world)
    foreign = cost(db, other)
    db.commit()

    report = reassess(db, business_id=world.business.id, item_ids=[chosen.id, foreign.id], now=T0)
    db.commit()

    assert report.assessed == 1
    assert stored(engine, chosen.id).status == ItemStatus.READY
    assert stored(engine, left.id).status == ItemStatus.REVIEW
    assert stored(engine, foreign.id).status == ItemStatus.REVIEW


def test_a_paid_item_with_a_linked_card_stores_the_bank_account(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    card = make_payment_method(db, business=world.business, bank_account_nomi_id="bank-main")
    item = cost(db, world, paid=True, payment_method_id=card.id)
    db.commit()

    reassess(db, business_id=world.business.id, now=T0)
    db.commit()

    assert stored(engine, item.id).resolved_bank_account_nomi_id == "bank-main"


def test_a_new_supplier_waits_under_warn_new_supplier_until_confirmed(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    item = cost(db, world, contact_name="Newco Widgets", category_edit="cat-office")
    db.commit()
    reassess(db, business_id=world.business.id, now=T0)
    db.commit()
    assert stored(engine, item.id).review_reasons[0].startswith("new supplier 'Newco Widgets'")

    db.get(Item, item.id).contact_confirmed = True  # type: ignore[union-attr]
    db.commit()
    reassess(db, business_id=world.business.id, item_ids=[item.id], now=T1)
    db.commit()
    after = stored(engine, item.id)
    assert after.status == ItemStatus.READY
    assert after.resolved_contact_nomi_id is None
    assert after.resolved_sources["contact"] == "confirmed_new_contact"


def test_loaded_items_in_the_session_see_the_new_status(db: Session) -> None:
    world = build_world(db)
    item = cost(db, world)
    db.commit()
    assert item.status == ItemStatus.REVIEW

    reassess(db, business_id=world.business.id, now=T0)

    assert item.status == ItemStatus.READY


def test_reassess_runs_a_fixed_number_of_statements_however_many_items(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    for n in range(300):
        cost(db, world, external_id=f"bulk-{n}", contact_name="Acme Ltd" if n % 2 else "Nobody")
    db.commit()
    with statements_on(engine) as seen:
        report = reassess(db, business_id=world.business.id, now=T0)
        db.commit()
    statements = [sql for sql, _ in seen]

    assert report.assessed == 300
    assert report.ready == 150
    # the context, the items, and one look-up of possible duplicates per 500 items
    assert sum(s.lstrip().upper().startswith("SELECT") for s in statements) <= 11
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) <= 1
    statuses = db.exec(select(Item.status).where(col(Item.business_id) == world.business.id))
    assert sorted(statuses.all()).count(ItemStatus.READY) == 150


def test_an_item_claimed_while_being_assessed_is_not_overwritten(
    engine: Engine, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.items.assess as assess

    world = build_world(db)
    item = cost(db, world, status=ItemStatus.READY, contact_name="Nobody")
    db.commit()
    real_resolve = assess.resolve

    def claim_then_resolve(*args: Any) -> Any:
        db.connection().execute(
            sa.text("UPDATE items SET status = 'publishing' WHERE id = :id"),
            {"id": item.id.hex if engine.dialect.name == "sqlite" else item.id},
        )
        return real_resolve(*args)

    monkeypatch.setattr(assess, "resolve", claim_then_resolve)
    reassess(db, business_id=world.business.id, now=T0)
    db.commit()

    after = stored(engine, item.id)
    assert after.status == ItemStatus.PUBLISHING
    assert after.review_reasons == []
