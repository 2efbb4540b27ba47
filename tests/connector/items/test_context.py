"""The review context against a real database: lists, derived and stored rules, defaults, facts."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.errors import NotConnectedError
from connector.items.assess import reassess
from connector.items.context import build_context, facts_from_item
from connector.rules.vocabulary import ItemKind
from connector.store.models import ConnectionSettings, Item
from tests.connector.factories import (
    make_business,
    make_connection,
    make_contact_rule,
)
from tests.connector.items.conftest import T0, T1, build_world, cost, stored


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


def test_build_context_refuses_a_business_without_a_connection(db: Session) -> None:
    business = make_business(db)
    with pytest.raises(NotConnectedError, match=f"business {business.id} has no Nomi connection"):
        build_context(db, business.id)


def test_build_context_falls_back_to_default_settings_without_a_settings_row(db: Session) -> None:
    business = make_business(db)
    connection = make_connection(db, business=business, with_settings=False)
    ctx = build_context(db, business.id)
    defaults = ConnectionSettings(connection_id=connection.id)
    assert ctx.settings.warn_new_supplier == defaults.warn_new_supplier
    assert ctx.suppliers == ()


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
