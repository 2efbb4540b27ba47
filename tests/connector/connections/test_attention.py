"""What ops are told about items: held in review over a day per business, rejected ones named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from connector.connections.attention import external_ids, held_in_review
from connector.rules.vocabulary import ItemStatus
from tests.connector.factories import make_business, make_item

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def test_items_in_review_over_a_day_are_counted_per_business_oldest_first(db: Session) -> None:
    first, second, quiet = make_business(db), make_business(db), make_business(db)
    ages = {"a-old": 50, "a-older": 80, "a-young": 2}
    for external_id, hours in ages.items():
        make_item(
            db,
            business=first,
            status=ItemStatus.REVIEW,
            external_id=external_id,
            review_reasons=["no category"],
            created_at=NOW - timedelta(hours=hours),
        )
    make_item(
        db,
        business=second,
        status=ItemStatus.REVIEW,
        external_id="b-old",
        review_reasons=[],
        created_at=NOW - timedelta(hours=25),
    )
    make_item(
        db,
        business=quiet,
        status=ItemStatus.READY,
        external_id="c-ready",
        created_at=NOW - timedelta(days=9),
    )
    db.commit()

    found = held_in_review(db, now=NOW)

    assert set(found) == {first.id, second.id}
    held = found[first.id]
    assert held.count == 2
    assert [i.external_id for i in held.items] == ["a-older", "a-old"]
    assert held.items[0].reason == "no category"
    assert held.oldest == NOW - timedelta(hours=80)
    assert found[second.id].items[0].reason == "in review"


def test_the_count_covers_every_held_item_and_only_the_first_are_named(db: Session) -> None:
    business, other = make_business(db), make_business(db)
    for n in range(5):
        make_item(
            db,
            business=business,
            status=ItemStatus.REVIEW,
            external_id=f"h-{n}",
            created_at=NOW - timedelta(days=3, minutes=n),
        )
    make_item(db, business=other, status=ItemStatus.REVIEW, created_at=NOW - timedelta(days=3))
    db.commit()

    found = held_in_review(db, business_ids=[business.id], now=NOW, named=2)

    assert list(found) == [business.id]
    assert found[business.id].count == 5
    assert [i.external_id for i in found[business.id].items] == ["h-4", "h-3"]


def test_external_ids_name_the_items_that_exist(db: Session) -> None:
    business = make_business(db)
    items = [make_item(db, business=business) for _ in range(3)]
    db.commit()

    names = external_ids(db, [i.id for i in items] + [uuid.uuid4()])

    assert names == {i.id: i.external_id for i in items}
