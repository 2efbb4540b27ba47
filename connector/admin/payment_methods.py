"""Payment methods: which Nomi bank account a paid item is paid from (admins only; audited)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.access import require_admin
from connector.admin.common import NAME_CHARS, add_row
from connector.admin.lookup import nomi_id_or_none
from connector.errors import NotFoundError
from connector.items.rows.values import method_key
from connector.rules.vocabulary import ListName
from connector.store.models import Business, ContactRule, Item, PaymentMethod, User
from connector.text_guard import guard_text, shown


def _bank_account_id(session: Session, business: Business, text: str | None) -> str | None:
    """The bank account a payment method is linked to, by name, masked number or Nomi id
    (``none`` or empty: not linked)."""
    return nomi_id_or_none(session, business, ListName.BANK_ACCOUNTS, text, subject="bank account")


def add_payment_method(
    session: Session,
    *,
    business: Business,
    actor: User,
    name: str,
    bank_account_nomi_id: str | None,
) -> PaymentMethod:
    """Create a payment method, optionally linked to a Nomi bank account, as ``actor``.

    Payment methods decide which Nomi bank account a paid item is paid from, so adding one is
    managing the connection: admins and accountants only, audited as ``payment_methods.add``.

    Names are unique in a business regardless of case, as lookups by name ignore case.
    ``bank_account_nomi_id`` takes the account's name, masked number or Nomi id in the
    business's mirror (``connector.admin.lookup``); it is stored as the Nomi id.

    Raises:
        ValueError: An empty name, or a name the business already has (nothing written).
        NameLookupError: A bank account that names no single active account of the mirror (a
            ``RefusedValueError`` about the ``bank account``, with close matches).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    checked = guard_text(name, field="payment method name", limit=NAME_CHARS)
    if checked is None:
        raise ValueError("a payment method needs a name")
    name = checked
    existing = _payment_method_named(session, business, name)
    if existing is not None:
        raise ValueError(
            f"business '{business.slug}' already has the payment method '{existing.name}'"
        )
    bank = _bank_account_id(session, business, bank_account_nomi_id)
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="payment_methods.add",
        detail={"name": name, "bank_account_nomi_id": bank},
    )
    return add_row(
        session, PaymentMethod(business_id=business.id, name=name, bank_account_nomi_id=bank)
    )


def link_payment_method(
    session: Session,
    *,
    business: Business,
    actor: User,
    name: str,
    bank_account_nomi_id: str | None,
) -> PaymentMethod:
    """Link a payment method to another Nomi bank account (or to none), as ``actor``.

    The way out of "payment method X is linked to a Nomi bank account that is archived": items
    held for it are reassessed by the caller. Admins and accountants only, audited as
    ``payment_methods.link`` with the old and new account.

    Raises:
        NotFoundError: The business has no payment method of that name.
        NameLookupError: A bank account that names no single active account (nothing written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    method = get_payment_method(session, business, name)
    bank = _bank_account_id(session, business, bank_account_nomi_id)
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="payment_methods.link",
        detail={"name": method.name, "from": method.bank_account_nomi_id, "to": bank},
    )
    method.bank_account_nomi_id = bank
    return add_row(session, method)


def remove_payment_method(session: Session, *, business: Business, actor: User, name: str) -> None:
    """Remove a payment method nothing uses, as ``actor`` (audited as ``payment_methods.remove``).

    A method a rule or an item refers to stays: removing it would silently change what those
    items publish as (a paid item would publish unpaid), and published items keep it as the
    record of how they were paid. The refusal says what uses it.

    Raises:
        NotFoundError: The business has no payment method of that name.
        ValueError: A rule or an item uses the method (nothing written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    method = get_payment_method(session, business, name)
    rules = list(
        session.exec(select(ContactRule.name).where(ContactRule.payment_method_id == method.id))
    )
    items = session.exec(
        select(sa.func.count()).select_from(Item).where(Item.payment_method_id == method.id)
    ).one()
    if rules or items:
        uses = [f"{len(rules)} rule(s) ({', '.join(sorted(rules)[:3])})"] if rules else []
        uses += [f"{items} item(s)"] if items else []
        raise ValueError(
            f"payment method '{method.name}' is used by {' and '.join(uses)}: it stays (link it "
            "to another bank account instead)"
        )
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="payment_methods.remove",
        detail={"name": method.name, "bank_account_nomi_id": method.bank_account_nomi_id},
    )
    session.delete(method)
    session.flush()


def list_payment_methods(session: Session, business: Business) -> list[PaymentMethod]:
    """The business's payment methods, by name."""
    return list(
        session.exec(
            select(PaymentMethod)
            .where(PaymentMethod.business_id == business.id)
            .order_by(PaymentMethod.name)
        )
    )


def get_payment_method(session: Session, business: Business, name: str) -> PaymentMethod:
    """The business's payment method with this name (case-insensitive)."""
    method = _payment_method_named(session, business, name)
    if method is None:
        raise NotFoundError(f"no payment method {shown(name)} in business '{business.slug}'")
    return method


def _payment_method_named(session: Session, business: Business, name: str) -> PaymentMethod | None:
    """The business's payment method whose name equals ``name`` ignoring case, if any."""
    wanted = method_key(name.strip())
    return next(
        (m for m in list_payment_methods(session, business) if method_key(m.name) == wanted), None
    )
