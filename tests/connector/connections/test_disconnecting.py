"""Disconnecting without Nomi: who may, the rows it leaves, and what may not undo it."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.connections.checks import CheckOutcome, CheckResult, record_check
from connector.connections.consent import mark_connection_expired
from connector.connections.disconnect import (
    REVOKE_PENDING,
    DisconnectRefusedError,
    RevokeOutcome,
    authorise_disconnect,
    record_disconnect,
    revoke_pending,
)
from connector.rules.vocabulary import ConnectionStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Connection, ConnectionSettings
from tests.connector.factories import make_business, make_connection, make_membership, make_user


def _audit(db: Session) -> list[tuple[str, bool]]:
    return [(a.action, a.allowed) for a in db.exec(select(AuditLog).order_by(AuditLog.at))]  # type: ignore[arg-type]


def _status(db: Session, connection: Connection) -> str:
    db.expire_all()
    fresh = db.get(Connection, connection.id)
    assert fresh is not None
    return fresh.status


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ACCOUNTANT])
def test_an_admin_or_accountant_disconnects_and_the_connection_is_marked_at_once(
    db: Session, role: str
) -> None:
    business = make_business(db)
    user = make_user(db, email="books@ledger.example")
    make_membership(db, user=user, business=business, role=role)
    connection = make_connection(db, business=business)
    db.commit()

    request = authorise_disconnect(
        db, business_slug=business.slug, acting_email="  Books@Ledger.EXAMPLE "
    )
    db.commit()

    assert request.previous_status == ConnectionStatus.CONNECTED
    assert request.credentials_block_name == connection.credentials_block_name
    assert request.user_id == user.id
    assert _status(db, connection) == ConnectionStatus.DISCONNECTED
    assert _audit(db) == [("disconnect", True)]


def test_record_disconnect_forgets_the_block_and_says_when_the_revoke_is_owed(
    db: Session,
) -> None:
    business = make_business(db)
    admin = make_user(db)
    make_membership(db, user=admin, business=business)
    connection = make_connection(db, business=business)
    db.commit()
    request = authorise_disconnect(db, business_slug=business.slug, acting_email=admin.email)

    owed = record_disconnect(
        db, request=request, outcome=RevokeOutcome.PENDING, detail="NetworkError: unreachable"
    )
    db.commit()

    assert owed.status == ConnectionStatus.DISCONNECTED
    assert owed.credentials_block_name is None
    assert (owed.last_error or "").startswith(REVOKE_PENDING)
    assert "NetworkError" in (owed.last_error or "")
    assert revoke_pending(owed)
    settings = db.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == connection.id)
    ).one()
    assert settings is not None  # kept

    again = authorise_disconnect(db, business_slug=business.slug, acting_email=admin.email)
    assert again.previous_status == ConnectionStatus.DISCONNECTED
    done = record_disconnect(db, request=again, outcome=RevokeOutcome.REVOKED)
    db.commit()
    assert done.last_error is None
    assert not revoke_pending(done)
    completed = [
        a.detail["revoke"]
        for a in db.exec(select(AuditLog).where(AuditLog.action == "disconnect.completed"))
    ]
    assert sorted(completed) == ["pending", "revoked"]


def test_a_standard_member_an_unknown_user_and_a_never_connected_business_are_refused(
    db: Session,
) -> None:
    business = make_business(db)
    clerk = make_user(db)
    make_membership(db, user=clerk, business=business, role=Role.STANDARD)
    connection = make_connection(db, business=business)
    lonely = make_business(db)
    admin = make_user(db)
    make_membership(db, user=admin, business=lonely)
    db.commit()

    with pytest.raises(PermissionDeniedError, match="'standard'"):
        authorise_disconnect(db, business_slug=business.slug, acting_email=clerk.email)
    with pytest.raises(PermissionDeniedError, match="no such user"):
        authorise_disconnect(db, business_slug=business.slug, acting_email="who@example.test")
    with pytest.raises(DisconnectRefusedError, match="never connected"):
        authorise_disconnect(db, business_slug=lonely.slug, acting_email=admin.email)
    db.commit()
    with pytest.raises(LookupError):
        authorise_disconnect(db, business_slug="no-such-business", acting_email=admin.email)

    assert _status(db, connection) == ConnectionStatus.CONNECTED
    assert _audit(db) == [
        ("disconnect", False),
        ("disconnect", False),
        ("disconnect", True),
        ("disconnect.refused", False),
    ]


def test_a_late_lost_connection_or_check_does_not_turn_disconnected_into_expired(
    db: Session,
) -> None:
    """A publish batch or a check still running when the disconnect revoked the tokens sees Nomi
    refuse them: the business stays disconnected (ops chose it), no reconnect is asked for."""
    business = make_business(db)
    connection = make_connection(db, business=business, status=ConnectionStatus.DISCONNECTED)
    db.commit()

    mark_connection_expired(db, business.id, "Nomi refused the refresh: invalid_grant")
    db.commit()
    assert _status(db, connection) == ConnectionStatus.DISCONNECTED

    refused = CheckResult(outcome=CheckOutcome.EXPIRED, problems=["Nomi refused the connection"])
    assert record_check(db, connection.id, refused) is False
    db.commit()
    assert _status(db, connection) == ConnectionStatus.DISCONNECTED
