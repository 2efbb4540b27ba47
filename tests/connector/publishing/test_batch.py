"""A batch against the sandbox: retries, a lost connection, rejected tokens, expiry marked."""

from __future__ import annotations

from sqlmodel import select

from connector.publishing.outcomes import STOP_CONNECTION_LOST
from connector.rules.vocabulary import ConnectionStatus, ErrorCode, ItemKind, ItemStatus
from connector.store.history_tables import PublishAttempt
from connector.store.models import Connection
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.publishing.test_publishing_world import (
    World,
    duplicates,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_transient_errors_are_retried_by_the_client_and_publish_once(world: World) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(3)]
    world.ready()
    world.fault(
        "server_error", method="POST", path="/api/v1/expenses", count=1, params={"status": 503}
    )
    world.fault("rate_limit_concurrent", method="POST", path="/api/v1/expenses", count=1)

    result = world.publish(workers=1)

    assert result.count("published") == 3
    assert all(world.item(i).status == ItemStatus.PUBLISHED for i in ids)
    assert len(world.records("expense")) == 3
    assert duplicates(world.sandbox)["expenses"] == {}


def test_connection_lost_mid_batch_gives_every_item_back_ready(world: World) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(4)]
    world.ready()
    world.fault("consent_expired", count=None)

    result = world.publish(workers=1)

    assert result.stopped == STOP_CONNECTION_LOST
    for item_id in ids:
        item = world.item(item_id)
        assert item.status == ItemStatus.READY
        assert item.last_error_code == ErrorCode.CONNECTION_EXPIRED
        assert item.claimed_by_run is None
    assert world.records("expense") == []
    with world.session() as s:
        from connector.connections.consent import mark_connection_expired

        mark_connection_expired(s, world.business_id, "consent expired")
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED


def test_a_token_rejected_twice_mid_batch_is_refreshed_and_published_not_expired(
    world: World,
) -> None:
    ids = [world.add(ItemKind.COST) for _ in range(3)]
    world.ready()
    # Two rejections of fresh tokens in a row (a token expiring in flight on a busy machine):
    # not Nomi's word that the connection is gone.
    world.fault("token_rejected", method="POST", path="/api/v1/expenses", count=2)

    result = world.publish(workers=1)

    assert result.stopped is None, result.stop_message
    assert result.count("published") == 3
    assert all(world.item(i).status == ItemStatus.PUBLISHED for i in ids)
    assert len(world.records("expense")) == 3
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.CONNECTED


def test_a_token_rejected_after_every_fresh_refresh_is_transient_and_published_later(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("token_rejected", method="POST", path="/api/v1/expenses", count=None)

    result = world.publish(workers=1)

    assert result.stopped != STOP_CONNECTION_LOST
    item = world.item(item_id)
    assert item.status == ItemStatus.READY
    assert item.last_error_code == ErrorCode.TRANSIENT
    with world.session() as s:
        attempts = s.exec(select(PublishAttempt).where(PublishAttempt.item_id == item_id)).all()
        connection = s.get(Connection, world.connection_id)
    assert [a.error_code for a in attempts] == [ErrorCode.TRANSIENT]
    assert connection is not None
    assert connection.status == ConnectionStatus.CONNECTED
    assert world.records("expense") == []

    world.sandbox.clear_faults()
    again = world.publish(workers=1)

    assert again.count("published") == 1
    assert world.item(item_id).status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1


def test_marking_the_connection_expired_waits_for_a_write_committed_meanwhile(
    world: World,
) -> None:
    """Publishing's other writers commit all the time. Marking the connection expired takes its
    turn (busy timeout) instead of failing at once ("database is locked") because it read the
    connection first and another connection committed before its write."""
    from connector.connections.consent import mark_connection_expired

    with commit_elsewhere_before_first_write(world.engine) as errors, world.session() as s:
        mark_connection_expired(s, world.business_id, "consent expired")
        s.commit()
    assert errors == []
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED
        assert connection.last_error == "consent expired"


def test_marking_the_connection_expired_cuts_a_long_reason_for_ops(world: World) -> None:
    from connector.connections.consent import mark_connection_expired

    reason = "Nomi refused the connection: " + "x" * 600
    with world.session() as s:
        mark_connection_expired(s, world.business_id, reason)
        s.commit()
    with world.session() as s:
        connection = s.get(Connection, world.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.EXPIRED
        assert connection.last_error == reason[:500]
