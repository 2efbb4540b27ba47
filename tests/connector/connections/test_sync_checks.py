"""Connection checks and sync targets without Nomi: consent arithmetic, stored checks, statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from connector.connections.checks import CheckOutcome, CheckResult, check_connection, record_check
from connector.connections.targets import sync_targets
from connector.errors import NotConnectedError
from connector.rules.vocabulary import ConnectionStatus
from connector.store.history_tables import ConnectionCheck
from nomi.client import NomiClient
from nomi.retry import RetryPolicy
from nomi.tokens import StaticTokenProvider
from tests.connector.factories import make_business, make_connection

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _unreachable() -> NomiClient:
    """A client whose every call would fail: proves a check made no call."""
    return NomiClient("http://127.0.0.1:9", "tenant-x", StaticTokenProvider("t"))


def test_a_consent_past_its_end_is_expired_without_asking_nomi() -> None:
    with _unreachable() as client:
        result = check_connection(
            client,
            StaticTokenProvider("t"),
            granted_scopes=[],
            consent_expires_at=NOW - timedelta(minutes=1),
            now=NOW,
        )
    assert result.outcome == CheckOutcome.EXPIRED
    assert result.days_to_consent_expiry == -1
    assert "consent expired on 2026-06-01" in result.detail
    assert result.token_ok is None


def test_nomi_unreachable_is_a_failed_check_not_an_exception() -> None:
    with NomiClient(
        "http://127.0.0.1:9",
        "tenant-x",
        StaticTokenProvider("t"),
        retry=RetryPolicy(max_attempts=1),
    ) as client:
        result = check_connection(
            client,
            StaticTokenProvider("t"),
            granted_scopes=["contacts.read"],
            consent_expires_at=NOW + timedelta(days=100),
            now=NOW,
        )
    assert result.outcome == CheckOutcome.FAILED
    assert result.scopes_ok is False
    assert "scopes not granted" in result.detail
    assert "NetworkError" in result.detail


def test_record_check_marks_expired_then_connected_again(db: Session) -> None:
    business = make_business(db)
    connection = make_connection(db, business=business)
    db.commit()

    expired = CheckResult(outcome=CheckOutcome.EXPIRED, problems=["Nomi refused the connection"])
    assert record_check(db, connection.id, expired) is True
    db.commit()
    assert connection.status == ConnectionStatus.EXPIRED
    assert connection.last_error == "Nomi refused the connection"
    assert record_check(db, connection.id, expired) is False

    healthy = CheckResult(outcome=CheckOutcome.VERIFIED, token_ok=True, days_to_consent_expiry=200)
    assert record_check(db, connection.id, healthy) is True
    db.commit()
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.last_error is None
    assert connection.last_verified_at == healthy.at
    checks = list(
        db.exec(select(ConnectionCheck).where(ConnectionCheck.connection_id == connection.id))
    )
    assert sorted(c.ok for c in checks) == [False, False, True]


def test_sync_targets_pick_connected_businesses_and_explain_a_refusal(db: Session) -> None:
    ok = make_business(db, slug="aa-connected")
    make_connection(db, business=ok)
    gone = make_business(db, slug="bb-expired")
    make_connection(db, business=gone, status=ConnectionStatus.EXPIRED)
    make_business(db, slug="cc-never")
    db.commit()

    assert [t.slug for t in sync_targets(db, None)] == ["aa-connected"]
    both = sync_targets(db, None, [ConnectionStatus.CONNECTED, ConnectionStatus.EXPIRED])
    assert [t.slug for t in both] == ["aa-connected", "bb-expired"]
    with pytest.raises(NotConnectedError, match=r"is expired.*reconnect-to-nomi"):
        sync_targets(db, "bb-expired")
    with pytest.raises(NotConnectedError, match="never connected"):
        sync_targets(db, "cc-never")
