"""disconnect-from-nomi against the sandbox over HTTP, under the session Prefect server.

Disconnect revokes at Nomi and forgets the tokens; publish, sync and verify skip the business;
reconnecting publishes what waited; an unreachable Nomi still disconnects here and the next run
retries the revoke. Who may disconnect: ``test_disconnect_access.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from sqlmodel import Session, select

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.tokens import ensure_refresh_lock, refresh_lock_name
from connector.connections.disconnect import REVOKE_PENDING
from connector.rules.vocabulary import ConnectionStatus, ItemStatus
from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import Connection, ConnectionSettings, ContactRule
from deployments.local import free_port
from flows.auto_publish_to_nomi import auto_publish_to_nomi
from flows.disconnect_from_nomi import DisconnectParams, disconnect_from_nomi
from flows.sync_nomi_reference_data import SyncParams, sync_nomi_reference_data
from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection
from nomi.client import NomiClient
from nomi.errors import ConnectionLostError
from nomi.models import TokenSet
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tasks.disconnect import pending_revoke_block_name
from tasks.runtime import credentials_block_name
from tests.connector.factories import make_contact_rule
from tests.connector.publishing.test_publishing_world import engine_items, records
from tests.flows.conftest import ConnectedBusiness
from tests.flows.connections.test_connect_support import (
    CallbackServer,
    app_block,
    callback,
    consent_and_call_back,
    start_paused,
)
from tests.flows.publish.support import params as publish_params
from tests.flows.publish.support import prepare
from tests.flows.test_sync_flow import events_for

__all__ = ["app_block", "callback"]


# The flows read this test's database, with no per-minute limit and fresh client throttles.
pytestmark = pytest.mark.usefixtures("fast_world")


def _ready_business(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> tuple[ConnectedBusiness, list[uuid.UUID]]:
    """Bright Smile connected, auto-publish on, two Ready cost items and a supplier rule."""
    business, ids = prepare(
        connect_business,
        nomi_app,
        connector_db,
        BRIGHT_SMILE,
        tmp_path,
        costs=2,
        sales=0,
        claims=0,
        auto_publish=True,
    )
    with Session(make_engine(connector_db)) as s:
        connection = s.get(Connection, business.connection_id)
        assert connection is not None
        make_contact_rule(s, connection=connection, name="Kept Rule Ltd")
        s.commit()
    return business, ids["cost"]


def _connection(connector_db: str, connection_id: uuid.UUID) -> Connection:
    with Session(make_engine(connector_db), expire_on_commit=False) as s:
        connection = s.get(Connection, connection_id)
        assert connection is not None
        return connection


def _audit(connector_db: str, business_id: uuid.UUID) -> list[AuditLog]:
    with Session(make_engine(connector_db)) as s:
        return list(
            s.exec(
                select(AuditLog)
                .where(AuditLog.business_id == business_id)
                .where(AuditLog.action.startswith("disconnect"))
                .order_by(AuditLog.at)  # type: ignore[arg-type]
            )
        )


def _saved_tokens(block: str) -> TokenSet:
    credentials = NomiCredentials.load(block)
    assert isinstance(credentials, NomiCredentials)
    return TokenSet(
        access_token=credentials.access_token,
        refresh_token=credentials.refresh_token,
        expires_at=credentials.access_token_expires_at,
        refresh_token_expires_at=credentials.refresh_token_expires_at,
        scopes=credentials.scopes,
    )


class _Static:
    """A token provider over fixed tokens (no refresh): does Nomi still take them?"""

    def __init__(self, tokens: TokenSet) -> None:
        self._token = tokens.access_token.get_secret_value()

    def access_token(self) -> str:
        return self._token

    def refresh_after_rejection(self, rejected: str) -> str:
        raise ConnectionLostError("rejected", status=401)


def _nomi_takes(sandbox: SandboxHandle, tokens: TokenSet, tenant_id: str) -> bool:
    """True when Nomi still accepts these tokens for the organisation."""
    with NomiClient(sandbox.base_url, tenant_id, _Static(tokens)) as nomi:
        try:
            return tenant_id in {o.tenant_id for o in nomi.connections()}
        except ConnectionLostError:
            return False


def _lock_exists(block: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(refresh_lock_name(block))
        except ObjectNotFound:
            return False
    return True


def _tenant_requests(sandbox: SandboxHandle, tenant_id: str) -> int:
    seen = sandbox.admin.get("/requests", params={"limit": 50_000}).json()
    return sum(1 for r in seen if r["tenant_id"] == tenant_id)


def test_disconnect_revokes_forgets_the_tokens_and_publish_sync_and_verify_skip_it(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, waiting = _ready_business(connect_business, nomi_app, connector_db, tmp_path)
    tokens = _saved_tokens(business.credentials_block)
    assert _nomi_takes(sandbox, tokens, business.tenant_id)
    ensure_refresh_lock(business.credentials_block)  # as the connect flow does
    assert _lock_exists(business.credentials_block)

    message = disconnect_from_nomi(
        DisconnectParams(
            business=business.slug, acting_user=business.admin_email, app_block=nomi_app
        )
    )

    assert "tokens revoked" in message
    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.credentials_block_name is None
    assert connection.last_error is None
    assert connection.nomi_tenant_id == business.tenant_id  # history: which books it was
    with pytest.raises(ValueError):
        NomiCredentials.load(business.credentials_block)
    assert not _lock_exists(business.credentials_block)
    assert not _nomi_takes(sandbox, tokens, business.tenant_id)
    deletes = [
        r
        for r in sandbox.admin.get("/requests").json()
        if r["method"] == "DELETE" and r["path"].startswith("/connections/")
    ]
    assert [r["status"] for r in deletes] == [204]
    allowed, completed = _audit(connector_db, business.business_id)
    assert (allowed.action, allowed.allowed, allowed.actor_user_id) == (
        "disconnect",
        True,
        business.admin_user_id,
    )
    assert completed.action == "disconnect.completed"
    assert completed.detail["revoke"] == "revoked"
    assert completed.detail["previous_status"] == "connected"

    before = _tenant_requests(sandbox, business.tenant_id)
    swept = auto_publish_to_nomi(publish_params(app_block=nomi_app))
    named = auto_publish_to_nomi(publish_params(app_block=nomi_app, business=business.slug))
    synced = sync_nomi_reference_data(SyncParams(app_block=nomi_app))
    synced_named = sync_nomi_reference_data(SyncParams(business=business.slug, app_block=nomi_app))
    (checked,) = verify_nomi_connection(VerifyParams(business=business.slug, app_block=nomi_app))
    everyone = verify_nomi_connection(VerifyParams(app_block=nomi_app))

    assert swept.published == named.published == 0
    assert business.slug not in swept.businesses
    assert named.businesses[business.slug].skipped == "connection is disconnected"
    assert synced == {"businesses": [], "skipped": {business.slug: "disconnected"}}
    assert synced_named == synced
    assert checked["outcome"] == "disconnected"
    assert checked["revoke_pending"] is False
    assert [c["outcome"] for c in everyone] == ["disconnected"]
    assert _tenant_requests(sandbox, business.tenant_id) == before  # Nomi never asked
    assert records(sandbox, business.tenant_id, "expense") == []
    assert events_for(business.slug, "nomi.connection.disconnected")
    assert events_for(business.slug, "nomi.connection.expired", timeout=1) == []
    assert events_for(business.slug, "nomi.connection.verified", timeout=1) == []

    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.DISCONNECTED
    engine = make_engine(connector_db)
    items = engine_items(engine, business.business_id)
    assert {i.id for i in items} == set(waiting)
    assert {i.status for i in items} == {ItemStatus.READY}  # kept, waiting
    with Session(engine) as s:
        settings = s.exec(
            select(ConnectionSettings).where(
                ConnectionSettings.connection_id == business.connection_id
            )
        ).one()
        assert settings.auto_publish is True
        assert s.exec(select(ContactRule).where(ContactRule.name == "Kept Rule Ltd")).one()


def test_reconnect_after_a_disconnect_publishes_what_waited(
    app_block: str,
    callback: CallbackServer,
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
    tmp_path: Path,
) -> None:
    business, waiting = _ready_business(connect_business, nomi_app, connector_db, tmp_path)
    disconnect_from_nomi(
        DisconnectParams(
            business=business.slug, acting_user=business.admin_email, app_block=nomi_app
        )
    )
    assert auto_publish_to_nomi(publish_params(app_block=nomi_app)).published == 0

    run, _ = start_paused("reconnect", app_block, business.slug, business.admin_email)
    consent_and_call_back(callback, business.slug, business.tenant_id)
    final = run.join(timeout=180)
    assert final.is_completed(), final.message

    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.credentials_block_name == credentials_block_name(business.slug)
    items = engine_items(make_engine(connector_db), business.business_id)
    assert {i.status for i in items} == {ItemStatus.PUBLISHED}, [
        i.last_error_message for i in items
    ]
    published = {r["source_id"] for r in records(sandbox, business.tenant_id, "expense")}
    assert published == {str(i) for i in waiting}


def _unreachable_app(sandbox: SandboxHandle) -> str:
    """A NomiApp block whose Nomi URLs lead to a closed loopback port."""
    dead = f"http://127.0.0.1:{free_port()}"
    name = f"nomi-dead-{uuid.uuid4().hex[:8]}"
    NomiApp(
        client_id="nomi-connector-sandbox",
        client_secret="sandbox-client-secret",
        authorize_url=f"{dead}/oauth/authorize",
        token_url=f"{dead}/oauth/token",
        revoke_url=f"{dead}/oauth/revoke",
        api_base_url=dead,
        redirect_uri="http://127.0.0.1:8799/oauth/callback",
    ).save(name)
    return name


def test_nomi_unreachable_disconnects_here_and_the_next_run_retries_the_revoke(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    sandbox: SandboxHandle,
) -> None:
    business = connect_business(BRIGHT_SMILE)
    tokens = _saved_tokens(business.credentials_block)
    pending = pending_revoke_block_name(business.slug)
    asked = DisconnectParams(
        business=business.slug,
        acting_user=business.admin_email,
        app_block=_unreachable_app(sandbox),
    )

    final = disconnect_from_nomi(asked, return_state=True)

    assert final.is_failed()
    message = final.message or ""
    assert "disconnected here" in message
    assert "must be retried" in message
    assert f"disconnect-from-nomi for {business.slug} again" in message
    assert "NetworkError" in message
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() not in message
    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.credentials_block_name is None
    assert (connection.last_error or "").startswith(REVOKE_PENDING)
    with pytest.raises(ValueError):
        NomiCredentials.load(business.credentials_block)
    assert _nomi_takes(sandbox, _saved_tokens(pending), business.tenant_id)  # still owed
    assert _audit(connector_db, business.business_id)[-1].detail["revoke"] == "pending"
    (checked,) = verify_nomi_connection(VerifyParams(business=business.slug, app_block=nomi_app))
    assert checked["outcome"] == "disconnected"
    assert checked["revoke_pending"] is True
    assert REVOKE_PENDING in checked["detail"]
    skipped = auto_publish_to_nomi(publish_params(app_block=nomi_app, business=business.slug))
    assert skipped.businesses[business.slug].skipped == "connection is disconnected"

    again = disconnect_from_nomi(asked.model_copy(update={"app_block": nomi_app}))

    assert "tokens revoked" in again
    assert not _nomi_takes(sandbox, tokens, business.tenant_id)
    with pytest.raises(ValueError):
        NomiCredentials.load(pending)
    connection = _connection(connector_db, business.connection_id)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.last_error is None
    assert [a.detail.get("revoke") for a in _audit(connector_db, business.business_id)] == [
        None,
        "pending",
        None,
        "revoked",
    ]
    # Once more: nothing is left to revoke, and that is no failure.
    third = disconnect_from_nomi(asked.model_copy(update={"app_block": nomi_app}))
    assert "no tokens were left" in third
