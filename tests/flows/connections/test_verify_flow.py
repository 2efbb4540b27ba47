"""The verify-nomi-connection flow end to end: healthy, expiring and expired connections."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from sqlmodel import Session, select

from connector.rules.vocabulary import ConnectionStatus
from connector.store.history_tables import ConnectionCheck
from connector.store.models import Connection
from flows.verify_nomi_connection import VerifyParams, verify_nomi_connection
from sandbox.seed import BRIGHT_SMILE
from sandbox.testing import SandboxHandle
from tests.flows.conftest import ConnectedBusiness
from tests.flows.test_sync_flow import HARBOUR, events_for, use_db  # noqa: F401

NORTHWIND = "Northwind Joinery Ltd"


def test_verify_one_healthy_connection(
    use_db: str,  # noqa: F811
    nomi_app: str,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    business = connect_business(BRIGHT_SMILE)

    (check,) = verify_nomi_connection(VerifyParams(business=business.slug, app_block=nomi_app))

    assert check["outcome"] == "verified"
    assert (check["token_ok"], check["tenant_ok"], check["scopes_ok"], check["list_ok"]) == (
        True,
        True,
        True,
        True,
    )
    assert 360 <= check["days_to_consent_expiry"] <= 365
    with db_session_for() as s:
        rows = list(
            s.exec(
                select(ConnectionCheck).where(
                    ConnectionCheck.connection_id == business.connection_id
                )
            )
        )
        connection = s.get(Connection, business.connection_id)
    assert len(rows) == 1
    assert rows[0].ok
    assert connection is not None
    assert connection.last_verified_at is not None
    assert connection.status == ConnectionStatus.CONNECTED
    assert events_for(business.slug, "nomi.connection.verified")


def test_verify_all_flags_expiring_and_expired_connections(
    use_db: str,  # noqa: F811
    nomi_app: str,
    sandbox: SandboxHandle,
    connect_business: Callable[..., ConnectedBusiness],
    db_session_for: Callable[[], Session],
) -> None:
    healthy = connect_business(BRIGHT_SMILE)
    expiring = connect_business(HARBOUR)
    expired = connect_business(NORTHWIND)
    with db_session_for() as s:
        row = s.get(Connection, expiring.connection_id)
        assert row is not None
        row.consent_expires_at = datetime.now(UTC) + timedelta(days=10, hours=1)
        s.add(row)
    sandbox.fault("consent_expired", tenant_id=expired.tenant_id)

    checks = verify_nomi_connection(VerifyParams(app_block=nomi_app, expiry_warning_days=30))

    outcomes = {c["business"]: c for c in checks}
    assert outcomes[healthy.slug]["outcome"] == "verified"
    assert outcomes[expiring.slug]["outcome"] == "expiring"
    assert outcomes[expiring.slug]["days_to_consent_expiry"] == 10
    assert outcomes[expired.slug]["outcome"] == "expired"
    with db_session_for() as s:
        gone = s.get(Connection, expired.connection_id)
        soon = s.get(Connection, expiring.connection_id)
    assert gone is not None
    assert gone.status == ConnectionStatus.EXPIRED
    assert gone.last_error
    assert soon is not None
    assert soon.status == ConnectionStatus.CONNECTED
    assert events_for(expiring.slug, "nomi.connection.expiring")
    assert events_for(expired.slug, "nomi.connection.expired")
    with get_client(sync_client=True) as client:
        artifacts = client.read_latest_artifacts()
    summary = next(a for a in artifacts if a.key == "connection-checks")
    assert expired.slug in str(summary.data)
    assert "expiring" in str(summary.data)
