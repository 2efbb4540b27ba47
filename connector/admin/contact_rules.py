"""Supplier and customer rules a user sets: what a contact's items publish as (audited)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, select

from connector.access import require_admin
from connector.admin.businesses import connection_of
from connector.admin.common import DESCRIPTION_CHARS, NAME_CHARS, add_row
from connector.admin.lookup import nomi_id_or_none
from connector.errors import NotFoundError
from connector.rules.names import matching_key
from connector.rules.vocabulary import ContactKind, ListName, RuleSource
from connector.store.models import Business, Connection, ContactRule, User
from connector.text_guard import guard_text, shown

#: What a user rule may set (``add_rule``'s keyword arguments besides kind and name).
RULE_FIELDS = (
    "category_nomi_id",
    "tax_rate_nomi_id",
    "payment_method_id",
    "description",
    "paid",
    "auto_publish",
)
#: The Nomi entries a rule may set: field, what it is called, which mirrored list it names.
_NOMI_ID_FIELDS = (
    ("category_nomi_id", "category", ListName.CATEGORIES),
    ("tax_rate_nomi_id", "tax rate", ListName.TAX_RATES),
)


def add_rule(
    session: Session, *, business: Business, actor: User, kind: str, name: str, **fields: Any
) -> ContactRule:
    """Create or replace the user rule for a supplier or customer name, as ``actor``.

    Rules decide what items publish as, and whether they publish on their own, so changing one
    is managing the connection: admins and accountants only, audited as ``rules.add`` with what
    the rule sets. ``fields``: those of ``RULE_FIELDS``; ``category_nomi_id`` and
    ``tax_rate_nomi_id`` take a code, a name or a Nomi id of the business's mirrored lists
    (``connector.admin.lookup``), stored as the Nomi id; ``none`` leaves the rule without one.

    Raises:
        ValueError: An unknown kind or field, or an empty name (nothing written).
        NameLookupError: A category or tax rate that names no single active entry (a
            ``RefusedValueError`` about the ``category`` or ``tax rate``, listing close matches;
            nothing written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    name = _rule_name(name)
    key = _rule_key(kind, name)
    unknown = sorted(set(fields) - set(RULE_FIELDS))
    if unknown:
        raise ValueError(f"unknown rule field(s) {', '.join(unknown)}; known: {RULE_FIELDS}")
    for field, called, list_name in _NOMI_ID_FIELDS:
        if fields.get(field) is not None:
            fields[field] = nomi_id_or_none(
                session, business, list_name, fields[field], subject=called
            )
    if "description" in fields:
        fields["description"] = guard_text(
            fields["description"],
            field="rule description",
            limit=DESCRIPTION_CHARS,
            multiline=True,
        )
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="rules.add",
        detail={
            "kind": kind,
            "name": name,
            **{f: str(v) if isinstance(v, uuid.UUID) else v for f, v in fields.items()},
        },
    )
    connection = connection_of(session, business)
    rule = _user_rule(session, connection, kind, key)
    if rule is None:
        rule = ContactRule(connection_id=connection.id, kind=kind, name=name, name_normalised=key)
    rule.name = name
    for attribute, value in fields.items():
        setattr(rule, attribute, value)
    return add_row(session, rule)


def remove_rule(session: Session, *, business: Business, actor: User, kind: str, name: str) -> None:
    """Remove the user rule for a supplier or customer name, as ``actor``.

    Admins and accountants only, audited as ``rules.remove``. Rules imported from Nomi (source
    ``nomi``) are not ours to remove: they follow the supplier in Nomi and the
    ``use_supplier_tax_rates`` setting.

    Raises:
        ValueError: An unknown kind or an empty name.
        PermissionDeniedError: The actor is not an admin or accountant of the business.
        NotFoundError: The business has no user rule for that name.
    """
    key = _rule_key(kind, name)
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="rules.remove",
        detail={"kind": kind, "name": name},
    )
    connection = connection_of(session, business)
    rule = _user_rule(session, connection, kind, key)
    if rule is None:
        raise NotFoundError(f"no {kind} rule for {shown(name)} in business '{business.slug}'")
    session.delete(rule)
    session.flush()


def list_rules(session: Session, business: Business) -> list[ContactRule]:
    """The business's supplier and customer rules."""
    connection = connection_of(session, business)
    return list(
        session.exec(
            select(ContactRule)
            .where(ContactRule.connection_id == connection.id)
            .order_by(ContactRule.kind, ContactRule.name_normalised)
        )
    )


def _rule_name(name: str) -> str:
    """A new rule's supplier or customer name, through the text guard (NFC, stripped)."""
    checked = guard_text(name, field="rule name", limit=NAME_CHARS)
    if checked is None:
        raise ValueError("a rule needs a supplier or customer name")
    return checked


def _rule_key(kind: str, name: str) -> str:
    """The matching key of a rule's name, after checking the kind and that a name is given."""
    if kind not in {k.value for k in ContactKind}:
        raise ValueError(f"unknown rule kind {shown(kind)}: use supplier or customer")
    if not name.strip():
        raise ValueError("a rule needs a supplier or customer name")
    key = matching_key(name)  # UnmatchableNameError (a ValueError) names the problem
    if len(key) > NAME_CHARS:  # compatibility forms can grow a name (NFKC)
        raise ValueError(f"rule name: longer than {NAME_CHARS} characters once normalised")
    return key


def _user_rule(session: Session, connection: Connection, kind: str, key: str) -> ContactRule | None:
    """The connection's user rule of ``kind`` for the normalised name ``key``, if any."""
    return session.exec(
        select(ContactRule).where(
            ContactRule.connection_id == connection.id,
            ContactRule.kind == kind,
            ContactRule.name_normalised == key,
            ContactRule.source == RuleSource.USER,
        )
    ).first()
