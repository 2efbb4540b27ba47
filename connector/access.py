"""Access control: who is acting, and only admins of a business (and its accountants) may change it.

``require_actor`` finds the acting user by email in one normal form (``normalise_email``);
``require_admin`` allows admins and accountants only. Every decision is audited: an allowed one in
the caller's transaction, a refusal in a transaction of its own (call these before writing).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from connector.history.records import record_audit
from connector.rules.vocabulary import Role
from connector.store.models import Business, Membership, User
from connector.text_guard import shown

ADMIN_ROLES = frozenset({Role.ADMIN, Role.ACCOUNTANT})

#: The longest email kept in an audit row or a message (RFC 5321's 320 characters).
EMAIL_MAX = 320


class PermissionDeniedError(Exception):
    """The acting user may not perform the action on the business."""

    def __init__(self, message: str, *, user_id: uuid.UUID, business_id: uuid.UUID, action: str):
        super().__init__(message)
        self.user_id = user_id
        self.business_id = business_id
        self.action = action


def normalise_email(email: str) -> str:
    """The one form in which the connector compares users' emails: trimmed, then case-folded.

    ``" ADMIN@Acme.example"`` and ``"admin@acme.example"`` are the same user. Users are stored
    in this form (``connector.admin.users.add_user``); rows stored before it are still found
    (``find_user``).
    """
    return email.strip().casefold()


def find_users(session: Session, email: str) -> list[User]:
    """The users whose email is ``email`` once both are normalised (``normalise_email``).

    Normally none or one, found by the indexed column. Rows stored before the normalisation
    (``lower()`` differs from ``casefold()`` beyond ASCII, or a row written by hand with capitals
    or spaces) are found by a scan of the emails, which only an unknown email pays for.
    """
    wanted = normalise_email(email)
    if not wanted or len(wanted) > EMAIL_MAX or "\x00" in wanted:
        return []  # no stored email is empty, that long or holds a NUL (PostgreSQL cannot query it)
    found = session.exec(select(User).where(User.email == wanted)).first()
    if found is not None:
        return [found]
    ids = [
        user_id
        for user_id, stored in session.exec(select(User.id, User.email).order_by(col(User.email)))
        if normalise_email(stored) == wanted
    ]
    return [user for user_id in ids if (user := session.get(User, user_id)) is not None]


def find_user(session: Session, email: str) -> User | None:
    """The one user with this email (normalised), or None (none, or several old rows)."""
    users = find_users(session, email)
    return users[0] if len(users) == 1 else None


def require_actor(
    session: Session,
    *,
    email: str,
    business_id: uuid.UUID,
    action: str,
    detail: dict[str, Any] | None = None,
) -> User:
    """The user acting on the business, by email (normalised); an unknown actor is refused.

    Call it before the session writes anything (as ``require_admin``).

    Args:
        session: A session on the connector database.
        email: The acting user's email as given (any case, surrounding spaces).
        business_id: The business acted on.
        action: What is attempted (the audited action).
        detail: Extra audit detail for a refusal (no secrets).

    Returns:
        The user.

    Raises:
        PermissionDeniedError: No user has this email (or several old rows do); the refusal,
            naming the email as given, the action and the reason, is committed to the audit log
            before raising.
    """
    users = find_users(session, email)
    if len(users) == 1:
        return users[0]
    business = session.get(Business, business_id)
    where = f"business '{business.slug}'" if business else f"unknown business {business_id}"
    why = (
        "no such user (not a member of it)"
        if not users
        else "several users have this email once case and spaces are ignored; fix the users"
    )
    message = f"user {shown(email)} may not perform '{action}' on {where}: {why}"
    audit_refusal(
        session,
        action=action,
        business_id=business_id,
        user_id=None,
        detail={"reason": message, "email": email[:EMAIL_MAX], **(detail or {})},
    )
    raise PermissionDeniedError(
        message, user_id=uuid.UUID(int=0), business_id=business_id, action=action
    )


def require_admin_actor(
    session: Session,
    *,
    email: str,
    business_id: uuid.UUID,
    action: str,
    detail: dict[str, Any] | None = None,
) -> tuple[User, Membership]:
    """``require_actor`` then ``require_admin``: the acting admin or accountant, by email.

    Raises:
        PermissionDeniedError: Unknown user, not a member, or a ``standard`` member (audited,
            with the email as given).
    """
    detail = {"email": email[:EMAIL_MAX], **(detail or {})}
    user = require_actor(
        session, email=email, business_id=business_id, action=action, detail=detail
    )
    membership = require_admin(
        session, business_id=business_id, user_id=user.id, action=action, detail=detail
    )
    return user, membership


def require_admin(
    session: Session,
    *,
    business_id: uuid.UUID,
    user_id: uuid.UUID,
    action: str,
    detail: dict[str, Any] | None = None,
) -> Membership:
    """Allow ``action`` only for an admin or accountant of the business, and audit the decision.

    Args:
        session: A session on the connector database.
        business_id: The business acted on.
        user_id: The acting user.
        action: What is attempted (``connect``, ``reconnect``, ``disconnect``, ``settings.set``).
        detail: Extra audit detail (no secrets).

    Returns:
        The user's membership of the business.

    Raises:
        PermissionDeniedError: The user is unknown, not a member, or a ``standard`` member; the
            refusal is committed to the audit log before raising.
    """
    membership = session.exec(
        select(Membership).where(
            Membership.business_id == business_id, Membership.user_id == user_id
        )
    ).first()
    if membership is not None and membership.role in ADMIN_ROLES:
        record_audit(
            session,
            action=action,
            allowed=True,
            business_id=business_id,
            user_id=user_id,
            detail={"role": membership.role, **(detail or {})},
        )
        return membership
    message = _refusal(
        session,
        business_id=business_id,
        user_id=user_id,
        action=action,
        role=membership.role if membership else None,
    )
    audit_refusal(
        session,
        action=action,
        business_id=business_id,
        user_id=user_id,
        detail={"reason": message, **(detail or {})},
    )
    raise PermissionDeniedError(message, user_id=user_id, business_id=business_id, action=action)


def audit_refusal(
    session: Session,
    *,
    action: str,
    business_id: uuid.UUID,
    user_id: uuid.UUID | None,
    detail: dict[str, Any],
) -> None:
    """Commit a refusal's audit row in a transaction of its own, after releasing the caller's.

    The caller's transaction has written nothing yet (refusals come before any write), so rolling
    it back loses nothing; it frees the write lock a caller that opened a write transaction holds
    on SQLite, which the audit's own transaction would otherwise wait on until it times out.
    """
    session.rollback()
    with Session(session.get_bind()) as audit_session:
        record_audit(
            audit_session,
            action=action,
            allowed=False,
            business_id=business_id,
            user_id=user_id,
            detail=detail,
        )
        audit_session.commit()


def _refusal(
    session: Session, *, business_id: uuid.UUID, user_id: uuid.UUID, action: str, role: str | None
) -> str:
    """A message naming the user, the business, the action and why."""
    user = session.get(User, user_id)
    business = session.get(Business, business_id)
    who = f"user {user.email}" if user else f"unknown user {user_id}"
    where = f"business '{business.slug}'" if business else f"unknown business {business_id}"
    why = (
        f"their role there is '{role}'" if role else "they are not a member of it"
    ) + "; only admins and accountants may"
    return f"{who} may not perform '{action}' on {where}: {why}"
