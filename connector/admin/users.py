"""Users: adding them, finding the user a command is about, and the user acting on a business."""

from __future__ import annotations

from sqlmodel import Session

from connector.access import find_user, find_users, normalise_email, require_actor
from connector.admin.common import EMAIL_CHARS, NAME_CHARS, add_row
from connector.errors import NotFoundError
from connector.store.models import Business, User
from connector.text_guard import guard_email, guard_required, shown


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
    return add_row(session, User(email=email, name=checked))


def get_user(session: Session, email: str) -> User:
    """The user with this email (compared normalised), e.g. the member a command is about."""
    found = find_user(session, email)
    if found is None:
        raise NotFoundError(f"no user {shown(email)}")
    return found


def get_actor(session: Session, email: str, *, business: Business, action: str) -> User:
    """The user acting on the business; an unknown one is refused and audited.

    Raises:
        PermissionDeniedError: No such user (the refusal is committed to the audit log).
    """
    return require_actor(session, email=email, business_id=business.id, action=action)
