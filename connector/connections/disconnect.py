"""Disconnecting a business from Nomi: who may, and the rows a disconnect leaves behind.

`authorise_disconnect` (audited) marks the connection ``disconnected`` before anything is revoked,
so publishing and sync stop at once; `record_disconnect` forgets the credentials block and audits
the outcome. A revoke still owed is said in ``last_error`` (``REVOKE_PENDING``). No secrets here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session

from connector.connections.asking import audit, refuse, who_asks
from connector.rules.vocabulary import ConnectionStatus
from connector.store.base import short_error, table_of, utcnow
from connector.store.models import Connection

ACTION = "disconnect"
#: How ``last_error`` of a disconnected connection starts while Nomi's revoke is still owed.
REVOKE_PENDING = "revoke at Nomi pending"


class DisconnectRefusedError(Exception):
    """The business cannot be disconnected (the message tells ops why)."""


class RevokeOutcome(StrEnum):
    """What happened at Nomi."""

    REVOKED = "revoked"  # tokens revoked (and the organisation taken out of the consent)
    PENDING = "pending"  # Nomi could not be reached or refused: run the disconnect again
    NOTHING_TO_REVOKE = "nothing_to_revoke"  # no tokens left here (revoked by an earlier run)


@dataclass(frozen=True)
class DisconnectRequest:
    """Who asked to disconnect which business, and its connection as it was before."""

    business_id: uuid.UUID
    business_slug: str
    user_id: uuid.UUID
    connection_id: uuid.UUID
    previous_status: str
    tenant_id: str | None
    organisation_name: str | None
    credentials_block_name: str | None


def authorise_disconnect(
    session: Session, *, business_slug: str, acting_email: str
) -> DisconnectRequest:
    """Check the acting user may disconnect the business, audit it, mark it ``disconnected``.

    Disconnecting a business that is already disconnected is allowed (it retries a revoke Nomi
    could not take); the connection stays ``disconnected``.

    Args:
        session: A session opened for writing (the caller commits, also when this raises
            `DisconnectRefusedError`, to keep the audit row).
        business_slug: The business to disconnect.
        acting_email: Email of the user who asked (case and surrounding spaces ignored).

    Returns:
        The request, with the connection as it was before.

    Raises:
        LookupError: No business has this slug.
        PermissionDeniedError: Unknown user, not a member, or a standard member (refusal
            committed to the audit log).
        DisconnectRefusedError: The business was never connected to Nomi.
    """
    asked = who_asks(
        session,
        business_slug=business_slug,
        acting_email=acting_email,
        action=ACTION,
        audit_status=True,
    )
    connection = asked.connection
    if connection is None or not connection.nomi_tenant_id:
        problem = (
            f"business '{asked.business.slug}' was never connected to Nomi: nothing to disconnect"
        )
        refuse(session, asked, ACTION, problem, DisconnectRefusedError)
    request = DisconnectRequest(
        business_id=asked.business_id,
        business_slug=asked.business.slug,
        user_id=asked.user_id,
        connection_id=connection.id,
        previous_status=connection.status,
        tenant_id=connection.nomi_tenant_id,
        organisation_name=connection.organisation_name,
        credentials_block_name=connection.credentials_block_name,
    )
    _set_status(session, connection.id, ConnectionStatus.DISCONNECTED)
    return request


def _set_status(session: Session, connection_id: uuid.UUID, status: str) -> None:
    """One UPDATE of the connection's status (no read first; see `mark_connection_expired`)."""
    connections = table_of(Connection)
    session.connection().execute(
        sa.update(connections)
        .where(connections.c.id == connection_id)
        .values(status=status, updated_at=utcnow())
    )


def record_disconnect(
    session: Session,
    *,
    request: DisconnectRequest,
    outcome: RevokeOutcome,
    detail: str | None = None,
) -> Connection:
    """Forget the connection's credentials block and audit the disconnect with its outcome.

    Args:
        session: A session opened for writing (the caller commits).
        request: From `authorise_disconnect`.
        outcome: What happened at Nomi.
        detail: Why the revoke is pending, or what Nomi said (no secrets).

    Returns:
        The disconnected connection.

    Raises:
        LookupError: The connection row is gone.
    """
    connection = session.get(Connection, request.connection_id)
    if connection is None:
        raise LookupError(f"no connection {request.connection_id}")
    connection.status = ConnectionStatus.DISCONNECTED
    connection.credentials_block_name = None
    if outcome == RevokeOutcome.PENDING:
        connection.last_error = short_error(
            f"{REVOKE_PENDING}: {detail or 'Nomi could not be reached'}; "
            "run disconnect-from-nomi again to retry it"
        )
    elif outcome == RevokeOutcome.REVOKED or (connection.last_error or "").startswith(
        REVOKE_PENDING
    ):
        connection.last_error = None
    session.add(connection)
    done: dict[str, object] = {
        "previous_status": request.previous_status,
        "tenant_id": request.tenant_id,
        "organisation": request.organisation_name,
        "revoke": outcome.value,
    }
    if detail:
        done["detail"] = short_error(detail)
    audit(session, request, f"{ACTION}.completed", detail=done)
    session.flush()
    return connection


def revoke_pending(connection: Connection) -> bool:
    """True when the connection is disconnected but Nomi's revoke is still owed."""
    return connection.status == ConnectionStatus.DISCONNECTED and (
        connection.last_error or ""
    ).startswith(REVOKE_PENDING)
