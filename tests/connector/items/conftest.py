"""Shared fixtures and helpers of the item tests: a business with a clerk, intake files, and a
connected business with lists and rules to assess against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.rules.vocabulary import ItemStatus, Role
from connector.store.models import Business, Connection, ConnectionSettings, Item
from tests.connector.factories import (
    make_bank_account,
    make_business,
    make_category,
    make_connection,
    make_contact_rule,
    make_item,
    make_membership,
    make_payment_method,
    make_supplier,
    make_tax_rate,
    make_user,
)

CLERK = "clerk@bright.example"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
HEADER = (
    "external_id,kind,contact_name,reference,date,due_date,currency,total,tax_amount,description,"
    "category,tax_rate,paid,payment_method,claimant_email,claimant_nomi_user_id,image\n"
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
ROW = "{n},cost,Staples UK,R{n},2026-03-02,,GBP,12.00,2.00,paper,,,no,,,,{image}\n"


@pytest.fixture
def business(db: Session) -> Business:
    business = make_business(db, slug="bright-smile")
    make_membership(db, user=make_user(db, email=CLERK), business=business, role=Role.STANDARD)
    make_payment_method(db, business=business, name="Company credit card")
    make_payment_method(db, business=business, name="Business current account")
    db.commit()
    return business


def items_of(db: Session, business: Business) -> list[Item]:
    """The business's items."""
    return list(db.exec(select(Item).where(Item.business_id == business.id)))


def write_rows(path: Path, count: int, *, image: str = "", start: int = 0) -> Path:
    """A CSV of ``count`` good cost rows (``big-<n>``), each naming ``image`` if given."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for n in range(start, start + count):
            handle.write(ROW.format(n=f"big-{n:06d}", image=image))
    return path


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
