"""Connection checks: is a business's Nomi connection still usable, and for how long?

`check_connection` asks Nomi (token, organisation, scopes, one page of categories, days of consent
left); `record_check` stores the ``ConnectionCheck`` row and moves the connection to ``expired`` or
back to ``connected`` accordingly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from connector.history.records import record_connection_check
from connector.rules.vocabulary import ConnectionStatus
from connector.store.base import short_error, utcnow
from connector.store.models import Connection
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError, NomiError
from nomi.tokens import TokenProvider

REQUIRED_SCOPES: tuple[str, ...] = (
    "offline_access",
    "contacts.read",
    "settings.read",
    "expenses.write",
    "sales.write",
)


class CheckOutcome(StrEnum):
    """The verdict of one check."""

    VERIFIED = "verified"
    EXPIRING = "expiring"  # healthy, but the consent ends within the warning window
    EXPIRED = "expired"  # Nomi refuses it or the consent ended: a reconnect is needed
    FAILED = "failed"  # could not tell (Nomi unavailable) or a scope/tenant problem


@dataclass
class CheckResult:
    """What one check found (also stored as a ``ConnectionCheck`` row)."""

    outcome: CheckOutcome = CheckOutcome.FAILED
    token_ok: bool | None = None
    tenant_ok: bool | None = None
    scopes_ok: bool | None = None
    list_ok: bool | None = None
    days_to_consent_expiry: int | None = None
    problems: list[str] = field(default_factory=list)
    at: datetime = field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        """True when the connection is usable now."""
        return self.outcome in (CheckOutcome.VERIFIED, CheckOutcome.EXPIRING)

    @property
    def detail(self) -> str:
        """The problems found, as one line (no secrets)."""
        return short_error("; ".join(self.problems))


def check_connection(
    client: NomiClient,
    tokens: TokenProvider,
    *,
    granted_scopes: Iterable[str],
    consent_expires_at: datetime | None,
    expiry_warning_days: int = 30,
    required_scopes: Iterable[str] = REQUIRED_SCOPES,
    now: datetime | None = None,
) -> CheckResult:
    """Check one connection against Nomi.

    Args:
        client: A client acting for the connection's organisation (using ``tokens``).
        tokens: The connection's token provider (refreshes the access token when due).
        granted_scopes: The scopes Nomi granted.
        consent_expires_at: When the consent ends (None: unknown).
        expiry_warning_days: Within this many days of the consent's end the outcome is
            ``expiring``.
        required_scopes: Scopes the connector needs.
        now: The time to judge the consent expiry against (default now).

    Returns:
        A `CheckResult`; Nomi errors are findings, not exceptions.
    """
    result = CheckResult(at=now or utcnow())
    if consent_expires_at is not None:
        left = consent_expires_at - result.at
        result.days_to_consent_expiry = left.days
        if left.total_seconds() <= 0:
            result.problems.append(f"consent expired on {consent_expires_at.date().isoformat()}")
            result.outcome = CheckOutcome.EXPIRED
            return result
    missing = sorted(set(required_scopes) - set(granted_scopes))
    result.scopes_ok = not missing
    if missing:
        result.problems.append(f"scopes not granted: {', '.join(missing)}")
    try:
        tokens.access_token()
        result.token_ok = True
        tenants = {org.tenant_id for org in client.connections()}
        result.tenant_ok = client.tenant_id in tenants
        if not result.tenant_ok:
            result.problems.append("the organisation is no longer granted to this app")
            result.outcome = CheckOutcome.EXPIRED
            return result
        next(client.iter_categories(page_size=1).iter_pages(), [])
        result.list_ok = True
    except ConnectionLostError as exc:
        if result.token_ok is None:
            result.token_ok = False
        result.problems.append(f"Nomi refused the connection: {exc}")
        result.outcome = CheckOutcome.EXPIRED
        return result
    except NomiError as exc:
        result.problems.append(f"could not check: {type(exc).__name__}: {exc}")
        result.outcome = CheckOutcome.FAILED
        return result
    if missing:
        result.outcome = CheckOutcome.FAILED
    elif (
        result.days_to_consent_expiry is not None
        and result.days_to_consent_expiry < expiry_warning_days
    ):
        result.outcome = CheckOutcome.EXPIRING
    else:
        result.outcome = CheckOutcome.VERIFIED
    return result


def record_check(session: Session, connection_id: uuid.UUID, result: CheckResult) -> bool:
    """Store a check and update the connection (the caller commits).

    Args:
        session: An open session.
        connection_id: The connection checked.
        result: From `check_connection`.

    Returns:
        True when the connection's status changed.

    Raises:
        LookupError: No such connection.
    """
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise LookupError(f"no connection {connection_id}")
    record_connection_check(
        session,
        connection_id=connection_id,
        at=result.at,
        ok=result.ok,
        token_ok=result.token_ok,
        tenant_ok=result.tenant_ok,
        scopes_ok=result.scopes_ok,
        list_ok=result.list_ok,
        days_to_consent_expiry=result.days_to_consent_expiry,
        detail=result.detail or None,
    )
    before = connection.status
    connection.last_verified_at = result.at
    if before == ConnectionStatus.DISCONNECTED:
        pass  # disconnected while it was checked: the check is kept, the status is not touched
    elif result.outcome == CheckOutcome.EXPIRED:
        connection.status = ConnectionStatus.EXPIRED
        connection.last_error = result.detail
    elif result.ok and connection.status == ConnectionStatus.EXPIRED:
        connection.status = ConnectionStatus.CONNECTED
        connection.last_error = None
    session.add(connection)
    session.flush()
    return connection.status != before
