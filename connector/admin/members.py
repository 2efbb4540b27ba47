"""Memberships: who belongs to a business with which role (and so who may manage it)."""

from __future__ import annotations

from sqlmodel import Session, select

from connector.access import ADMIN_ROLES, require_admin
from connector.admin.common import RefusedValueError, add_row
from connector.history.records import record_audit
from connector.rules.vocabulary import Role
from connector.store.models import Business, Membership, User


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
        ValueError: An unknown role, a standard member added to a business with no admin yet,
            or the last admin demoted (nothing written).
        RefusedValueError: No actor although the business has admins (``subject`` ``actor``).
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
            raise RefusedValueError(
                f"business '{business.slug}' has admins: one of them (or an accountant of the "
                "business) must be the acting user to change its members",
                subject="actor",
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
        return add_row(session, Membership(user_id=user.id, business_id=business.id, role=role))
    found.role = role
    return add_row(session, found)
