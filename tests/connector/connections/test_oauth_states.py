"""OAuth states: hashed at rest, accepted once, refused when forged, replayed, stale or closed."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.connections.oauth_states import (
    OAuthPurpose,
    OAuthState,
    RefusalReason,
    StateOutcome,
    StateRefusedError,
    check_state,
    close_state,
    consume_state,
    hash_state,
    new_state,
    open_state,
    release_state,
)
from tests.connector.factories import make_business

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _open(db: Session, state: str, *, ttl: timedelta = timedelta(minutes=15)) -> OAuthState:
    business = make_business(db)
    row = open_state(
        db,
        state_hash=hash_state(state),
        flow_run_id=uuid.uuid4(),
        business_id=business.id,
        purpose=OAuthPurpose.CONNECT,
        ttl=ttl,
        now=NOW,
    )
    db.commit()
    return row


def test_new_states_are_long_random_and_distinct() -> None:
    states = {new_state() for _ in range(200)}
    assert len(states) == 200
    assert all(len(s) >= 43 for s in states)  # 32 bytes, base64url


def test_only_the_hash_of_a_state_is_stored(db: Session, engine: Engine) -> None:
    state = new_state()
    _open(db, state)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM oauth_states")).all()
    assert len(rows) == 1
    assert all(state not in str(value) for value in rows[0])
    assert rows[0].state_hash == hash_state(state)


def test_a_fresh_state_is_accepted_once_and_marked_used(db: Session) -> None:
    state = new_state()
    opened = _open(db, state)
    row = consume_state(db, state, now=NOW + timedelta(minutes=1))
    db.commit()
    assert row.id == opened.id
    assert row.used_at == NOW + timedelta(minutes=1)
    with pytest.raises(StateRefusedError) as replay:
        consume_state(db, state, now=NOW + timedelta(minutes=2))
    assert replay.value.reason == RefusalReason.USED


def test_an_unknown_state_is_refused_as_forged(db: Session) -> None:
    _open(db, new_state())
    with pytest.raises(StateRefusedError) as refused:
        consume_state(db, "forged-" + new_state(), now=NOW)
    assert refused.value.reason == RefusalReason.UNKNOWN
    assert "unknown" in str(refused.value)


def test_a_state_past_its_expiry_is_refused_and_stays_unused(db: Session) -> None:
    state = new_state()
    _open(db, state, ttl=timedelta(seconds=30))
    with pytest.raises(StateRefusedError) as refused:
        consume_state(db, state, now=NOW + timedelta(seconds=30))
    assert refused.value.reason == RefusalReason.EXPIRED
    db.rollback()
    assert db.exec(select(OAuthState)).one().used_at is None


def test_a_timed_out_run_expires_its_state_at_once_and_says_expired(db: Session) -> None:
    state = new_state()
    row = _open(db, state)
    closed = close_state(db, row.id, outcome=StateOutcome.TIMED_OUT, now=NOW + timedelta(minutes=2))
    db.commit()
    assert closed.outcome == StateOutcome.TIMED_OUT
    assert closed.expires_at == NOW + timedelta(minutes=2)
    for now in (NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)):  # clock skew too
        with pytest.raises(StateRefusedError) as refused:
            consume_state(db, state, now=now)
        assert refused.value.reason == RefusalReason.EXPIRED
        assert "expired" in str(refused.value)


def test_checking_a_state_marks_nothing(db: Session) -> None:
    state = new_state()
    opened = _open(db, state)
    assert check_state(db, state, now=NOW + timedelta(minutes=1)).id == opened.id
    db.commit()
    assert db.exec(select(OAuthState)).one().used_at is None


def test_a_released_state_can_be_used_again_but_not_once_its_run_closed_it(db: Session) -> None:
    state = new_state()
    _open(db, state)
    claimed = consume_state(db, state, now=NOW + timedelta(minutes=1))
    assert claimed.used_at is not None
    assert release_state(db, claimed.id, used_at=claimed.used_at)
    db.commit()
    again = consume_state(db, state, now=NOW + timedelta(minutes=2))
    db.commit()
    assert again.used_at == NOW + timedelta(minutes=2)
    # Only the claim it made is given back: an older claim's time releases nothing.
    assert not release_state(db, again.id, used_at=NOW + timedelta(minutes=1))
    close_state(db, again.id, outcome=StateOutcome.CONNECTED)
    assert again.used_at is not None
    assert not release_state(db, again.id, used_at=again.used_at)
    db.commit()
    db.expire_all()
    assert db.exec(select(OAuthState)).one().used_at == NOW + timedelta(minutes=2)


def test_closing_keeps_the_first_outcome_and_marks_the_state_used(db: Session) -> None:
    state = new_state()
    row = _open(db, state)
    close_state(db, row.id, outcome=StateOutcome.DENIED, now=NOW)
    closed = close_state(db, row.id, outcome=StateOutcome.FAILED, now=NOW + timedelta(seconds=1))
    db.commit()
    assert closed.outcome == StateOutcome.DENIED
    assert closed.used_at == NOW


def test_closing_an_unknown_state_names_it(db: Session) -> None:
    missing = uuid.uuid4()
    with pytest.raises(LookupError, match=str(missing)):
        close_state(db, missing, outcome=StateOutcome.FAILED)


def test_two_callbacks_racing_on_one_state_let_exactly_one_through(engine: Engine) -> None:
    state = new_state()
    with Session(engine, expire_on_commit=False) as db:
        _open(db, state)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def callback() -> None:
        barrier.wait()
        with Session(engine) as db:
            try:
                consume_state(db, state, now=NOW + timedelta(seconds=5))
                db.commit()
                results.append("accepted")
            except StateRefusedError:
                db.rollback()
                results.append("refused")
            except sa.exc.OperationalError:  # SQLite: a writer lost the lock race
                db.rollback()
                results.append("refused")

    threads = [threading.Thread(target=callback) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["accepted", "refused", "refused", "refused"]
