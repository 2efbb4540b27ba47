"""Connecting a business to Nomi: who may, which organisation, and the rows a consent leaves behind.

In the order the connect and reconnect flows call them: `authorise_consent`, then after Nomi's
consent `pick_organisation`, `check_organisation`, `check_books` (one organisation, one business,
unless the books are shared) and `record_connection`. No secrets pass through here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.connections.asking import audit, refuse, who_asks
from connector.connections.oauth_states import OAuthPurpose
from connector.rules.vocabulary import ConnectionStatus
from connector.store.base import short_error, table_of, utcnow
from connector.store.models import Business, Connection, ConnectionSettings
from nomi.models import Organisation

CONSENT_TTL = timedelta(days=365)


class ConnectRefusedError(Exception):
    """The business cannot be connected this way now (the message tells ops what to do)."""


class OrganisationChangedError(ConnectRefusedError):
    """The consent chose another Nomi organisation than the one the business is connected to."""


class OrganisationTakenError(ConnectRefusedError):
    """The consent chose a Nomi organisation another business of ours holds (books not shared)."""


@dataclass(frozen=True)
class ConsentRequest:
    """Who asked to (re)connect which business, and what it is connected to now."""

    business_id: uuid.UUID
    business_slug: str
    user_id: uuid.UUID
    tenant_id: str | None
    organisation_name: str | None


def authorise_consent(
    session: Session, *, business_slug: str, acting_email: str, purpose: OAuthPurpose
) -> ConsentRequest:
    """Check the acting user may (re)connect the business now; audit the decision.

    Args:
        session: A session on the connector database (commit it also when this raises
            `ConnectRefusedError`, to keep the audit rows).
        business_slug: The business to connect.
        acting_email: The email of the user who asked, as given (compared normalised).
        purpose: ``connect`` or ``reconnect`` (the audited action).

    Returns:
        The request, with the current organisation when there is one.

    Raises:
        LookupError: No business has this slug.
        PermissionDeniedError: Unknown user, or not an admin/accountant (refusal committed).
        ConnectRefusedError: Connect on a connected business, or reconnect on one never connected.
    """
    asked = who_asks(
        session, business_slug=business_slug, acting_email=acting_email, action=purpose
    )
    connection = asked.connection
    request = ConsentRequest(
        business_id=asked.business_id,
        business_slug=asked.business.slug,
        user_id=asked.user_id,
        tenant_id=connection.nomi_tenant_id if connection else None,
        organisation_name=connection.organisation_name if connection else None,
    )
    problem = _state_problem(asked.business, connection, purpose)
    if problem is not None:
        refuse(session, request, purpose, problem, ConnectRefusedError)
    return request


def _state_problem(
    business: Business, connection: Connection | None, purpose: OAuthPurpose
) -> str | None:
    """Why the business cannot be (re)connected now, or None."""
    connected = connection is not None and connection.status == ConnectionStatus.CONNECTED
    if purpose == OAuthPurpose.CONNECT and connected:
        assert connection is not None
        return (
            f"business '{business.slug}' is already connected to Nomi organisation "
            f"'{connection.organisation_name}'; run reconnect-to-nomi to renew its consent"
        )
    if purpose == OAuthPurpose.RECONNECT and (connection is None or not connection.nomi_tenant_id):
        return f"business '{business.slug}' was never connected to Nomi; run connect-to-nomi first"
    return None


def pick_organisation(
    granted: Sequence[Organisation], *, current_tenant_id: str | None = None
) -> Organisation:
    """The organisation a consent chose among those the new token may act for.

    Nomi grants one organisation per consent; when a token sees several (an accountant's earlier
    consents), the current organisation wins on reconnect, otherwise the most recent grant.

    Raises:
        ConnectRefusedError: The token may act for no organisation.
    """
    if not granted:
        raise ConnectRefusedError("Nomi granted no organisation to this consent")
    if current_tenant_id is not None:
        for org in granted:
            if org.tenant_id == current_tenant_id:
                return org
    return granted[-1]


def check_organisation(
    request: ConsentRequest, chosen: Organisation, *, allow_change: bool
) -> None:
    """Refuse a reconnect that picked another organisation unless ops allowed it.

    Raises:
        OrganisationChangedError: A different organisation and ``allow_change`` is off.
    """
    if request.tenant_id is None or chosen.tenant_id == request.tenant_id or allow_change:
        return
    raise OrganisationChangedError(
        f"business '{request.business_slug}' is connected to Nomi organisation "
        f"'{request.organisation_name}', but the consent chose '{chosen.tenant_name}'; nothing "
        "was changed. Reconnect choosing the same organisation, or set "
        "allow_organisation_change to switch organisations"
    )


def holders_of(
    session: Session, tenant_id: str, *, besides: uuid.UUID, lock: bool = False
) -> list[str]:
    """The slugs of the other businesses holding the Nomi organisation ``tenant_id``.

    A business holds an organisation while its connection names it and is not ``disconnected``
    (an expired or revoked connection is reconnected to the same books). ``lock``: serialise with
    other (re)connects of the organisation until the transaction ends (PostgreSQL advisory lock;
    SQLite's write transaction already excludes other writers).
    """
    if lock and session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"nomi-tenant:{tenant_id}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    rows = session.exec(
        select(Business.slug)
        .join(Connection, col(Connection.business_id) == col(Business.id))
        .where(
            Connection.nomi_tenant_id == tenant_id,
            Connection.business_id != besides,
            Connection.status != ConnectionStatus.DISCONNECTED,
        )
        .order_by(col(Business.slug))
    )
    return list(rows)


def check_books(
    session: Session,
    *,
    request: ConsentRequest,
    purpose: OAuthPurpose,
    organisation: Organisation,
    shared_books: bool,
    lock: bool = False,
) -> list[str]:
    """Refuse an organisation another business holds unless ops said the two share books.

    Call it after the person chose the organisation and before anything is stored. A refusal
    is audited as ``<purpose>.refused`` (the caller commits the session, then raises); an
    allowed sharing as ``<purpose>.shared_books``.

    Args:
        session: A session on the connector database (the caller commits, also on a refusal).
        request: From `authorise_consent`.
        purpose: ``connect`` or ``reconnect``.
        organisation: The organisation the consent chose.
        shared_books: Ops said the businesses share this organisation's books (the run's
            ``shared_books`` parameter).
        lock: Serialise with other (re)connects of the organisation (see `holders_of`).

    Returns:
        The slugs of the other businesses that share the organisation (empty: nobody else).

    Raises:
        OrganisationTakenError: Another business holds it and ``shared_books`` is off.
    """
    holders = holders_of(session, organisation.tenant_id, besides=request.business_id, lock=lock)
    if not holders:
        return []
    detail: dict[str, object] = {
        "tenant_id": organisation.tenant_id,
        "organisation": organisation.tenant_name,
        "held_by": holders,
    }
    if shared_books:
        audit(session, request, f"{purpose}.shared_books", detail=detail)
        return holders
    named = ", ".join(f"'{slug}'" for slug in holders)
    noun = "business" if len(holders) == 1 else "businesses"
    message = (
        f"Nomi organisation '{organisation.tenant_name}' is already connected to {noun} {named}; "
        f"'{request.business_slug}' was not {purpose}ed, so its items cannot land in another "
        "company's books, and nothing was changed. Run again choosing "
        f"'{request.business_slug}''s own organisation, or, only if the two businesses really "
        "keep one set of books, with shared_books=true"
    )
    refuse(session, request, purpose, message, OrganisationTakenError, detail)


def record_connection(
    session: Session,
    *,
    request: ConsentRequest,
    purpose: OAuthPurpose,
    organisation: Organisation,
    scopes: Sequence[str],
    credentials_block_name: str,
    consent_expires_at: datetime | None = None,
    now: datetime | None = None,
    shared_books: bool = False,
) -> Connection:
    """Create or update the business's connection as connected, with settings and an audit row.

    The organisation is checked again (`check_books`, locked) in this transaction, so two
    (re)connects of different businesses choosing one organisation at once cannot both win.

    Args:
        session: A session on the connector database (the caller commits).
        request: From `authorise_consent`.
        purpose: ``connect`` or ``reconnect``.
        organisation: The organisation the consent chose.
        scopes: The scopes Nomi granted.
        credentials_block_name: The block the tokens were saved to.
        consent_expires_at: When Nomi's consent ends (default: one year from now).
        now: The current time (tests).
        shared_books: Ops said the organisation's books are shared with other businesses.

    Returns:
        The connected connection.

    Raises:
        OrganisationTakenError: Another business holds the organisation (``shared_books`` off);
            the refusal's audit row is in the session (commit it, nothing else was written).
    """
    now = now or utcnow()
    shares_with = holders_of(
        session, organisation.tenant_id, besides=request.business_id, lock=True
    )
    if shares_with and not shared_books:  # taken since the run's check: refuse (audited)
        check_books(
            session,
            request=request,
            purpose=purpose,
            organisation=organisation,
            shared_books=False,
        )
    connection = session.exec(
        select(Connection).where(Connection.business_id == request.business_id)
    ).first()
    previous_tenant = connection.nomi_tenant_id if connection else None
    if connection is None:
        connection = Connection(business_id=request.business_id)
    connection.nomi_tenant_id = organisation.tenant_id
    connection.organisation_name = organisation.tenant_name
    connection.scopes = list(scopes)
    connection.status = ConnectionStatus.CONNECTED
    connection.connected_at = now
    connection.consent_expires_at = consent_expires_at or now + CONSENT_TTL
    connection.credentials_block_name = credentials_block_name
    connection.last_error = None
    session.add(connection)
    session.flush()
    has_settings = session.exec(
        select(ConnectionSettings.id).where(ConnectionSettings.connection_id == connection.id)
    ).first()
    if has_settings is None:
        session.add(ConnectionSettings(connection_id=connection.id))
    detail: dict[str, object] = {
        "tenant_id": organisation.tenant_id,
        "organisation": organisation.tenant_name,
        "scopes": list(scopes),
    }
    if previous_tenant and previous_tenant != organisation.tenant_id:
        detail["previous_tenant_id"] = previous_tenant
    if shares_with:
        detail["shared_books"] = True
        detail["shares_with"] = shares_with
    audit(session, request, f"{purpose}.completed", detail=detail)
    return connection


def record_failure(
    session: Session, *, request: ConsentRequest, purpose: OAuthPurpose, reason: str
) -> None:
    """Audit a (re)connect that ended without a connection (``reason`` holds no secret)."""
    audit(session, request, f"{purpose}.failed", detail={"reason": reason})


def mark_connection_expired(session: Session, business_id: uuid.UUID, reason: str) -> None:
    """Mark the business's connection ``expired`` (a reconnect is needed); the caller commits.

    Publishing and sync call it when Nomi refuses the connection. One ``UPDATE`` with no read
    first: on SQLite a transaction that read and then writes cannot become a writer once another
    connection has committed in between ("database is locked" at once), and publishing's other
    writers commit all the time. Open the session as a write (``tasks.runtime.db(write=True)``).

    Args:
        session: A session on the connector database.
        business_id: The business whose connection Nomi no longer accepts.
        reason: Shown to ops as ``last_error``, cut to 500 characters (must hold no secret).
    """
    connections = table_of(Connection)
    session.connection().execute(
        sa.update(connections)
        .where(connections.c.business_id == business_id)
        # A run still finishing after a disconnect sees Nomi refuse the revoked tokens: the
        # connection stays disconnected (ops chose it), not expired (a reconnect is due).
        .where(connections.c.status != ConnectionStatus.DISCONNECTED)
        .values(
            status=ConnectionStatus.EXPIRED,
            last_error=short_error(reason),
            updated_at=utcnow(),
        )
    )
