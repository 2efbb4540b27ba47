"""The review context: what the rules engine reads about one business, loaded from the database.

``build_context`` loads the business's settings, Nomi lists, rules and payment methods in one query
per table; ``facts_from_item`` turns a stored item into the engine's ``ItemFacts``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from connector.errors import NotConnectedError
from connector.rules.facts import (
    BankAccountRef,
    CategoryRef,
    ContactRef,
    ItemFacts,
    LineFacts,
    OrganisationRef,
    PaymentMethodRef,
    RulesContext,
    RulesSettings,
    TaxRateRef,
)
from connector.rules.facts import ContactRule as RuleRef
from connector.rules.vocabulary import RuleSource
from connector.store.models import (
    BankAccount,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Customer,
    Item,
    Organisation,
    PaymentMethod,
    Supplier,
    TaxRate,
)


def build_context(session: Session, business_id: uuid.UUID) -> RulesContext:
    """Load everything the rules engine needs for one business, in one query per table.

    Nomi suppliers with a default tax rate count as ``nomi`` supplier rules (rank 2), so the
    imported rule is always as fresh as the last list sync; a stored ``nomi`` rule for the same
    name takes precedence over the derived one.

    Args:
        session: An open database session.
        business_id: The business whose connection, lists, rules and payment methods to load.

    Returns:
        A ``RulesContext`` (settings default to the model defaults when no settings row exists).

    Raises:
        NotConnectedError: If the business has no Nomi connection.
    """
    connection_id, organisation = _connection(session, business_id)
    settings = _rules_settings(session, connection_id)
    suppliers = _select(
        session,
        Supplier.connection_id,
        connection_id,
        Supplier.nomi_id,
        Supplier.name,
        Supplier.status,
        Supplier.default_tax_rate_id,
    )
    return RulesContext(
        settings=settings,
        suppliers=tuple(ContactRef(s.nomi_id, s.name, _active(s.status)) for s in suppliers),
        customers=_customers(session, connection_id),
        categories=_categories(session, connection_id),
        tax_rates=_tax_rates(session, connection_id),
        bank_accounts=_bank_accounts(session, connection_id),
        payment_methods=_payment_methods(session, business_id),
        rules=_rules(session, connection_id, suppliers),
        organisation=organisation,
    )


def _connection(
    session: Session, business_id: uuid.UUID
) -> tuple[uuid.UUID, OrganisationRef | None]:
    """The business's connection id and its mirrored organisation (None before its first
    sync), in one query; ``NotConnectedError`` when the business has no connection."""
    row = session.execute(
        sa.select(col(Connection.id), col(Organisation.base_currency), col(Organisation.lock_date))
        .outerjoin(Organisation, col(Organisation.connection_id) == col(Connection.id))
        .where(col(Connection.business_id) == business_id)
    ).one_or_none()
    if row is None:
        raise NotConnectedError(f"business {business_id} has no Nomi connection")
    connection_id, base_currency, lock_date = row
    organisation = None if base_currency is None else OrganisationRef(base_currency, lock_date)
    return connection_id, organisation


def _rules_settings(session: Session, connection_id: uuid.UUID) -> RulesSettings:
    """The connection's settings as the engine reads them (model defaults without a row)."""
    row = session.execute(
        sa.select(ConnectionSettings).where(col(ConnectionSettings.connection_id) == connection_id)
    ).scalar_one_or_none()
    row = row or ConnectionSettings(connection_id=connection_id)
    return RulesSettings(
        warn_new_supplier=row.warn_new_supplier,
        publish_images_with_expense_claims=row.publish_images_with_expense_claims,
        use_tax_list=row.use_tax_list,
        use_supplier_tax_rates=row.use_supplier_tax_rates,
        default_tax_costs=row.default_tax_costs,
        default_zero_tax_code_costs=row.default_zero_tax_code_costs,
        default_tax_sales=row.default_tax_sales,
        default_zero_tax_code_sales=row.default_zero_tax_code_sales,
        auto_publish=row.auto_publish,
    )


def _customers(session: Session, connection_id: uuid.UUID) -> tuple[ContactRef, ...]:
    rows = _select(
        session,
        Customer.connection_id,
        connection_id,
        Customer.nomi_id,
        Customer.name,
        Customer.status,
    )
    return tuple(ContactRef(c.nomi_id, c.name, _active(c.status)) for c in rows)


def _categories(session: Session, connection_id: uuid.UUID) -> tuple[CategoryRef, ...]:
    rows = _select(
        session,
        Category.connection_id,
        connection_id,
        Category.nomi_id,
        Category.name,
        Category.type,
        Category.status,
    )
    return tuple(CategoryRef(c.nomi_id, c.name, c.type, _active(c.status)) for c in rows)


def _tax_rates(session: Session, connection_id: uuid.UUID) -> tuple[TaxRateRef, ...]:
    rows = _select(
        session,
        TaxRate.connection_id,
        connection_id,
        TaxRate.nomi_id,
        TaxRate.name,
        TaxRate.rate,
        TaxRate.applies_to,
        TaxRate.status,
    )
    return tuple(
        TaxRateRef(t.nomi_id, t.name, t.rate, t.applies_to, _active(t.status)) for t in rows
    )


def _bank_accounts(session: Session, connection_id: uuid.UUID) -> tuple[BankAccountRef, ...]:
    rows = _select(
        session,
        BankAccount.connection_id,
        connection_id,
        BankAccount.nomi_id,
        BankAccount.name,
        BankAccount.status,
        BankAccount.currency,
    )
    return tuple(BankAccountRef(b.nomi_id, b.name, _active(b.status), b.currency) for b in rows)


def _payment_methods(session: Session, business_id: uuid.UUID) -> tuple[PaymentMethodRef, ...]:
    rows = _select(
        session,
        PaymentMethod.business_id,
        business_id,
        PaymentMethod.id,
        PaymentMethod.name,
        PaymentMethod.bank_account_nomi_id,
    )
    return tuple(PaymentMethodRef(str(m.id), m.name, m.bank_account_nomi_id) for m in rows)


def _rules(
    session: Session, connection_id: uuid.UUID, suppliers: Sequence[Any]
) -> tuple[RuleRef, ...]:
    """Supplier rules derived from the Nomi suppliers' default rates, then the stored rules."""
    derived = [
        RuleRef("supplier", s.name, RuleSource.NOMI.value, tax_rate_id=s.default_tax_rate_id)
        for s in suppliers
        if s.default_tax_rate_id and _active(s.status)
    ]
    stored = session.execute(
        sa.select(ContactRule)
        .where(col(ContactRule.connection_id) == connection_id)
        .order_by(col(ContactRule.updated_at), col(ContactRule.id))
    ).scalars()
    return (*derived, *(_rule(r) for r in stored))


def _active(status: str | None) -> bool:
    return (status or "ACTIVE").upper() == "ACTIVE"


def _select(session: Session, key: Any, value: uuid.UUID, *columns: Any) -> Sequence[Any]:
    """Rows of ``columns`` where ``key == value`` (one query)."""
    return session.execute(sa.select(*columns).where(key == value)).all()


def _rule(row: ContactRule) -> RuleRef:
    return RuleRef(
        contact_kind=row.kind,
        name=row.name,
        source=row.source,
        category_id=row.category_nomi_id,
        tax_rate_id=row.tax_rate_nomi_id,
        payment_method_id=str(row.payment_method_id) if row.payment_method_id else None,
        description=row.description,
        paid=row.paid,
        auto_publish=row.auto_publish,
    )


def facts_from_item(item: Item | sa.Row[Any]) -> ItemFacts:
    """Turn a stored item (an ``Item`` or a row of the items table) into the rules engine's input.

    ``Item.paid`` has no "unset" state: unpaid items leave ``paid`` to the supplier rule. The
    claimant is the Nomi user id when known, else the claimant's email.

    Args:
        item: The stored item.

    Returns:
        The ``ItemFacts`` to pass to ``connector.rules.engine.resolve``.
    """
    return ItemFacts(
        kind=item.kind,
        contact_name=item.contact_name,
        date=item.date,
        due_date=item.due_date,
        currency=item.currency,
        total=item.total,
        extracted_tax=item.tax_amount,
        description=item.description,
        category_id=item.category_edit,
        tax_rate_id=item.tax_rate_edit,
        paid=True if item.paid else None,
        payment_method_id=str(item.payment_method_id) if item.payment_method_id else None,
        claimant=item.claimant_nomi_user_id or item.claimant_email,
        has_image=item.image_path is not None,
        confirmed_new_contact=item.contact_confirmed,
        mapped_contact_id=item.contact_mapped_nomi_id,
        document_type=item.document_type,
        credits_external_id=item.credits_external_id,
        exchange_rate=item.exchange_rate,
        lines=tuple(line_facts(line) for line in item.lines or ()),
    )


def line_facts(stored: dict[str, Any]) -> LineFacts:
    """One stored line (``Item.lines``: money as decimal strings) as the engine reads it."""
    tax = stored.get("tax")
    return LineFacts(
        net=Decimal(stored["net"]),
        tax=None if tax is None else Decimal(tax),
        description=stored.get("description"),
        category_id=stored.get("category_edit"),
        tax_rate_id=stored.get("tax_rate_edit"),
    )
