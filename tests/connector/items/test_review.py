"""Review assessment against a real database (SQLite and PostgreSQL): reassess, build_context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connector.items.context import NoConnectionError, build_context, facts_from_item, reassess
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Business, Connection, ConnectionSettings, ContactRule, Item
from tests.connector.factories import (
    make_bank_account,
    make_business,
    make_category,
    make_connection,
    make_contact_rule,
    make_item,
    make_payment_method,
    make_supplier,
    make_tax_rate,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@dataclass
class World:
    business: Business
    connection: Connection


def build_world(db: Session, **settings: Any) -> World:
    """A business connected to Nomi with a few lists, one user rule and a linked card."""
    business = make_business(db)
    connection = make_connection(db, business=business)
    row = db.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
    ).one()
    for key, value in {
        "warn_new_supplier": True,
        "use_tax_list": True,
        "default_tax_costs": "vat20",
        "default_zero_tax_code_costs": "zero",
        **settings,
    }.items():
        setattr(row, key, value)
    make_supplier(db, connection=connection, nomi_id="sup-acme", name="Acme Ltd")
    make_supplier(
        db,
        connection=connection,
        nomi_id="sup-bolt",
        name="Bolt Supplies",
        default_tax_rate_id="red5",
    )
    make_category(db, connection=connection, nomi_id="cat-office", name="Office")
    make_category(db, connection=connection, nomi_id="cat-travel", name="Travel")
    make_category(db, connection=connection, nomi_id="cat-old", name="Old", status="ARCHIVED")
    make_tax_rate(
        db, connection=connection, nomi_id="vat20", name="VAT 20%", applies_to="PURCHASES"
    )
    make_tax_rate(db, connection=connection, nomi_id="zero", name="Zero", rate=Decimal("0"))
    make_tax_rate(db, connection=connection, nomi_id="red5", name="Reduced", rate=Decimal("5"))
    make_bank_account(db, connection=connection, nomi_id="bank-main")
    make_contact_rule(db, connection=connection, name="Acme Ltd", category_nomi_id="cat-office")
    db.commit()
    return World(business, connection)


def cost(db: Session, world: World, **overrides: Any) -> Item:
    """A cost item in review from Acme (the rule gives its category)."""
    values: dict[str, Any] = {"status": ItemStatus.REVIEW, "contact_name": "Acme Ltd"}
    return make_item(db, business=world.business, **(values | overrides))


def stored(engine: Engine, item_id: uuid.UUID) -> Item:
    with Session(engine) as fresh:
        found = fresh.get(Item, item_id)
        assert found is not None
        return found


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


def test_a_nomi_supplier_default_rate_is_a_nomi_rule_only_with_use_supplier_tax_rates(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    item = cost(db, world, contact_name="Bolt Supplies", category_edit="cat-office")
    db.commit()

    reassess(db, business_id=world.business.id, now=T0)
    db.commit()
    assert stored(engine, item.id).resolved_tax_rate_nomi_id == "vat20"

    db.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == world.connection.id)
    ).one().use_supplier_tax_rates = True
    db.commit()
    reassess(db, business_id=world.business.id, now=T1)
    db.commit()
    after = stored(engine, item.id)
    assert after.resolved_tax_rate_nomi_id == "red5"
    assert after.resolved_sources["tax_rate"] == "nomi_supplier_rule"
    assert after.resolved_tax == Decimal("5.71")


def test_a_stored_nomi_rule_beats_the_suppliers_default_rate(db: Session) -> None:
    world = build_world(db, use_supplier_tax_rates=True)
    make_contact_rule(
        db,
        connection=world.connection,
        name="Bolt Supplies",
        source="nomi",
        tax_rate_nomi_id="zero",
    )
    db.commit()
    ctx = build_context(db, world.business.id)
    rule = ctx.rule("supplier", "nomi", ["Bolt Supplies"])
    assert rule is not None
    assert rule.tax_rate_id == "zero"


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


def test_build_context_refuses_a_business_without_a_connection(db: Session) -> None:
    business = make_business(db)
    with pytest.raises(NoConnectionError, match=f"business {business.id} has no Nomi connection"):
        build_context(db, business.id)


def test_build_context_falls_back_to_default_settings_without_a_settings_row(db: Session) -> None:
    business = make_business(db)
    connection = make_connection(db, business=business, with_settings=False)
    ctx = build_context(db, business.id)
    defaults = ConnectionSettings(connection_id=connection.id)
    assert ctx.settings.warn_new_supplier == defaults.warn_new_supplier
    assert ctx.suppliers == ()


def test_reassess_runs_a_fixed_number_of_statements_however_many_items(
    engine: Engine, db: Session
) -> None:
    world = build_world(db)
    for n in range(300):
        cost(db, world, external_id=f"bulk-{n}", contact_name="Acme Ltd" if n % 2 else "Nobody")
    db.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        report = reassess(db, business_id=world.business.id, now=T0)
        db.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)

    assert report.assessed == 300
    assert report.ready == 150
    assert sum(s.lstrip().upper().startswith("SELECT") for s in statements) <= 10
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) <= 1
    statuses = db.exec(select(Item.status).where(col(Item.business_id) == world.business.id))
    assert sorted(statuses.all()).count(ItemStatus.READY) == 150


def test_facts_from_item_maps_the_item_columns() -> None:
    method = uuid.uuid4()
    item = Item(
        business_id=uuid.uuid4(),
        kind=ItemKind.EXPENSE_CLAIM,
        external_id="x",
        contact_name="Cafe",
        total=Decimal("9.99"),
        tax_amount=Decimal("0"),
        category_edit="cat-1",
        tax_rate_edit="tax-1",
        paid=False,
        payment_method_id=method,
        claimant_email="sam@example.test",
        image_path="/tmp/receipt.png",
        contact_mapped_nomi_id="sup-9",
    )
    facts = facts_from_item(item)
    assert facts.kind == "expense_claim"
    assert (facts.total, facts.extracted_tax) == (Decimal("9.99"), Decimal("0"))
    assert (facts.category_id, facts.tax_rate_id) == ("cat-1", "tax-1")
    assert facts.paid is None
    assert facts.payment_method_id == str(method)
    assert facts.claimant == "sam@example.test"
    assert facts.has_image is True
    assert facts.mapped_contact_id == "sup-9"


def test_an_item_claimed_while_being_assessed_is_not_overwritten(
    engine: Engine, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.items.context as review

    world = build_world(db)
    item = cost(db, world, status=ItemStatus.READY, contact_name="Nobody")
    db.commit()
    real_resolve = review.resolve

    def claim_then_resolve(*args: Any) -> Any:
        db.connection().execute(
            sa.text("UPDATE items SET status = 'publishing' WHERE id = :id"),
            {"id": item.id.hex if engine.dialect.name == "sqlite" else item.id},
        )
        return real_resolve(*args)

    monkeypatch.setattr(review, "resolve", claim_then_resolve)
    reassess(db, business_id=world.business.id, now=T0)
    db.commit()

    after = stored(engine, item.id)
    assert after.status == ItemStatus.PUBLISHING
    assert after.review_reasons == []
