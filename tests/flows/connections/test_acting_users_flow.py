"""connect-to-nomi and reconnect-to-nomi match the acting user as people type them (trimmed,
case-folded), and audit an unknown one (issue 16, finding 5)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Connection, User
from flows.reconnect_to_nomi import ReconnectParams, reconnect_to_nomi
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.connector.factories import make_business, make_membership, make_user
from tests.flows.conftest import ConnectedBusiness
from tests.flows.connections.test_connect_support import (
    OWNER,
    CallbackServer,
    app_block,
    callback,
    consent_and_call_back,
    start_paused,
)

__all__ = ["app_block", "callback"]

ADMIN = "admin@acme.example"


def _audit(db_session_for: Callable[[], Session], business_id: object) -> list[AuditLog]:
    with db_session_for() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.business_id == business_id)))


def test_connect_accepts_the_admin_typed_in_capitals(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    db_session_for: Callable[[], Session],
) -> None:
    with db_session_for() as s:
        business = make_business(s, slug="acme")
        admin = make_user(s, email=ADMIN)
        make_membership(s, user=admin, business=business, role=Role.ADMIN)
        business_id, admin_id = business.id, admin.id
    run, _ = start_paused("connect", app_block, "acme", "ADMIN@acme.example")
    consent_and_call_back(
        callback,
        "acme",
        sandbox.tenant_id(BRIGHT_SMILE),
        **OWNER,
    )
    final = run.join(timeout=120)

    assert final.is_completed(), final.message
    with db_session_for() as s:
        connection = s.exec(select(Connection).where(Connection.business_id == business_id)).one()
    assert connection.status == ConnectionStatus.CONNECTED
    audit = {a.action: a for a in _audit(db_session_for, business_id)}
    assert audit["connect"].allowed is True
    assert audit["connect"].actor_user_id == admin_id
    assert audit["connect.completed"].actor_user_id == admin_id


def test_reconnect_accepts_the_admin_typed_with_a_leading_space(
    app_block: str,
    callback: CallbackServer,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    connected = connect_business(BRIGHT_SMILE)
    with db_session_for() as s:
        admin = s.get(User, connected.admin_user_id)
        assert admin is not None
        admin.email = ADMIN
        s.add(admin)
    run, _ = start_paused("reconnect", app_block, connected.slug, " admin@acme.example")
    consent_and_call_back(
        callback,
        connected.slug,
        connected.tenant_id,
    )
    final = run.join(timeout=120)

    assert final.is_completed(), final.message
    audit = {a.action: a for a in _audit(db_session_for, connected.business_id)}
    assert audit["reconnect"].actor_user_id == connected.admin_user_id
    assert audit["reconnect.completed"].actor_user_id == connected.admin_user_id


def test_reconnect_refuses_an_unknown_actor_and_audits_it_as_given(
    app_block: str,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    connected = connect_business(BRIGHT_SMILE)
    final = reconnect_to_nomi(
        ReconnectParams(
            business=connected.slug, acting_user="Intruder@Example.com ", app_block=app_block
        ),
        return_state=True,
    )

    assert final.is_failed()
    assert "Intruder@Example.com" in (final.message or "")
    [refusal] = _audit(db_session_for, connected.business_id)
    assert (refusal.action, refusal.allowed, refusal.actor_user_id) == ("reconnect", False, None)
    assert refusal.detail["email"] == "Intruder@Example.com "
    assert "no such user" in refusal.detail["reason"]
