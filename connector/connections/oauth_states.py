"""OAuth ``state`` values of connect/reconnect runs: stored only as hashes, used once, expiring.

The run stores the state's SHA-256 with its flow run; the callback refuses an unknown, used or
expired state, claims it in one guarded UPDATE (``consume_state``) and may give it back
(``release_state``); the run closes its row with an ``outcome``. ``OAuthErrorCode``: the
``error`` values the callback accepts (RFC 6749, 4.1.2.1).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, Session, select

from connector.store.base import ConnectorModel, table_of, utcnow

STATE_BYTES = 32


class OAuthPurpose(StrEnum):
    """Why a run asked Nomi for consent."""

    CONNECT = "connect"
    RECONNECT = "reconnect"


class StateOutcome(StrEnum):
    """How the run that opened a state ended."""

    CONNECTED = "connected"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class OAuthErrorCode(StrEnum):
    """The error codes of an authorization response (RFC 6749, section 4.1.2.1): nothing else."""

    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    ACCESS_DENIED = "access_denied"
    UNSUPPORTED_RESPONSE_TYPE = "unsupported_response_type"
    INVALID_SCOPE = "invalid_scope"
    SERVER_ERROR = "server_error"
    TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"


def oauth_error_code(value: str) -> OAuthErrorCode | None:
    """The RFC 6749 error code ``value`` is exactly, or None (any other text)."""
    try:
        return OAuthErrorCode(value)
    except ValueError:
        return None


class RefusalReason(StrEnum):
    """Why the callback refused a state."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


class OAuthState(ConnectorModel, table=True):
    """One authorization request of a connect/reconnect run (the state itself is never stored)."""

    __tablename__ = "oauth_states"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_hash: str = Field(max_length=64, unique=True, index=True)
    flow_run_id: uuid.UUID = Field(index=True)
    business_id: uuid.UUID = Field(foreign_key="businesses.id", index=True)
    purpose: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    expires_at: datetime = Field(nullable=False)
    used_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=20)


class StateRefusedError(Exception):
    """The callback's state is unknown, already used or expired (the message says which)."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def new_state() -> str:
    """A fresh unguessable state (32 random bytes, URL-safe)."""
    return secrets.token_urlsafe(STATE_BYTES)


def hash_state(state: str) -> str:
    """The SHA-256 hex digest stored in place of a state."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def open_state(
    session: Session,
    *,
    state_hash: str,
    flow_run_id: uuid.UUID,
    business_id: uuid.UUID,
    purpose: OAuthPurpose,
    ttl: timedelta,
    now: datetime | None = None,
) -> OAuthState:
    """Record an authorization request that waits for its callback.

    Args:
        session: A session on the connector database (the caller commits).
        state_hash: ``hash_state(state)``; the state itself stays with the run.
        flow_run_id: The run that waits for the callback.
        business_id: The business being connected.
        purpose: ``connect`` or ``reconnect``.
        ttl: How long the callback may take (the run's pause timeout).
        now: The current time (tests).

    Returns:
        The new row.
    """
    now = now or utcnow()
    row = OAuthState(
        state_hash=state_hash,
        flow_run_id=flow_run_id,
        business_id=business_id,
        purpose=purpose,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return row


def check_state(session: Session, state: str, *, now: datetime | None = None) -> OAuthState:
    """The state's row if a callback may still use it (read only: nothing is marked).

    A row its run closed as timed out, or past ``expires_at``, is refused as expired; one already
    used, or closed otherwise, as used.

    Args:
        session: A session on the connector database.
        state: The ``state`` query parameter the browser brought back.
        now: The current time (tests).

    Returns:
        The row, still unused.

    Raises:
        StateRefusedError: Unknown, already used or closed, or expired.
    """
    now = now or utcnow()
    query = select(OAuthState).where(OAuthState.state_hash == hash_state(state))
    row = session.exec(query.execution_options(populate_existing=True)).first()
    if row is None:
        raise StateRefusedError(
            RefusalReason.UNKNOWN, "this authorization request is unknown to the connector"
        )
    if row.used_at is not None:
        raise StateRefusedError(RefusalReason.USED, "this authorization request was already used")
    if row.outcome == StateOutcome.TIMED_OUT or row.expires_at <= now:
        raise StateRefusedError(RefusalReason.EXPIRED, "this authorization request has expired")
    if row.outcome is not None:
        raise StateRefusedError(RefusalReason.USED, "this authorization request was already used")
    return row


def consume_state(session: Session, state: str, *, now: datetime | None = None) -> OAuthState:
    """Accept a callback's state once: refuse forged, replayed or stale ones, mark it used.

    Reads, then writes: open ``session`` with ``connector.store.db.session(engine, write=True)``,
    or a
    SQLite read snapshot that another connection committed past fails the write at once.

    Args:
        session: A write session on the connector database (the caller commits).
        state: The ``state`` query parameter the browser brought back.
        now: The current time (tests).

    Returns:
        The row, now marked used (``used_at`` set).

    Raises:
        StateRefusedError: Unknown, already used or closed, or expired.
    """
    now = now or utcnow()
    row = check_state(session, state, now=now)
    table = table_of(OAuthState)
    claimed = session.execute(
        sa.update(table)
        .where(table.c.id == row.id, table.c.used_at.is_(None), table.c.outcome.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise StateRefusedError(RefusalReason.USED, "this authorization request was already used")
    session.refresh(row)
    return row


def release_state(session: Session, state_id: uuid.UUID, *, used_at: datetime) -> bool:
    """Give back a state whose callback could not hand its answer to the run (Prefect down).

    Only the claim made at ``used_at`` is undone, and only while the run has not closed the row:
    the same link then works again.

    Args:
        session: A write session on the connector database (the caller commits).
        state_id: The row's id.
        used_at: The ``used_at`` that ``consume_state`` set.

    Returns:
        True when the state is usable again.
    """
    table = table_of(OAuthState)
    released = session.execute(
        sa.update(table)
        .where(table.c.id == state_id, table.c.used_at == used_at, table.c.outcome.is_(None))
        .values(used_at=None)
    )
    row = session.get(OAuthState, state_id)
    if row is not None:
        session.refresh(row)
    return bool(released.rowcount == 1)  # type: ignore[attr-defined]


def close_state(
    session: Session, state_id: uuid.UUID, *, outcome: StateOutcome, now: datetime | None = None
) -> OAuthState:
    """Record how the run ended; the state can no longer be used (a timeout also expires it).

    Args:
        session: A session on the connector database (the caller commits).
        state_id: The row's id.
        outcome: How the run ended.
        now: The current time (tests).

    Returns:
        The closed row.

    Raises:
        LookupError: No such row.
    """
    now = now or utcnow()
    row = session.get(OAuthState, state_id)
    if row is None:
        raise LookupError(f"no OAuth state {state_id}")
    if row.outcome is None:
        row.outcome = outcome
    if outcome == StateOutcome.TIMED_OUT:
        row.expires_at = min(row.expires_at, now)
    elif row.used_at is None:
        row.used_at = now
    session.add(row)
    session.flush()
    return row
