"""The outbox: atomic claims across processes, guarded finishes, stale-claim recovery."""

from __future__ import annotations

import hashlib
import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.publishing.moves import Move
from connector.publishing.outbox import (
    ClaimLostError,
    claim_ready,
    finish,
    idempotency_key,
    recover_stale_claims,
    release_claim,
    stale_claims,
)
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Item
from tests.connector import claim_worker
from tests.connector.factories import make_business, make_connection, make_item


def test_idempotency_key_is_sha256_of_item_generation_and_step() -> None:
    item_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    expected = hashlib.sha256(f"{item_id}:2:expense".encode()).hexdigest()
    assert idempotency_key(item_id, 2, "expense") == expected
    assert idempotency_key(item_id, 3, "expense") != expected
    assert idempotency_key(item_id, 2, "attachment") != expected


def test_claim_takes_only_ready_items_of_the_business_oldest_first(db: Session) -> None:
    business, other = make_business(db), make_business(db)
    connection = make_connection(db, business=business)
    now = datetime.now(UTC)
    newer = make_item(db, business=business, ready_at=now)
    older = make_item(db, business=business, ready_at=now - timedelta(hours=1))
    make_item(db, business=business, status=ItemStatus.REVIEW)
    make_item(db, business=business, status=ItemStatus.PUBLISHED)
    foreign = make_item(db, business=other)
    db.commit()
    run_id = uuid.uuid4()

    claimed = claim_ready(db, connection_id=connection.id, run_id=run_id, limit=10)

    assert [i.id for i in claimed] == [older.id, newer.id]
    assert all(i.status == ItemStatus.PUBLISHING and i.claimed_by_run == run_id for i in claimed)
    assert all(i.claimed_at is not None for i in claimed)
    assert claim_ready(db, business_id=business.id, run_id=uuid.uuid4(), limit=10) == []
    db.refresh(foreign)
    assert foreign.status == ItemStatus.READY


def test_claim_respects_limit_selection_and_kinds(db: Session) -> None:
    business = make_business(db)
    items = [make_item(db, business=business) for _ in range(5)]
    sales = make_item(db, business=business, kind=ItemKind.SALES)
    db.commit()

    first = claim_ready(db, business_id=business.id, run_id=uuid.uuid4(), limit=2)
    picked = claim_ready(
        db, business_id=business.id, run_id=uuid.uuid4(), limit=10, item_ids=[items[4].id]
    )
    only_sales = claim_ready(
        db, business_id=business.id, run_id=uuid.uuid4(), limit=10, kinds=[ItemKind.SALES]
    )

    assert len(first) == 2
    assert [i.id for i in picked] == [items[4].id]
    assert [i.id for i in only_sales] == [sales.id]
    with pytest.raises(ValueError, match="limit"):
        claim_ready(db, business_id=business.id, run_id=uuid.uuid4(), limit=0)


def test_two_processes_claiming_at_once_never_claim_the_same_item(
    engine: Engine, database_url: str
) -> None:
    with Session(engine) as db:
        business = make_business(db)
        for _ in range(120):
            make_item(db, business=business)
        db.commit()
        business_id = str(business.id)
        expected = {str(i.id) for i in db.exec(select(Item))}

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(
            target=claim_worker.claim_until_empty, args=(database_url, business_id, start, out, 7)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    (run_a, claimed_a), (run_b, claimed_b) = results
    assert run_a != run_b
    assert len(claimed_a) == len(set(claimed_a))
    assert set(claimed_a).isdisjoint(claimed_b)
    assert set(claimed_a) | set(claimed_b) == expected
    with Session(engine) as db:
        rows = db.exec(select(Item)).all()
        by_run = {str(r.id): str(r.claimed_by_run) for r in rows}
    assert all(by_run[i] == run_a for i in claimed_a)
    assert all(by_run[i] == run_b for i in claimed_b)


def test_only_the_claiming_run_can_publish_and_the_item_keeps_the_record(db: Session) -> None:
    business = make_business(db)
    item = make_item(db, business=business)
    db.commit()
    run_id = uuid.uuid4()
    claim_ready(db, business_id=business.id, run_id=run_id, limit=1)

    with pytest.raises(ClaimLostError, match=str(item.id)):
        finish(
            db,
            Move.published(
                item.id, uuid.uuid4(), nomi_record_id="exp-1", nomi_record_type="expense"
            ),
        )
    finish(db, Move.progressed(item.id, run_id, nomi_record_id="exp-1", nomi_record_type="expense"))
    done = finish(
        db,
        Move.published(
            item.id,
            run_id,
            nomi_record_id="exp-1",
            nomi_record_type="expense",
            image_published=True,
        ),
    )

    assert done.status == ItemStatus.PUBLISHED
    assert done.nomi_record_id == "exp-1"
    assert done.image_published is True
    assert done.claimed_by_run is None
    assert done.published_at is not None
    with pytest.raises(ClaimLostError):
        finish(db, Move.failed(item.id, run_id, error_code="x", error_message="y", rejected=False))


def test_a_rejection_bumps_the_generation_and_a_transient_failure_does_not(db: Session) -> None:
    business = make_business(db)
    item = make_item(db, business=business, total=Decimal("10.00"))
    db.commit()
    run_id = uuid.uuid4()

    claim_ready(db, business_id=business.id, run_id=run_id, limit=1)
    after_transient = finish(
        db,
        Move.failed(
            item.id, run_id, error_code="server_error", error_message="503", rejected=False
        ),
    )
    assert after_transient.status == ItemStatus.READY
    assert after_transient.publish_generation == 1
    assert after_transient.last_error_code == "server_error"

    claim_ready(db, business_id=business.id, run_id=run_id, limit=1)
    after_rejection = finish(
        db,
        Move.failed(
            item.id,
            run_id,
            error_code="tax_rate_archived",
            error_message="Tax rate is archived",
            rejected=True,
        ),
    )
    assert after_rejection.publish_generation == 2
    assert after_rejection.last_error_message == "Tax rate is archived"


def test_release_back_to_review_keeps_the_reason(db: Session) -> None:
    business = make_business(db)
    item = make_item(db, business=business)
    db.commit()
    run_id = uuid.uuid4()
    claim_ready(db, business_id=business.id, run_id=run_id, limit=1)

    released = release_claim(
        db, item.id, run_id, to_status=ItemStatus.REVIEW, review_reasons=["new supplier"]
    )

    assert released.status == ItemStatus.REVIEW
    assert released.review_reasons == ["new supplier"]
    assert released.claimed_by_run is None
    with pytest.raises(ValueError, match="ready"):
        release_claim(db, item.id, run_id, to_status=ItemStatus.PUBLISHED)


def test_stale_claims_of_a_dead_run_are_recovered_with_the_same_generation(db: Session) -> None:
    business = make_business(db)
    old, fresh = make_item(db, business=business), make_item(db, business=business)
    db.commit()
    dead_run, live_run = uuid.uuid4(), uuid.uuid4()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    claim_ready(
        db, business_id=business.id, run_id=dead_run, limit=1, item_ids=[old.id], now=an_hour_ago
    )
    claim_ready(db, business_id=business.id, run_id=live_run, limit=1, item_ids=[fresh.id])

    stale = stale_claims(db, older_than=timedelta(minutes=15))
    assert [i.id for i in stale] == [old.id]

    recovered = recover_stale_claims(db, older_than=timedelta(minutes=15))
    assert [i.id for i in recovered] == [old.id]
    assert recovered[0].status == ItemStatus.READY
    assert recovered[0].publish_generation == 1
    assert recovered[0].claimed_by_run is None
    with pytest.raises(ClaimLostError):
        finish(db, Move.published(old.id, dead_run, nomi_record_id="e", nomi_record_type="expense"))
    reclaimed = claim_ready(db, business_id=business.id, run_id=uuid.uuid4(), limit=5)
    assert [i.id for i in reclaimed] == [old.id]
    db.refresh(fresh)
    assert fresh.claimed_by_run == live_run
