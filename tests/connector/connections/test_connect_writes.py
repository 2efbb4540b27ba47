"""The connect tasks write in write transactions, and refusals are still audited from inside one.

Publishing commits all the time. On SQLite a transaction that read and then writes cannot become a
writer once another connection has committed in between: it fails at once ("database is
locked"), with no busy wait. A reconnect recorded while other businesses publish must wait its
turn instead. (Runs on PostgreSQL too, where the other write never makes it fail.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prefect.logging import disable_run_logger
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.connections.consent import ConnectRefusedError, ConsentRequest
from connector.connections.oauth_states import OAuthPurpose
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Connection
from nomi.models import Organisation
from tasks.connect import check_request, record_connected
from tasks.runtime import engine_for
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.factories import make_business, make_connection, make_membership, make_user


def test_a_reconnect_is_recorded_while_another_connection_commits(
    engine: Engine, database_url: str
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        user = make_user(s)
        connection = make_connection(s, business=business, status=ConnectionStatus.EXPIRED)
        s.commit()
    request = ConsentRequest(
        business_id=business.id,
        business_slug=business.slug,
        user_id=user.id,
        tenant_id=connection.nomi_tenant_id,
        organisation_name=connection.organisation_name,
    )
    organisation = Organisation(tenant_id=connection.nomi_tenant_id, tenant_name="Bright Smile")

    with commit_elsewhere_before_first_write(engine_for(database_url)) as errors:
        connection_id = record_connected.fn(
            database_url,
            request,
            purpose=OAuthPurpose.RECONNECT,
            organisation=organisation,
            scopes=["offline_access"],
            block_name=f"nomi-credentials-{uuid.uuid4().hex[:6]}",
            consent_expires_at=datetime.now(UTC) + timedelta(days=365),
        )

    assert errors == []
    with Session(engine) as s:
        stored = s.get(Connection, connection_id)
        assert stored is not None
        assert stored.status == ConnectionStatus.CONNECTED


def test_an_allowed_request_is_audited_while_another_connection_commits(
    engine: Engine, database_url: str
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        admin = make_user(s)
        make_membership(s, user=admin, business=business, role=Role.ADMIN)
        s.commit()

    with (
        disable_run_logger(),
        commit_elsewhere_before_first_write(engine_for(database_url)) as errors,
    ):
        request = check_request.fn(database_url, business.slug, admin.email, OAuthPurpose.CONNECT)

    assert errors == []
    assert request.business_id == business.id
    with Session(engine) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.business_id == business.id)).all()
    assert [(row.action, row.allowed) for row in audit] == [("connect", True)]


@pytest.mark.parametrize("who", ["standard member", "unknown user", "connected already"])
def test_a_refusal_is_audited_from_inside_the_write_transaction(
    engine: Engine, database_url: str, who: str
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        business = make_business(s)
        user = make_user(s)
        role = Role.STANDARD if who == "standard member" else Role.ADMIN
        make_membership(s, user=user, business=business, role=role)
        if who == "connected already":
            make_connection(s, business=business)
        s.commit()
    email = "stranger@example.test" if who == "unknown user" else user.email
    refusal = ConnectRefusedError if who == "connected already" else PermissionDeniedError

    with pytest.raises(refusal):
        check_request.fn(database_url, business.slug, email, OAuthPurpose.CONNECT)

    with Session(engine) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.business_id == business.id)).all()
    refused = [row for row in audit if not row.allowed]
    assert len(refused) == 1, [(row.action, row.allowed) for row in audit]
