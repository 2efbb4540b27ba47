"""reconnect-to-nomi against the sandbox over HTTP: renewed consent, same organisation only."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import BlockTokenProvider
from connector.connections.oauth_states import OAuthState, StateOutcome
from connector.rules.vocabulary import ConnectionStatus, ItemStatus
from connector.store.history_tables import AuditLog
from connector.store.models import Business, Connection, ConnectionSettings, Item
from flows.reconnect_to_nomi import ReconnectParams, reconnect_to_nomi
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError
from sandbox.seed import BRIGHT_SMILE, LOGINS
from sandbox.testing import SandboxHandle
from tasks.runtime import credentials_block_name
from tests.connector.factories import make_item
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
HARBOUR = "Harbour Coffee Co"
HAS_PUBLISH = importlib.util.find_spec("flows.auto_publish_to_nomi") is not None


def _connection(db_session_for: Callable[[], Session], connected: ConnectedBusiness) -> Connection:
    with db_session_for() as s:
        connection = s.get(Connection, connected.connection_id)
        assert connection is not None
        return connection


def _expense_category(app_block: str, connected: ConnectedBusiness) -> str:
    app = cast(NomiApp, NomiApp.load(app_block))
    tokens = BlockTokenProvider(connected.credentials_block, app)
    with NomiClient(app.api_base_url, connected.tenant_id, tokens) as nomi:
        return next(c.id for c in nomi.iter_categories() if c.type == "EXPENSE")


def test_reconnect_after_consent_expiry_connects_again_and_publishes_what_waited(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    connected = connect_business(BRIGHT_SMILE, warn_new_supplier=False)
    category = _expense_category(app_block, connected)
    with db_session_for() as s:
        business = s.get(Business, connected.business_id)
        assert business is not None
        waited = make_item(
            s,
            business=business,
            category_edit=category,
            tax_amount=None,
            last_error_code="connection_expired",
        ).id
        connection = s.get(Connection, connected.connection_id)
        assert connection is not None
        connection.status = ConnectionStatus.EXPIRED
        s.add(connection)
    sandbox.admin.post("/clock/advance", json={"seconds": 366 * 86400}).raise_for_status()
    app = cast(NomiApp, NomiApp.load(app_block))
    old = BlockTokenProvider(connected.credentials_block, app)
    with (
        NomiClient(app.api_base_url, connected.tenant_id, old) as nomi,
        pytest.raises(ConnectionLostError),
    ):
        nomi.connections()  # the old consent is over

    run, _ = start_paused("reconnect", app_block, connected.slug, connected.admin_email)
    consent_and_call_back(callback, connected.slug, connected.tenant_id)
    final = run.join(timeout=120)
    assert final.is_completed(), final.message

    connection = _connection(db_session_for, connected)
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.nomi_tenant_id == connected.tenant_id
    assert connection.credentials_block_name == credentials_block_name(connected.slug)
    assert connection.consent_expires_at is not None
    assert connection.consent_expires_at > datetime.now(UTC)
    with db_session_for() as s:
        settings = s.exec(
            select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
        ).one()
        assert settings.warn_new_supplier is False  # settings kept
        actions = {
            a.action
            for a in s.exec(select(AuditLog).where(AuditLog.business_id == connected.business_id))
        }
        assert {"reconnect", "reconnect.completed"} <= actions
        [state] = s.exec(select(OAuthState)).all()
        assert state.outcome == StateOutcome.CONNECTED
        item = s.get(Item, waited)
        assert item is not None
    fresh = BlockTokenProvider(connection.credentials_block_name, app)
    with NomiClient(app.api_base_url, connected.tenant_id, fresh) as nomi:
        assert [o.tenant_id for o in nomi.connections()] == [connected.tenant_id]
    if HAS_PUBLISH:
        assert item.status == ItemStatus.PUBLISHED, item.last_error_message
        records = sandbox.admin.get(
            "/records", params={"tenant_id": connected.tenant_id, "kind": "expense"}
        ).json()
        assert [r for r in records if r.get("source_id") == str(waited)]


def test_reconnect_choosing_another_organisation_is_refused_and_changes_nothing(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    connected = connect_business(BRIGHT_SMILE)
    before = _connection(db_session_for, connected)
    revoked_before = sandbox.admin.get("/tokens").json()["revoked"]
    run, _ = start_paused("reconnect", app_block, connected.slug, connected.admin_email)
    consent_and_call_back(callback, connected.slug, sandbox.tenant_id(HARBOUR))
    final = run.join()
    assert final.is_failed()
    message = final.message or ""
    assert HARBOUR in message
    assert "allow_organisation_change" in message
    after = _connection(db_session_for, connected)
    assert after.nomi_tenant_id == before.nomi_tenant_id
    assert after.credentials_block_name == before.credentials_block_name
    assert after.status == before.status
    assert sandbox.admin.get("/tokens").json()["revoked"] > revoked_before
    with pytest.raises(ValueError):
        NomiCredentials.load(credentials_block_name(connected.slug))
    with db_session_for() as s:
        [state] = s.exec(select(OAuthState)).all()
        assert state.outcome == StateOutcome.FAILED


def test_reconnect_of_a_business_never_connected_points_to_connect(
    app_block: str, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    final = reconnect_to_nomi(
        ReconnectParams(business=member.slug, acting_user=member.email, app_block=app_block),
        return_state=True,
    )
    assert final.is_failed()
    assert "connect-to-nomi first" in (final.message or "")
