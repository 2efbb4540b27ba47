"""Review assessment: run the rules engine over a business's items and store the outcome.

``build_context`` loads one business's settings, Nomi lists, rules and payment methods in a handful
of queries; ``facts_from_item`` turns an ``Item`` into the engine's ``ItemFacts``; ``reassess``
resolves every item in ``review``/``ready`` and writes status, reasons, resolved values and sources.

Items are read and written with Core statements (no per-item queries). Every write is guarded by
``status IN ('review', 'ready')`` so an item claimed by a publish run meanwhile is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from connector.rules.engine import resolve
from connector.rules.facts import (
    BankAccountRef,
    CategoryRef,
    ContactRef,
    ItemFacts,
    PaymentMethodRef,
    Resolution,
    RulesContext,
    RulesSettings,
    TaxRateRef,
)
from connector.rules.facts import ContactRule as RuleRef
from connector.rules.vocabulary import ItemStatus, RuleSource
from connector.store.base import table_of, utcnow
from connector.store.models import (
    BankAccount,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Customer,
    Item,
    PaymentMethod,
    Supplier,
    TaxRate,
)

ASSESSABLE = (ItemStatus.REVIEW.value, ItemStatus.READY.value)
_CHUNK = 500


class NoConnectionError(LookupError):
    """The business has no Nomi connection, so there are no lists or settings to resolve against."""


@dataclass(frozen=True)
class ReassessReport:
    """What ``reassess`` did: items assessed, their status now, and what changed."""

    assessed: int = 0
    ready: int = 0
    review: int = 0
    updated: int = 0
    became_ready: tuple[uuid.UUID, ...] = ()
    became_review: tuple[uuid.UUID, ...] = ()
    #: Every item whose stored values (status, reasons, resolved values) changed.
    changed: tuple[uuid.UUID, ...] = ()


def _active(status: str | None) -> bool:
    return (status or "ACTIVE").upper() == "ACTIVE"


def _settings(row: ConnectionSettings) -> RulesSettings:
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
        NoConnectionError: If the business has no Nomi connection.
    """
    connection_id = session.execute(
        sa.select(col(Connection.id)).where(col(Connection.business_id) == business_id)
    ).scalar_one_or_none()
    if connection_id is None:
        raise NoConnectionError(f"business {business_id} has no Nomi connection")
    row = session.execute(
        sa.select(ConnectionSettings).where(col(ConnectionSettings.connection_id) == connection_id)
    ).scalar_one_or_none()
    settings = _settings(row or ConnectionSettings(connection_id=connection_id))

    suppliers = _select(
        session,
        Supplier.connection_id,
        connection_id,
        Supplier.nomi_id,
        Supplier.name,
        Supplier.status,
        Supplier.default_tax_rate_id,
    )
    customers = _select(
        session,
        Customer.connection_id,
        connection_id,
        Customer.nomi_id,
        Customer.name,
        Customer.status,
    )
    categories = _select(
        session,
        Category.connection_id,
        connection_id,
        Category.nomi_id,
        Category.name,
        Category.type,
        Category.status,
    )
    tax_rates = _select(
        session,
        TaxRate.connection_id,
        connection_id,
        TaxRate.nomi_id,
        TaxRate.name,
        TaxRate.rate,
        TaxRate.applies_to,
        TaxRate.status,
    )
    banks = _select(
        session,
        BankAccount.connection_id,
        connection_id,
        BankAccount.nomi_id,
        BankAccount.name,
        BankAccount.status,
    )
    methods = _select(
        session,
        PaymentMethod.business_id,
        business_id,
        PaymentMethod.id,
        PaymentMethod.name,
        PaymentMethod.bank_account_nomi_id,
    )
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
    rules = [*derived, *(_rule(r) for r in stored)]
    return RulesContext(
        settings=settings,
        suppliers=tuple(ContactRef(s.nomi_id, s.name, _active(s.status)) for s in suppliers),
        customers=tuple(ContactRef(c.nomi_id, c.name, _active(c.status)) for c in customers),
        categories=tuple(
            CategoryRef(c.nomi_id, c.name, c.type, _active(c.status)) for c in categories
        ),
        tax_rates=tuple(
            TaxRateRef(t.nomi_id, t.name, t.rate, t.applies_to, _active(t.status))
            for t in tax_rates
        ),
        bank_accounts=tuple(BankAccountRef(b.nomi_id, b.name, _active(b.status)) for b in banks),
        rules=tuple(rules),
        payment_methods=tuple(
            PaymentMethodRef(str(m.id), m.name, m.bank_account_nomi_id) for m in methods
        ),
    )


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


def _facts(item: Any) -> ItemFacts:
    """ItemFacts from an ``Item`` or a Core row with the same column names."""
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
    return _facts(item)


def resolved_values(res: Resolution, old: Any, now: datetime) -> dict[str, Any]:
    """The ``Item`` column values that store ``res`` (``ready_at`` kept while the item stays ready).

    Args:
        res: The engine's resolution of the item.
        old: The item (or a row) as stored before, for its ``status`` and ``ready_at``.
        now: The time to stamp on an item that becomes ready.

    Returns:
        Column name -> value for ``status``, ``review_reasons``, ``resolved_*`` and ``ready_at``.
    """
    ready = res.is_ready
    return {
        "status": ItemStatus.READY.value if ready else ItemStatus.REVIEW.value,
        "review_reasons": list(res.reasons),
        "resolved_contact_nomi_id": res.contact_id,
        "resolved_category_nomi_id": res.category_id,
        "resolved_tax_rate_nomi_id": res.tax_rate_id,
        "resolved_net": res.net,
        "resolved_tax": res.tax,
        "resolved_bank_account_nomi_id": res.bank_account_id,
        "resolved_description": res.description,
        "resolved_sources": {k: str(v) for k, v in res.sources.items()},
        "ready_at": (old.ready_at if old.status == ItemStatus.READY and old.ready_at else now)
        if ready
        else None,
    }


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _load(
    session: Session, business_id: uuid.UUID, item_ids: Sequence[uuid.UUID] | None
) -> list[Any]:
    table = table_of(Item)
    base = sa.select(table).where(
        table.c.business_id == business_id, table.c.status.in_(ASSESSABLE)
    )
    if item_ids is None:
        return list(session.execute(base.order_by(table.c.id)).all())
    found: list[Any] = []
    for chunk in _chunks(list(dict.fromkeys(item_ids))):
        found.extend(session.execute(base.where(table.c.id.in_(chunk))).all())
    return found


def reassess(
    session: Session,
    *,
    business_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> ReassessReport:
    """Resolve the business's items in ``review``/``ready`` and store the outcome.

    Items in ``publishing``, ``published`` or ``archived`` (or of another business) are never
    touched, even when listed in ``item_ids``. Only items whose stored values change are written.
    The caller commits.

    Args:
        session: An open database session.
        business_id: The business whose items to assess.
        item_ids: Only these items; ``None`` means every item of the business.
        now: The time to stamp as ``ready_at`` (default: now, UTC).

    Returns:
        A ``ReassessReport`` with counts and the ids that changed status.

    Raises:
        NoConnectionError: If the business has no Nomi connection.
    """
    session.flush()
    ctx = build_context(session, business_id)
    stamp = now or utcnow()
    rows = _load(session, business_id, item_ids)
    updates: list[dict[str, Any]] = []
    became_ready: list[uuid.UUID] = []
    became_review: list[uuid.UUID] = []
    ready = 0
    for row in rows:
        values = resolved_values(resolve(_facts(row), ctx), row, stamp)
        ready += values["status"] == ItemStatus.READY
        if all(getattr(row, k) == v for k, v in values.items()):
            continue
        if values["status"] != row.status:
            (became_ready if values["status"] == ItemStatus.READY else became_review).append(row.id)
        updates.append(
            {"b_id": row.id, "b_updated_at": stamp, **{f"v_{k}": v for k, v in values.items()}}
        )
    if updates:
        _write(session, updates)
    return ReassessReport(
        assessed=len(rows),
        ready=ready,
        review=len(rows) - ready,
        updated=len(updates),
        became_ready=tuple(became_ready),
        became_review=tuple(became_review),
        changed=tuple(u["b_id"] for u in updates),
    )


def _write(session: Session, updates: list[dict[str, Any]]) -> None:
    """One guarded executemany UPDATE; then expire any loaded ``Item`` objects that changed."""
    table = table_of(Item)
    columns = [k.removeprefix("v_") for k in updates[0] if k.startswith("v_")]
    stmt = (
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("b_id"),
            sa.or_(*(table.c.status == status for status in ASSESSABLE)),  # no IN: executemany
        )
        .values(
            {
                **{c: sa.bindparam(f"v_{c}") for c in columns},
                "updated_at": sa.bindparam("b_updated_at"),
            }
        )
    )
    session.connection().execute(stmt, updates)
    for values in updates:
        loaded = session.identity_map.get(identity_key(Item, values["b_id"]))
        if loaded is not None:
            session.expire(loaded)
