"""A business's connection settings: the switches and tax defaults admins change."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from connector.access import require_admin
from connector.admin.businesses import connection_of
from connector.admin.common import add_row
from connector.admin.lookup import nomi_id_or_none
from connector.rules.vocabulary import ListName
from connector.store.models import Business, ConnectionSettings, User
from connector.text_guard import shown

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
        changes: Setting name -> text value (``true``/``false`` for switches; for tax defaults
            a tax rate's code, name or Nomi id in the business's mirror, or ``none``; stored as
            the Nomi id).

    Returns:
        The updated settings.

    Raises:
        PermissionDeniedError: The actor is not an admin or accountant of the business.
        ValueError: An unknown setting or a bad value (a tax rate naming no single active
            entry is a ``NameLookupError`` whose ``subject`` is the setting).
    """
    parsed: dict[str, Any] = {}
    for key, text in changes.items():
        if key in BOOL_SETTINGS:
            lowered = text.strip().lower()
            if lowered not in {"true", "false", "on", "off", "yes", "no"}:
                raise ValueError(f"{key} takes true or false, not {shown(text)}")
            parsed[key] = lowered in {"true", "on", "yes"}
        elif key in TAX_SETTINGS:
            parsed[key] = nomi_id_or_none(session, business, ListName.TAX_RATES, text, subject=key)
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
    return add_row(session, settings)
