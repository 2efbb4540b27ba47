"""Who asks to change a business's connection, and the audit rows of what they asked.

`who_asks` finds the business, its connection and the acting admin or accountant (a refusal is
audited by ``connector.access``); `audit` writes one row of the request's story in the caller's
transaction; `refuse` audits a refusal (``<action>.refused``) and raises it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NoReturn, Protocol

from sqlmodel import Session, select

from connector.access import require_admin_actor
from connector.history.records import record_audit
from connector.store.models import Business, Connection, User


class Asker(Protocol):
    """A request someone made for a business (consent, disconnect)."""

    @property
    def business_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...


@dataclass(frozen=True)
class Asked:
    """The business asked about, its connection if it has one, and the admin who asks."""

    business: Business
    connection: Connection | None
    user: User

    @property
    def business_id(self) -> uuid.UUID:
        """The business's id."""
        return self.business.id

    @property
    def user_id(self) -> uuid.UUID:
        """The acting user's id."""
        return self.user.id


def who_asks(
    session: Session,
    *,
    business_slug: str,
    acting_email: str,
    action: str,
    audit_status: bool = False,
) -> Asked:
    """The business, its connection and the acting admin (``require_admin_actor``, audited).

    ``audit_status``: the audit row of the decision also holds the connection's status.

    Raises:
        LookupError: No business has this slug.
        PermissionDeniedError: Unknown user, not a member, or a standard member (audited).
    """
    business = session.exec(select(Business).where(Business.slug == business_slug)).first()
    if business is None:
        raise LookupError(f"no business with slug {business_slug!r}")
    connection = session.exec(
        select(Connection).where(Connection.business_id == business.id)
    ).first()
    status = {"status": connection.status if connection else None} if audit_status else None
    user, _ = require_admin_actor(
        session, email=acting_email, business_id=business.id, action=action, detail=status
    )
    return Asked(business, connection, user)


def audit(
    session: Session, asker: Asker, action: str, *, detail: dict[str, object], allowed: bool = True
) -> None:
    """One audit row of the request (in the caller's transaction)."""
    record_audit(
        session,
        action=action,
        allowed=allowed,
        business_id=asker.business_id,
        user_id=asker.user_id,
        detail=detail,
    )


def refuse(
    session: Session,
    asker: Asker,
    action: str,
    reason: str,
    error: type[Exception],
    detail: dict[str, object] | None = None,
) -> NoReturn:
    """Audit ``<action>.refused`` with the reason (the caller commits), then raise ``error``."""
    audit(
        session,
        asker,
        f"{action}.refused",
        allowed=False,
        detail={"reason": reason, **(detail or {})},
    )
    raise error(reason)
