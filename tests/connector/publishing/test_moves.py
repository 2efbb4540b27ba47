"""Moves applied in groups (``moves.apply_moves``) and written by the group-commit writer."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.history import records as history
from connector.publishing import moves, outbox
from connector.publishing.run import Finish, write_finishes
from connector.rules.vocabulary import ItemStatus
from connector.store.group_commit import GroupCommit
from connector.store.history_tables import PublishAttempt
from connector.store.models import Item
from tests.connector.factories import make_business, make_item


def _claimed(db: Session, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    business = make_business(db)
    for _ in range(n):
        make_item(db, business=business)
    db.commit()
    run_id = uuid.uuid4()
    items = outbox.claim_ready(db, run_id=run_id, limit=n, business_id=business.id)
    return run_id, [i.id for i in items]


def _attempt(run_id: uuid.UUID, item_id: uuid.UUID, business_id: uuid.UUID) -> dict[str, object]:
    return {
        "run_id": run_id,
        "item_id": item_id,
        "business_id": business_id,
        "step": "expense",
        "idempotency_key": "k" * 64,
        "outcome": "published",
    }


def test_moves_apply_in_one_transaction_and_a_lost_claim_writes_nothing(
    engine: Engine, db: Session
) -> None:
    run_id, ids = _claimed(db, 4)
    published, failed, released, lost = ids
    outbox.release_claim(db, lost, run_id)  # another run took it back meanwhile

    db.commit()
    db.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    applied = moves.apply_moves(
        db,
        [
            moves.Move.published(
                published,
                run_id,
                nomi_record_id="exp-1",
                nomi_record_type="expense",
                progress={"resolved_contact_nomi_id": "sup-1"},
            ),
            moves.Move.failed(
                failed, run_id, error_code="tax_rate_archived", error_message="no", rejected=True
            ),
            moves.Move.released(released, run_id, error_code="transient", error_message="503"),
            moves.Move.published(lost, run_id, nomi_record_id="x", nomi_record_type="expense"),
        ],
    )
    db.commit()

    assert applied == [True, True, True, False]
    with Session(engine) as s:
        items = {i: s.get_one(Item, i) for i in ids}
    assert items[published].status == ItemStatus.PUBLISHED
    assert items[published].nomi_record_id == "exp-1"
    assert items[published].resolved_contact_nomi_id == "sup-1"
    assert items[published].claimed_by_run is None
    assert items[failed].status == ItemStatus.READY
    assert items[failed].publish_generation == 2
    assert items[failed].last_error_code == "tax_rate_archived"
    assert items[released].status == ItemStatus.READY
    assert items[released].publish_generation == 1
    assert items[lost].status == ItemStatus.READY
    assert items[lost].nomi_record_id is None


def test_the_group_writer_commits_moves_and_every_attempt_row_numbered_per_item(
    engine: Engine, db: Session
) -> None:
    run_id, ids = _claimed(db, 3)
    business_id = db.get_one(Item, ids[0]).business_id
    history.record_attempts(db, [_attempt(run_id, ids[0], business_id)])  # an earlier attempt
    db.commit()
    outbox.release_claim(db, ids[2], run_id)  # lost

    with GroupCommit(engine, apply=write_finishes) as writer:
        results = [
            writer.run(
                Finish(
                    moves.Move.published(i, run_id, nomi_record_id=f"r-{n}", nomi_record_type="e"),
                    [_attempt(run_id, i, business_id), _attempt(run_id, i, business_id)],
                )
            )
            for n, i in enumerate(ids)
        ]

    assert results == [True, True, False]
    with Session(engine) as s:
        rows = s.exec(select(PublishAttempt.item_id, PublishAttempt.attempt_no)).all()
        statuses = [s.get_one(Item, i).status for i in ids]
    numbers = {i: sorted(n for item_id, n in rows if item_id == i) for i in ids}
    assert numbers == {ids[0]: [1, 2, 3], ids[1]: [1, 2], ids[2]: [1, 2]}
    assert statuses == [ItemStatus.PUBLISHED, ItemStatus.PUBLISHED, ItemStatus.READY]
