"""Businesses, and the connection (with its settings row) each business publishes through."""

from __future__ import annotations

import difflib

from sqlmodel import Session, select

from connector.admin.common import NAME_CHARS, add_row, may_be_stored
from connector.errors import UnknownBusinessError
from connector.store.models import Business, Connection, ConnectionSettings
from connector.text_guard import guard_required, guard_slug, shown


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
    return add_row(session, Business(slug=slug, name=checked))


def get_business(session: Session, slug: str) -> Business:
    """The business with this slug (trimmed; slugs are lowercase, so any case finds it).

    Raises:
        UnknownBusinessError: No business has it (the message names close slugs).
    """
    wanted = slug.strip().lower()
    found = None
    if may_be_stored(wanted, limit=64):
        found = session.exec(select(Business).where(Business.slug == wanted)).first()
    if found is None:
        slugs = list(session.exec(select(Business.slug)))
        close = difflib.get_close_matches(wanted, slugs, n=5, cutoff=0.6)
        hint = f" (close matches: {', '.join(shown(s) for s in close)})" if close else ""
        raise UnknownBusinessError(f"no business {shown(slug)}{hint}")
    return found


def list_businesses(session: Session) -> list[Business]:
    """Every business, by slug."""
    return list(session.exec(select(Business).order_by(Business.slug)))


def connection_of(session: Session, business: Business) -> Connection:
    """The business's connection and settings row, created ``pending`` if it has none yet."""
    found = session.exec(select(Connection).where(Connection.business_id == business.id)).first()
    if found is None:
        found = add_row(session, Connection(business_id=business.id))
    if (
        session.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == found.id)
        ).first()
        is None
    ):
        add_row(session, ConnectionSettings(connection_id=found.id))
    return found
