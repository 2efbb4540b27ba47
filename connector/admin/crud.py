"""Administration helpers: businesses, users, memberships, payment methods, rules and settings.

Plain functions with an injected session, used by the CLI (and by flows). They flush but do not
commit; the caller's ``connector.store.db.session`` commits. Changes to how a business publishes
(settings, rules, payment methods) and to who may manage it (memberships) go through
``require_admin`` and are audited.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.access import (
    ADMIN_ROLES,
    find_user,
    find_users,
    normalise_email,
    require_actor,
    require_admin,
)
from connector.history.records import record_audit
from connector.items.fields import method_key
from connector.rules.names import matching_key
from connector.rules.vocabulary import ContactKind, Role, RuleSource
from connector.store.models import (
    Business,
    Connection,
    ConnectionSettings,
    ContactRule,
    Item,
    Membership,
    PaymentMethod,
    User,
)
from connector.text_guard import (
    guard_email,
    guard_required,
    guard_slug,
    guard_text,
    shown,
)

BOOL_SETTINGS = (
    "warn_new_supplier",
    "publish_images_with_expense_claims",
    "use_tax_list",
    "use_supplier_tax_rates",
    "auto_publish",
)
TAX_SETTINGS = (
    "default_tax_costs",
    "default_zero_tax_code_costs",
    "default_tax_sales",
    "default_zero_tax_code_sales",
)


class NotFoundError(LookupError):
    """A named business, user, or payment method does not exist."""


def _add(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


#: Characters a name column holds (``varchar(255)``: businesses, users, payment methods, rules).
NAME_CHARS = 255
#: Characters of a rule's description (what an item's description may hold, docs/intake.md).
DESCRIPTION_CHARS = 2000
#: Characters of a user's email (``users.email``).
EMAIL_CHARS = 320


def add_business(session: Session, *, slug: str, name: str) -> Business:
    """Create a business (``slug`` must be new and a slug, ``name`` plain text).

    Raises:
        TextRefusedError: A slug that is not 2 to 63 lowercase letters, digits and hyphens, or a
            name the text guard refuses (``connector.text_guard``).
        ValueError: The slug is taken.
    """
    slug = guard_slug(slug)
    checked = guard_required(name, field="business name", limit=NAME_CHARS)
    if session.exec(select(Business).where(Business.slug == slug)).first():
        raise ValueError(f"business '{slug}' already exists")
    return _add(session, Business(slug=slug, name=checked))


def get_business(session: Session, slug: str) -> Business:
    """The business with this slug."""
    found = None
    if _may_be_stored(slug, limit=64):
        found = session.exec(select(Business).where(Business.slug == slug)).first()
    if found is None:
        raise NotFoundError(f"no business {shown(slug)} (see 'business list')")
    return found


def _may_be_stored(value: str, *, limit: int) -> bool:
    """Whether a looked-up value could be in a column at all (a NUL breaks PostgreSQL's query)."""
    return len(value) <= limit and "\x00" not in value


def list_businesses(session: Session) -> list[Business]:
    """Every business, by slug."""
    return list(session.exec(select(Business).order_by(Business.slug)))


def add_user(session: Session, *, email: str, name: str) -> User:
    """Create a user (``email`` must be new once normalised; it is stored normalised).

    Raises:
        TextRefusedError: Not an email address, or a name the text guard refuses.
        ValueError: The email is taken.
    """
    email = guard_email(normalise_email(email), field="user email", limit=EMAIL_CHARS)
    checked = guard_required(name, field="user name", limit=NAME_CHARS)
    if find_users(session, email):
        raise ValueError(f"user {email} already exists")
    return _add(session, User(email=email, name=checked))


def get_user(session: Session, email: str) -> User:
    """The user with this email (compared normalised), e.g. the member a command is about."""
    found = find_user(session, email)
    if found is None:
        raise NotFoundError(f"no user {shown(email)}")
    return found


def get_actor(session: Session, email: str, *, business: Business, action: str) -> User:
    """The user acting on the business (``--actor``); an unknown one is refused and audited.

    Raises:
        PermissionDeniedError: No such user (the refusal is committed to the audit log).
    """
    return require_actor(session, email=email, business_id=business.id, action=action)


def add_member(
    session: Session, *, business: Business, user: User, role: str, actor: User | None = None
) -> Membership:
    """Give the user a role in the business (replaces an existing role), as ``actor``.

    Who belongs to a business with which role decides who may manage its connection, so this is
    managing the connection too: once the business has an admin or accountant, only one of them
    may change its members (audited as ``members.add``). The first admin or accountant of a new
    business needs no actor (there is nobody to ask); that is audited too, with ``bootstrap``.
    Nobody can demote the business's last admin or accountant: the business would be left with
    nobody able to manage it, and the next ``member add`` could then make anyone its admin.

    Raises:
        ValueError: An unknown role, no actor although the business has admins, a standard
            member added to a business with no admin yet, or the last admin demoted (nothing
            written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}: use admin, standard or accountant")
    # Locked (PostgreSQL; SQLite's write transaction already excludes other writers): two admins
    # demoting each other at once must not both see the other still admin.
    memberships = list(
        session.exec(
            select(Membership).where(Membership.business_id == business.id).with_for_update()
        )
    )
    admins = [m for m in memberships if m.role in ADMIN_ROLES]
    found = next((m for m in memberships if m.user_id == user.id), None)
    detail = {"member_user_id": str(user.id), "role": role}
    if not admins:
        if role not in ADMIN_ROLES:
            raise ValueError(
                f"business '{business.slug}' has no admin yet: add its first admin or "
                "accountant before other members"
            )
        record_audit(
            session,
            action="members.add",
            allowed=True,
            business_id=business.id,
            user_id=actor.id if actor else user.id,
            detail={**detail, "bootstrap": True},
        )
    else:
        if actor is None:
            raise ValueError(
                f"business '{business.slug}' has admins: name one of them (or an accountant "
                "of the business) with --actor to change its members"
            )
        if found is not None and found in admins and role not in ADMIN_ROLES and len(admins) == 1:
            raise ValueError(
                f"{user.email} is the last admin or accountant of '{business.slug}': add "
                "another before making them a standard member"
            )
        require_admin(
            session, business_id=business.id, user_id=actor.id, action="members.add", detail=detail
        )
    if found is None:
        return _add(session, Membership(user_id=user.id, business_id=business.id, role=role))
    found.role = role
    return _add(session, found)


def connection_of(session: Session, business: Business) -> Connection:
    """The business's connection and settings row, created ``pending`` if it has none yet."""
    found = session.exec(select(Connection).where(Connection.business_id == business.id)).first()
    if found is None:
        found = _add(session, Connection(business_id=business.id))
    if (
        session.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == found.id)
        ).first()
        is None
    ):
        _add(session, ConnectionSettings(connection_id=found.id))
    return found


def get_settings(session: Session, business: Business) -> ConnectionSettings:
    """The connection settings of the business."""
    connection = connection_of(session, business)
    return session.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
    ).one()


def set_settings(
    session: Session, *, business: Business, actor: User, changes: dict[str, str]
) -> ConnectionSettings:
    """Change settings as ``actor`` (admins and accountants only; audited).

    Args:
        session: A session on the connector database.
        business: The business whose connection settings change.
        actor: The acting user.
        changes: Setting name -> text value (``true``/``false`` for switches; a Nomi tax-rate id
            or ``none`` for tax defaults).

    Returns:
        The updated settings.

    Raises:
        PermissionDeniedError: The actor is not an admin or accountant of the business.
        ValueError: An unknown setting or a bad value.
    """
    parsed: dict[str, Any] = {}
    for key, text in changes.items():
        if key in BOOL_SETTINGS:
            lowered = text.strip().lower()
            if lowered not in {"true", "false", "on", "off", "yes", "no"}:
                raise ValueError(f"{key} takes true or false, not {shown(text)}")
            parsed[key] = lowered in {"true", "on", "yes"}
        elif key in TAX_SETTINGS:
            parsed[key] = nomi_id_or_none(key, text)
        else:
            raise ValueError(
                f"unknown setting {shown(key)}; known: {', '.join(BOOL_SETTINGS + TAX_SETTINGS)}"
            )
    # Check before writing anything: a refusal is audited in its own transaction.
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="settings.set",
        detail={"changes": parsed},
    )
    settings = get_settings(session, business)
    for key, value in parsed.items():
        setattr(settings, key, value)
    return _add(session, settings)


_NOMI_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def nomi_id_or_none(key: str, text: str, what: str = "tax-rate") -> str | None:
    """A Nomi ``what`` id typed for ``key`` (``none`` or empty clears it).

    Raises:
        ValueError: Not an id Nomi could have issued (names the key and shows the value).
    """
    value = text.strip()
    if value.lower() in {"", "none"}:
        return None
    if not _NOMI_ID.fullmatch(value):
        raise ValueError(
            f"{key} takes a Nomi {what} id (up to 64 letters, digits, '.', '_', ':' or '-') "
            f"or none, not {shown(value)}"
        )
    return value


def _bank_account_id(text: str | None) -> str | None:
    """The ``--bank-account`` a payment method is linked to (``none`` or empty: not linked)."""
    return nomi_id_or_none("--bank-account", text or "", what="bank-account")


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

    Raises:
        ValueError: An empty name, a name the business already has, or a malformed bank-account
            id (nothing written).
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
    bank = _bank_account_id(bank_account_nomi_id)
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="payment_methods.add",
        detail={"name": name, "bank_account_nomi_id": bank},
    )
    return _add(
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
        ValueError: A malformed bank-account id (nothing written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    method = get_payment_method(session, business, name)
    bank = _bank_account_id(bank_account_nomi_id)
    require_admin(
        session,
        business_id=business.id,
        user_id=actor.id,
        action="payment_methods.link",
        detail={"name": method.name, "from": method.bank_account_nomi_id, "to": bank},
    )
    method.bank_account_nomi_id = bank
    return _add(session, method)


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
            "to another bank account with 'payment-methods link' instead)"
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


#: What a user rule may set (``add_rule``'s keyword arguments besides kind and name).
RULE_FIELDS = (
    "category_nomi_id",
    "tax_rate_nomi_id",
    "payment_method_id",
    "description",
    "paid",
    "auto_publish",
)


def add_rule(
    session: Session, *, business: Business, actor: User, kind: str, name: str, **fields: Any
) -> ContactRule:
    """Create or replace the user rule for a supplier or customer name, as ``actor``.

    Rules decide what items publish as, and whether they publish on their own, so changing one
    is managing the connection: admins and accountants only, audited as ``rules.add`` with what
    the rule sets. ``fields``: those of ``RULE_FIELDS``.

    Raises:
        ValueError: An unknown kind or field, an empty name or a malformed Nomi id (nothing
            written).
        PermissionDeniedError: The actor is not an admin or accountant of the business.
    """
    name = _rule_name(name)
    key = _rule_key(kind, name)
    unknown = sorted(set(fields) - set(RULE_FIELDS))
    if unknown:
        raise ValueError(f"unknown rule field(s) {', '.join(unknown)}; known: {RULE_FIELDS}")
    for field, what in (("category_nomi_id", "category"), ("tax_rate_nomi_id", "tax-rate")):
        if fields.get(field) is not None:
            fields[field] = nomi_id_or_none(f"--{what}", fields[field], what=what)
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
    return _add(session, rule)


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
