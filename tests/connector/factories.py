"""Test-data factories for the connector tables (shared by connector, flows and reports tests).

Each ``make_*`` adds a row with sensible defaults, flushes it (so ids and FKs are valid) and returns
it; pass keyword overrides for any column. Nothing is committed: wrap calls in
``connector.store.db.session(engine)`` (which commits on exit) or commit yourself.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from connector.rules.names import normalise_name
from connector.rules.vocabulary import ConnectionStatus, ItemKind, ItemStatus, Role
from connector.store.models import (
    BankAccount,
    Business,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Customer,
    Item,
    Membership,
    PaymentMethod,
    Supplier,
    TaxRate,
    User,
)

_seq = itertools.count(1)


def _n() -> int:
    return next(_seq)


def _add(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


def make_business(session: Session, **overrides: Any) -> Business:
    """A business with a unique slug."""
    n = _n()
    values: dict[str, Any] = {"slug": f"business-{n}", "name": f"Business {n} Ltd"}
    return _add(session, Business(**(values | overrides)))


def make_user(session: Session, **overrides: Any) -> User:
    """A user with a unique email."""
    n = _n()
    values: dict[str, Any] = {"email": f"user{n}@example.test", "name": f"User {n}"}
    return _add(session, User(**(values | overrides)))


def make_membership(
    session: Session, *, user: User, business: Business, role: str = Role.ADMIN
) -> Membership:
    """The user's role in the business."""
    return _add(session, Membership(user_id=user.id, business_id=business.id, role=role))


def make_connection(
    session: Session, *, business: Business, with_settings: bool = True, **overrides: Any
) -> Connection:
    """A connected Nomi connection for the business (and its settings row unless told not to)."""
    values: dict[str, Any] = {
        "business_id": business.id,
        "nomi_tenant_id": f"tenant-{uuid.uuid4().hex[:8]}",
        "organisation_name": business.name,
        "scopes": ["offline_access", "contacts.read", "expenses.write"],
        "status": ConnectionStatus.CONNECTED,
        "connected_at": datetime.now(UTC),
        "credentials_block_name": f"nomi-credentials-{business.slug}",
    }
    connection = _add(session, Connection(**(values | overrides)))
    if with_settings:
        _add(session, ConnectionSettings(connection_id=connection.id))
    return connection


def make_supplier(session: Session, *, connection: Connection, **overrides: Any) -> Supplier:
    """A mirrored Nomi supplier."""
    n = _n()
    name = overrides.pop("name", f"Supplier {n} Ltd")
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "nomi_id": f"sup-{n}",
        "name": name,
        "name_normalised": normalise_name(name),
    }
    return _add(session, Supplier(**(values | overrides)))


def make_customer(session: Session, *, connection: Connection, **overrides: Any) -> Customer:
    """A mirrored Nomi customer."""
    n = _n()
    name = overrides.pop("name", f"Customer {n} Ltd")
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "nomi_id": f"cus-{n}",
        "name": name,
        "name_normalised": normalise_name(name),
    }
    return _add(session, Customer(**(values | overrides)))


def make_category(session: Session, *, connection: Connection, **overrides: Any) -> Category:
    """A mirrored Nomi category (EXPENSE unless told)."""
    n = _n()
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "nomi_id": f"cat-{n}",
        "code": str(400 + n),
        "name": f"Category {n}",
        "type": "EXPENSE",
    }
    return _add(session, Category(**(values | overrides)))


def make_tax_rate(session: Session, *, connection: Connection, **overrides: Any) -> TaxRate:
    """A mirrored Nomi tax rate (20% on both purchases and sales unless told)."""
    n = _n()
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "nomi_id": f"tax-{n}",
        "code": f"T{n}",
        "name": "Standard 20%",
        "rate": Decimal("20"),
        "applies_to": "BOTH",
    }
    return _add(session, TaxRate(**(values | overrides)))


def make_bank_account(session: Session, *, connection: Connection, **overrides: Any) -> BankAccount:
    """A mirrored Nomi bank account."""
    n = _n()
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "nomi_id": f"bank-{n}",
        "name": f"Current account {n}",
        "currency": "GBP",
        "masked_number": "****1234",
    }
    return _add(session, BankAccount(**(values | overrides)))


def make_payment_method(session: Session, *, business: Business, **overrides: Any) -> PaymentMethod:
    """A payment method of the business."""
    values: dict[str, Any] = {"business_id": business.id, "name": f"Card {_n()}"}
    return _add(session, PaymentMethod(**(values | overrides)))


def make_contact_rule(session: Session, *, connection: Connection, **overrides: Any) -> ContactRule:
    """A user supplier rule (override ``kind``, ``source``, category, tax rate ...)."""
    name = overrides.pop("name", f"Supplier {_n()} Ltd")
    values: dict[str, Any] = {
        "connection_id": connection.id,
        "kind": "supplier",
        "name": name,
        "name_normalised": normalise_name(name),
    }
    return _add(session, ContactRule(**(values | overrides)))


def make_item(session: Session, *, business: Business, **overrides: Any) -> Item:
    """A cost item, Ready to publish unless told otherwise."""
    n = _n()
    status = overrides.pop("status", ItemStatus.READY)
    values: dict[str, Any] = {
        "business_id": business.id,
        "kind": ItemKind.COST,
        "status": status,
        "external_id": f"ext-{n}-{uuid.uuid4().hex[:6]}",
        "contact_name": "Office Supplies Ltd",
        "reference": f"INV-{n}",
        # a date of its own (a day of 2026): items alike in supplier, date and total are
        # possible duplicates (docs/rules.md), which a test asks for by giving them one date
        "date": date(2026, 1, 1) + timedelta(days=n % 365),
        "currency": "GBP",
        "total": Decimal("120.00"),
        "tax_amount": Decimal("20.00"),
        "review_reasons": [] if status != ItemStatus.REVIEW else ["not yet assessed"],
        "ready_at": datetime.now(UTC) if status == ItemStatus.READY else None,
    }
    return _add(session, Item(**(values | overrides)))
