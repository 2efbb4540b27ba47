"""One Nomi organisation, one business: connect and reconnect refuse an organisation another
business holds, unless the run says the books are shared (issue 16, finding 1).

Driven like a person would: the accountant signs in on the sandbox's consent pages (they may act
for every seeded organisation) and chooses an organisation a second business already holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from sqlmodel import Session, col, select

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import BlockTokenProvider
from connector.connections.oauth_states import OAuthState, StateOutcome
from connector.rules.vocabulary import ConnectionStatus
from connector.store.history_tables import AuditLog
from connector.store.models import Connection
from nomi.client import NomiClient
from sandbox.seed import BRIGHT_SMILE, HARBOUR, LOGINS
from sandbox.testing import SandboxHandle
from tasks.runtime import credentials_block_name
from tests.flows.conftest import ConnectedBusiness
from tests.flows.connections.test_connect_support import (
    CallbackServer,
    Member,
    app_block,
    callback,
    consent_and_call_back,
    make_member,
    start_paused,
)

__all__ = ["app_block", "callback", "make_member"]

ACCOUNTANT_EMAIL, ACCOUNTANT_PASSWORD = LOGINS[1][0], LOGINS[1][1]


def _audit(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> list[AuditLog]:
    with db_session_for() as s:
        return list(
            s.exec(
                select(AuditLog)
                .where(AuditLog.business_id == business_id)
                .order_by(col(AuditLog.at))
            )
        )


def _block_exists(name: str) -> bool:
    try:
        NomiCredentials.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        return False
    return True


def _still_reads(app_block: str, holder: ConnectedBusiness) -> None:
    """The holder's own credentials still read its organisation (its consent was not touched)."""
    app = cast(NomiApp, NomiApp.load(app_block))
    tokens = BlockTokenProvider(holder.credentials_block, app)
    with NomiClient(app.api_base_url, holder.tenant_id, tokens) as nomi:
        assert [o.tenant_id for o in nomi.connections()] == [holder.tenant_id]


def test_connect_choosing_an_organisation_another_business_holds_is_refused_naming_it(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    holder = connect_business(BRIGHT_SMILE)
    newcomer = make_member()
    revoked_before = sandbox.admin.get("/tokens").json()["revoked"]
    run, _ = start_paused("connect", app_block, newcomer.slug, newcomer.email)
    consent_and_call_back(callback, newcomer.slug, sandbox.tenant_id(BRIGHT_SMILE))
    final = run.join()

    assert final.is_failed()
    message = final.message or ""
    assert f"'{holder.slug}'" in message
    assert BRIGHT_SMILE in message
    assert "shared_books=true" in message
    # Nothing half-written: no connection, no credentials block, the new tokens revoked.
    with db_session_for() as s:
        assert (
            s.exec(select(Connection).where(Connection.business_id == newcomer.business_id)).first()
            is None
        )
        [state] = s.exec(
            select(OAuthState).where(OAuthState.business_id == newcomer.business_id)
        ).all()
    assert state.outcome == StateOutcome.FAILED
    assert not _block_exists(credentials_block_name(newcomer.slug))
    assert sandbox.admin.get("/tokens").json()["revoked"] > revoked_before
    audit = _audit(db_session_for, newcomer.business_id)
    [refusal] = [a for a in audit if a.action == "connect.refused"]
    assert refusal.allowed is False
    assert refusal.actor_user_id == newcomer.user_id
    assert refusal.detail["held_by"] == [holder.slug]
    assert refusal.detail["tenant_id"] == holder.tenant_id
    assert holder.slug in refusal.detail["reason"]
    assert "connect.completed" not in {a.action for a in audit}
    # The business that holds the organisation is untouched.
    with db_session_for() as s:
        kept = s.get(Connection, holder.connection_id)
        assert kept is not None
    assert kept.status == ConnectionStatus.CONNECTED
    assert kept.nomi_tenant_id == holder.tenant_id
    _still_reads(app_block, holder)


def test_connect_with_shared_books_shares_the_organisation_and_audits_it(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    holder = connect_business(BRIGHT_SMILE)
    newcomer = make_member()
    run, _ = start_paused("connect", app_block, newcomer.slug, newcomer.email, shared_books=True)
    consent_and_call_back(callback, newcomer.slug, sandbox.tenant_id(BRIGHT_SMILE))
    final = run.join(timeout=120)

    assert final.is_completed(), final.message
    with db_session_for() as s:
        connection = s.exec(
            select(Connection).where(Connection.business_id == newcomer.business_id)
        ).one()
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.nomi_tenant_id == holder.tenant_id
    audit = _audit(db_session_for, newcomer.business_id)
    [shared] = [a for a in audit if a.action == "connect.shared_books"]
    assert shared.allowed is True
    assert shared.actor_user_id == newcomer.user_id
    assert shared.detail["held_by"] == [holder.slug]
    assert shared.detail["tenant_id"] == holder.tenant_id
    [completed] = [a for a in audit if a.action == "connect.completed"]
    assert completed.detail["shared_books"] is True
    assert completed.detail["shares_with"] == [holder.slug]
    _still_reads(app_block, holder)


def test_reconnect_to_an_organisation_an_expired_connection_of_another_business_holds_is_refused(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    holder = connect_business(BRIGHT_SMILE)
    with db_session_for() as s:  # expired, not disconnected: it will be reconnected to its books
        row = s.get(Connection, holder.connection_id)
        assert row is not None
        row.status = ConnectionStatus.EXPIRED
        s.add(row)
    mover = connect_business(HARBOUR)
    run, _ = start_paused(
        "reconnect", app_block, mover.slug, mover.admin_email, allow_organisation_change=True
    )
    consent_and_call_back(callback, mover.slug, sandbox.tenant_id(BRIGHT_SMILE))
    final = run.join()

    assert final.is_failed()
    assert f"'{holder.slug}'" in (final.message or "")
    with db_session_for() as s:
        after = s.get(Connection, mover.connection_id)
        assert after is not None
    assert after.nomi_tenant_id == mover.tenant_id  # still Harbour's books
    assert after.status == ConnectionStatus.CONNECTED
    assert not _block_exists(credentials_block_name(mover.slug))  # its own block untouched
    [refusal] = [
        a for a in _audit(db_session_for, mover.business_id) if a.action == "reconnect.refused"
    ]
    assert refusal.detail["held_by"] == [holder.slug]
    _still_reads(app_block, mover)
