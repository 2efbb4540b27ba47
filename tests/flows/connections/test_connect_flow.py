"""connect-to-nomi against the sandbox over HTTP, resumed by the callback app."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

import pytest
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.locks import publish_lock_name
from blocks.tokens import BlockTokenProvider
from connector.connections.oauth_states import OAuthState, StateOutcome
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Connection, ConnectionSettings
from flows.connect_to_nomi import ConnectParams, connect_to_nomi
from nomi.client import NomiClient
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tasks.consent import code_block_name
from tasks.runtime import credentials_block_name
from tests.connector.factories import make_connection
from tests.flows.connections.test_connect_support import (
    OWNER,
    CallbackServer,
    Member,
    app_block,
    authorize_link,
    browse_callback,
    callback,
    consent_at_nomi,
    database_text,
    make_member,
    read_run,
    run_texts,
    start_paused,
)

__all__ = ["app_block", "callback", "make_member"]


def _states(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> list[OAuthState]:
    with db_session_for() as s:
        return list(s.exec(select(OAuthState).where(OAuthState.business_id == business_id)))


def _connection(db_session_for: Callable[[], Session], business_id: uuid.UUID) -> Connection | None:
    with db_session_for() as s:
        return s.exec(select(Connection).where(Connection.business_id == business_id)).first()


def _block_exists(name: str, kind: type[Block]) -> bool:
    try:
        # Prefect's async_dispatch wrapper takes _sync; load's typed signature does not show it.
        kind.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        return False
    return True


def test_connect_pauses_for_consent_and_the_callback_finishes_the_connection(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
    connector_db: str,
) -> None:
    member = make_member()
    run, paused = start_paused("connect", app_block, member.slug, member.email)
    [opened] = _states(db_session_for, member.business_id)
    assert opened.flow_run_id == paused.id
    assert opened.used_at is None

    answer = consent_at_nomi(member.slug, sandbox.tenant_id(BRIGHT_SMILE), **OWNER)
    page = browse_callback(callback, answer)
    assert page.status_code == 200, page.text
    assert "authorization received" in page.text
    assert "location" not in page.headers

    final = run.join()
    assert final.is_completed(), final.message
    connection = _connection(db_session_for, member.business_id)
    assert connection is not None
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.nomi_tenant_id == sandbox.tenant_id(BRIGHT_SMILE)
    assert connection.organisation_name == BRIGHT_SMILE
    assert "offline_access" in connection.scopes
    assert connection.credentials_block_name == credentials_block_name(member.slug)
    assert connection.consent_expires_at is not None
    assert connection.connected_at is not None
    lifetime = connection.consent_expires_at - connection.connected_at
    assert abs(lifetime.total_seconds() - 365 * 86400) < 60
    with db_session_for() as s:
        assert s.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
        ).one()
        audit = s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id)).all()
    assert {(a.action, a.allowed) for a in audit} >= {
        ("connect", True),
        ("connect.completed", True),
    }
    [closed] = _states(db_session_for, member.business_id)
    assert closed.outcome == StateOutcome.CONNECTED
    assert closed.used_at is not None

    # The saved tokens work: the connection reads Nomi through the block.
    app = cast(NomiApp, NomiApp.load(app_block))
    tokens = BlockTokenProvider(connection.credentials_block_name, app)
    with NomiClient(app.api_base_url, connection.nomi_tenant_id, tokens) as nomi:
        assert [o.tenant_id for o in nomi.connections()] == [connection.nomi_tenant_id]
        assert list(nomi.iter_tax_rates())
    assert not _block_exists(code_block_name(paused.id), Secret)
    with get_client(sync_client=True) as client:  # its first publish run finds its slot
        assert (
            client.read_global_concurrency_limit_by_name(publish_lock_name(member.slug)).limit == 1
        )

    # Replaying the callback is refused and changes nothing.
    replay = browse_callback(callback, answer)
    assert replay.status_code == 400
    assert "already used" in replay.text

    # No secret anywhere ops or analysts look.
    creds = cast(NomiCredentials, NomiCredentials.load(connection.credentials_block_name))
    secrets = {
        answer["code"],
        creds.access_token.get_secret_value(),
        creds.refresh_token.get_secret_value(),
        "sandbox-client-secret",
    }
    shown = run_texts(paused.id)
    stored = database_text(connector_db)
    for secret in secrets:
        assert secret not in shown
        assert secret not in stored


def test_deny_at_nomi_fails_the_run_and_connects_nothing(
    app_block: str,
    callback: CallbackServer,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member(Role.ACCOUNTANT)
    run, _ = start_paused("connect", app_block, member.slug, member.email)
    answer = consent_at_nomi(member.slug, decision="deny", **OWNER)
    assert answer["error"] == "access_denied"
    page = browse_callback(callback, answer)
    assert page.status_code == 200
    assert "declined" in page.text

    final = run.join()
    assert final.is_failed()
    assert "consent denied at Nomi" in (final.message or "")
    assert _connection(db_session_for, member.business_id) is None
    assert not _block_exists(credentials_block_name(member.slug), NomiCredentials)
    [closed] = _states(db_session_for, member.business_id)
    assert closed.outcome == StateOutcome.DENIED
    with db_session_for() as s:
        failed = s.exec(
            select(AuditLog).where(
                AuditLog.business_id == member.business_id, AuditLog.action == "connect.failed"
            )
        ).one()
    assert "consent denied" in failed.detail["reason"]


def test_a_forged_state_is_refused_while_the_run_keeps_waiting_until_it_times_out(
    app_block: str,
    callback: CallbackServer,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    run, paused = start_paused("connect", app_block, member.slug, member.email, timeout_seconds=4)
    forged = browse_callback(callback, {"code": "stolen", "state": "forged-state"})
    assert forged.status_code == 400
    assert "unknown" in forged.text
    state = read_run(paused.id).state
    assert state is not None
    assert state.is_paused()

    final = run.join()
    assert final.is_failed()
    assert "no authorization within 4 s" in (final.message or "")
    assert _connection(db_session_for, member.business_id) is None
    assert not _block_exists(credentials_block_name(member.slug), NomiCredentials)
    [closed] = _states(db_session_for, member.business_id)
    assert closed.outcome == StateOutcome.TIMED_OUT
    assert closed.used_at is None

    # The real state, arriving after the timeout, is refused as stale.
    link_state = dict(
        p.split("=", 1) for p in authorize_link(member.slug).split("?", 1)[1].split("&")
    )["state"]
    late = browse_callback(callback, {"code": "late", "state": link_state})
    assert late.status_code == 400
    assert "expired" in late.text
    assert "already used" not in late.text


def test_a_standard_member_is_refused_with_an_audit_row(
    app_block: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member(Role.STANDARD)
    final = connect_to_nomi(
        ConnectParams(business=member.slug, acting_user=member.email, app_block=app_block),
        return_state=True,
    )
    assert final.is_failed()
    message = final.message or ""
    assert member.email in message
    assert member.slug in message
    assert "'connect'" in message
    with db_session_for() as s:
        refusal = s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id)).one()
    assert refusal.allowed is False
    assert refusal.actor_user_id == member.user_id
    assert _states(db_session_for, member.business_id) == []


def test_an_unknown_acting_user_is_refused_with_an_audit_row(
    app_block: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    final = connect_to_nomi(
        ConnectParams(
            business=member.slug, acting_user="intruder@example.com", app_block=app_block
        ),
        return_state=True,
    )
    assert final.is_failed()
    assert "intruder@example.com" in (final.message or "")
    with db_session_for() as s:
        refusal = s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id)).one()
    assert refusal.allowed is False
    assert refusal.detail["email"] == "intruder@example.com"


def test_a_connected_business_is_sent_to_reconnect(
    app_block: str,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    member = make_member()
    with db_session_for() as s:
        from connector.store.models import Business

        business = s.get(Business, member.business_id)
        assert business is not None
        make_connection(s, business=business)
    final = connect_to_nomi(
        ConnectParams(business=member.slug, acting_user=member.email, app_block=app_block),
        return_state=True,
    )
    assert final.is_failed()
    assert "reconnect-to-nomi" in (final.message or "")
    with db_session_for() as s:
        actions = {
            (a.action, a.allowed)
            for a in s.exec(select(AuditLog).where(AuditLog.business_id == member.business_id))
        }
    assert ("connect.refused", False) in actions


@pytest.mark.parametrize("business", ["no-such-business"])
def test_an_unknown_business_fails_clearly(
    app_block: str, connector_db: str, business: str
) -> None:
    final = connect_to_nomi(
        ConnectParams(business=business, acting_user="a@example.com", app_block=app_block),
        return_state=True,
    )
    assert final.is_failed()
    assert "no-such-business" in (final.message or "")
