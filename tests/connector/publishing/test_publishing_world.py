"""Helpers for publishing tests: a connected business whose lists are mirrored from the sandbox.

No tests here; ``test_publishing.py`` (library) and ``tests/flows/test_publish*.py`` (flows) use
these helpers. ``mirror_lists`` stands in for the sync flow: it copies the sandbox's five lists
through the client into our tables.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from connector.items.assess import reassess
from connector.rules.names import normalise_name
from connector.rules.vocabulary import ItemKind
from connector.store.models import (
    BankAccount,
    Category,
    ConnectionSettings,
    Customer,
    Item,
    PaymentMethod,
    Supplier,
    TaxRate,
)
from nomi.client import NomiClient
from sandbox.seed import stable_id
from tests.connector.factories import make_item

PDF = b"%PDF-1.4\n% test document\n" + b"0" * 256


def mirror_lists(session: Session, nomi: NomiClient, connection_id: uuid.UUID) -> None:
    """Copy the organisation's suppliers, customers, categories, tax rates and bank accounts."""
    for supplier in nomi.iter_suppliers(include_archived=True):
        session.add(
            Supplier(
                connection_id=connection_id,
                nomi_id=supplier.id,
                name=supplier.name,
                name_normalised=normalise_name(supplier.name),
                status=supplier.status,
                default_tax_rate_id=supplier.default_tax_rate_id,
                default_category_id=supplier.default_category_id,
            )
        )
    for customer in nomi.iter_customers(include_archived=True):
        session.add(
            Customer(
                connection_id=connection_id,
                nomi_id=customer.id,
                name=customer.name,
                name_normalised=normalise_name(customer.name),
                status=customer.status,
            )
        )
    for category in nomi.iter_categories(include_archived=True):
        session.add(
            Category(
                connection_id=connection_id,
                nomi_id=category.id,
                name=category.name,
                code=category.code,
                type=category.type,
                status=category.status,
            )
        )
    for rate in nomi.iter_tax_rates(include_archived=True):
        session.add(
            TaxRate(
                connection_id=connection_id,
                nomi_id=rate.id,
                name=rate.name,
                code=rate.code,
                rate=rate.rate,
                applies_to=rate.applies_to,
                status=rate.status,
            )
        )
    for bank in nomi.iter_bank_accounts(include_archived=True):
        session.add(
            BankAccount(
                connection_id=connection_id, nomi_id=bank.id, name=bank.name, status=bank.status
            )
        )
    session.commit()


@dataclass
class Org:
    """Seeded ids of one sandbox organisation, by code or name."""

    tenant_id: str

    def category(self, code: str) -> str:
        return stable_id(self.tenant_id, "category", code)

    def tax_rate(self, code: str) -> str:
        return stable_id(self.tenant_id, "tax_rate", code)

    def bank(self, name: str = "Business Current Account") -> str:
        return stable_id(self.tenant_id, "bank_account", name)

    def supplier(self, name: str) -> str:
        return stable_id(self.tenant_id, "supplier", name)


def set_settings(session: Session, connection_id: uuid.UUID, **values: Any) -> None:
    """Change connection settings (test set-up, not audited)."""
    row = session.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection_id)
    ).one()
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.commit()


def write_image(folder: Path, content: bytes = PDF) -> Path:
    """A document image file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(content)
    return path


def bank_method(session: Session, business_id: uuid.UUID, org: Org) -> uuid.UUID:
    """A payment method linked to the organisation's current account."""
    method = PaymentMethod(
        business_id=business_id,
        name=f"Current account {uuid.uuid4().hex[:6]}",
        bank_account_nomi_id=org.bank(),
    )
    session.add(method)
    session.flush()
    return method.id


def add_item(session: Session, business_id: uuid.UUID, org: Org, kind: str, **values: Any) -> Item:
    """An item of ``kind`` with a category and a consistent 20% tax (not yet assessed)."""
    from connector.store.models import Business

    business = session.get(Business, business_id)
    assert business is not None
    defaults: dict[str, Any] = {
        "kind": kind,
        "status": "review",
        "date": date(2026, 3, 2),
        "total": Decimal("120.00"),
        "tax_amount": Decimal("20.00"),
        "tax_rate_edit": org.tax_rate("STD20"),
    }
    if kind == ItemKind.SALES:
        defaults |= {"contact_name": "NHS England", "category_edit": org.category("200")}
        defaults["reference"] = f"SI-{uuid.uuid4().hex[:10]}"
    else:
        defaults |= {"contact_name": "Staples UK", "category_edit": org.category("453")}
    if kind == ItemKind.EXPENSE_CLAIM:
        defaults |= {"claimant_email": "owen@brightsmile.example"}
    return make_item(session, business=business, **(defaults | values))


def make_ready(session: Session, business_id: uuid.UUID) -> None:
    """Assess every item of the business (review/ready) and commit."""
    reassess(session, business_id=business_id)
    session.commit()


def records(sandbox: Any, tenant_id: str, kind: str) -> list[dict[str, Any]]:
    """Every record of ``kind`` the sandbox created through the API for the tenant."""
    response = sandbox.admin.get("/records", params={"tenant_id": tenant_id, "kind": kind})
    response.raise_for_status()
    body = response.json()
    return body if isinstance(body, list) else body.get("items", body.get("records", []))


def duplicates(sandbox: Any) -> dict[str, Any]:
    """The sandbox's duplicate report (empty dicts when every source_id has one record)."""
    response: httpx.Response = sandbox.admin.get("/duplicates")
    response.raise_for_status()
    return dict(response.json())


def engine_items(engine: Engine, business_id: uuid.UUID) -> list[Item]:
    """Every item of the business, fresh from the database."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(Item).where(Item.business_id == business_id)))
