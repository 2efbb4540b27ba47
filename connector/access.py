"""Access control: only admins of a business (and accountants acting for it) may change it.

Connect, reconnect, disconnect and settings changes call ``require_admin`` first. Every decision is
written to the audit log: an allowed action in the caller's transaction (it stands or falls with the
action), a refusal in a transaction of its own, so it survives the caller rolling back. Call it
before the session writes anything: a refusal rolls the caller's transaction back first, so that
the caller may hold a write transaction (on SQLite it would block the refusal's own) and loses
nothing by it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, select

from connector.history import record_audit
from connector.models import Business, Membership, Role, User

ADMIN_ROLES = frozenset({Role.ADMIN, Role.ACCOUNTANT})


class PermissionDeniedError(Exception):
    """The acting user may not perform the action on the business."""

    def __init__(self, message: str, *, user_id: uuid.UUID, business_id: uuid.UUID, action: str):
        super().__init__(message)
        self.user_id = user_id
        self.business_id = business_id
        self.action = action


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
