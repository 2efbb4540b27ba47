"""Before publishing (issue 21): possible duplicates, their release, archiving, the lock date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.access import PermissionDeniedError
from connector.admin.item_holds import HoldRefusedError, archive_item, release_duplicate
from connector.items.assess import reassess, reassess_after_organisation_change
from connector.items.context import build_context
from connector.publishing.queue import Selection, select_candidates
from connector.rules.vocabulary import ItemStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import DuplicateRelease, Item, Organisation
from tests.connector.conftest import statements_on
from tests.connector.factories import make_business, make_item, make_membership, make_user
from tests.connector.items.conftest import T0, T1, World, build_world, cost, stored

ADMIN = "owner@bright.example"
CLERK = "clerk@bright.example"
DAY = dt.date(2026, 3, 2)


def _world(db: Session) -> World:
    world = build_world(db)
    make_membership(db, user=make_user(db, email=ADMIN), business=world.business, role=Role.ADMIN)
    make_membership(
        db, user=make_user(db, email=CLERK), business=world.business, role=Role.STANDARD
    )
    db.commit()
    return world


def _acme(db: Session, world: World, external_id: str, **overrides: Any) -> Item:
    values: dict[str, Any] = {
        "external_id": external_id,
        "date": DAY,
        "total": Decimal("120.00"),
        "reference": f"ref-{external_id}",
        "created_at": T0,
    }
    return cost(db, world, **(values | overrides))


def _assess(db: Session, world: World) -> None:
    reassess(db, business_id=world.business.id, now=T1)
    db.commit()


def test_the_later_of_two_items_alike_in_supplier_date_and_total_is_held_naming_the_first(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    first = _acme(db, world, "a-1", created_at=T0, status=ItemStatus.PUBLISHED,
                  nomi_record_id="exp-77")  # fmt: skip
    later = _acme(db, world, "a-2", contact_name="ACME LIMITED", created_at=T1)
    other_day = _acme(db, world, "a-3", date=DAY + dt.timedelta(days=1), created_at=T1)
    db.commit()

    _assess(db, world)

    held = stored(engine, later.id)
    assert held.status == ItemStatus.REVIEW
    assert held.review_reasons == [
        "possible duplicate of a-1 (Nomi record exp-77): same supplier, date and total; an admin "
        "releases it if it is not a duplicate, or archives it"
    ]
    assert held.supplier_key == "acme"
    assert stored(engine, first.id).status == ItemStatus.PUBLISHED
    assert stored(engine, other_day.id).status == ItemStatus.READY


def test_the_same_supplier_and_reference_holds_the_later_item_whatever_its_total(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    first = _acme(db, world, "r-1", reference="INV-9", created_at=T0)
    later = _acme(db, world, "r-2", reference="INV-9", total=Decimal("99.00"), created_at=T1)
    db.commit()

    _assess(db, world)

    assert stored(engine, first.id).status == ItemStatus.READY
    held = stored(engine, later.id)
    assert held.status == ItemStatus.REVIEW
    assert held.review_reasons[0].startswith(
        "possible duplicate of r-1: same supplier and reference"
    )


def test_archived_items_other_kinds_and_other_businesses_are_never_duplicates(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    _acme(db, world, "x-1", created_at=T0, status=ItemStatus.ARCHIVED)
    elsewhere = make_business(db)
    make_item(db, business=elsewhere, contact_name="Acme Ltd", date=DAY,
              total=Decimal("120.00"), created_at=T0)  # fmt: skip
    credit = _acme(db, world, "x-2", created_at=T0, document_type="credit_note",
                   credits_external_id="x-3")  # fmt: skip
    kept = _acme(db, world, "x-3", created_at=T1)
    db.commit()

    _assess(db, world)

    assert stored(engine, kept.id).status == ItemStatus.READY
    assert not any("duplicate" in r for r in stored(engine, credit.id).review_reasons)


def test_a_batch_of_new_items_finds_duplicates_among_itself_and_only_the_later_is_held(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    items = [_acme(db, world, f"b-{n:03d}", created_at=T0 + dt.timedelta(seconds=n))
             for n in range(5)]  # fmt: skip
    db.commit()

    _assess(db, world)

    statuses = [stored(engine, item.id).status for item in items]
    assert statuses == [ItemStatus.READY] + [ItemStatus.REVIEW] * 4
    # the earliest look-alike is named first
    assert stored(engine, items[4].id).review_reasons[0].startswith("possible duplicate of b-000")


def test_an_admin_releases_a_held_duplicate_and_that_pair_is_never_held_again(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    _acme(db, world, "p-1", created_at=T0)
    later = _acme(db, world, "p-2", created_at=T1)
    db.commit()
    _assess(db, world)

    with pytest.raises(PermissionDeniedError):
        release_duplicate(db, business=world.business, external_id="p-2", actor_email=CLERK)
    result = release_duplicate(db, business=world.business, external_id="P-2", actor_email=ADMIN)
    db.commit()

    assert (result.status, result.others) == (ItemStatus.READY, ("p-1",))
    _assess(db, world)
    assert stored(engine, later.id).status == ItemStatus.READY
    release = db.exec(select(DuplicateRelease)).one()
    assert release.item_id == later.id
    audit = db.exec(select(AuditLog).where(AuditLog.action == "item.release")).all()
    assert sorted(a.allowed for a in audit) == [False, True]
    with pytest.raises(HoldRefusedError, match="not held as a possible duplicate"):
        release_duplicate(db, business=world.business, external_id="p-2", actor_email=ADMIN)
    db.rollback()

    # a third look-alike is a new pair: it is held for the first
    third = _acme(db, world, "p-3", created_at=T1 + dt.timedelta(hours=1))
    db.commit()
    _assess(db, world)
    assert stored(engine, third.id).review_reasons[0].startswith("possible duplicate of p-1")


def test_archiving_takes_an_item_out_of_publishing_and_frees_its_later_look_alike(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    first = _acme(db, world, "z-1", created_at=T0)
    later = _acme(db, world, "z-2", created_at=T1)
    published = _acme(db, world, "z-3", reference="other", date=DAY - dt.timedelta(days=9),
                      status=ItemStatus.PUBLISHED, nomi_record_id="exp-1")  # fmt: skip
    db.commit()
    _assess(db, world)

    with pytest.raises(PermissionDeniedError):
        archive_item(db, business=world.business, external_id="z-1", actor_email=CLERK)
    result = archive_item(db, business=world.business, external_id="z-1", actor_email=ADMIN)
    db.commit()

    assert (result.status, result.others) == (ItemStatus.ARCHIVED, ("z-2",))
    assert stored(engine, first.id).ready_at is None
    assert stored(engine, later.id).status == ItemStatus.READY
    ctx = build_context(db, world.business.id)
    chosen = select_candidates(db, world.business.id, ctx, Selection(auto=True), limit=100)
    assert first.id not in chosen
    with pytest.raises(HoldRefusedError, match="is published: void it in Nomi and archive it"):
        archive_item(db, business=world.business, external_id="z-3", actor_email=ADMIN)
    db.rollback()
    assert stored(engine, published.id).status == ItemStatus.PUBLISHED
    with pytest.raises(HoldRefusedError, match="archived already"):
        archive_item(db, business=world.business, external_id="z-1", actor_email=ADMIN)
    db.rollback()
    _assess(db, world)
    assert stored(engine, first.id).status == ItemStatus.ARCHIVED


def _lock(db: Session, world: World, lock: dt.date | None) -> None:
    org = db.exec(select(Organisation).where(Organisation.connection_id == world.connection.id))
    row = org.first() or Organisation(
        connection_id=world.connection.id, nomi_id="org-1", name="Acme", base_currency="GBP"
    )
    row.lock_date = lock
    db.add(row)
    db.commit()


def test_items_dated_on_or_before_the_lock_date_are_held_and_freed_when_it_moves(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    on = _acme(db, world, "l-1", date=dt.date(2026, 3, 31))
    before = _acme(db, world, "l-2", date=dt.date(2026, 2, 1), total=Decimal("1"))
    after = _acme(db, world, "l-3", date=dt.date(2026, 4, 1), total=Decimal("2"))
    db.commit()
    _lock(db, world, dt.date(2026, 3, 31))

    _assess(db, world)

    assert stored(engine, on.id).review_reasons == [
        "dated 2026-03-31, on or before Nomi's lock date 2026-03-31: Nomi refuses records in a "
        "locked period (the lock date is moved in Nomi; an admin can archive the item)"
    ]
    assert stored(engine, before.id).status == ItemStatus.REVIEW
    assert stored(engine, after.id).status == ItemStatus.READY

    _lock(db, world, dt.date(2026, 2, 28))
    report = reassess_after_organisation_change(db, connection_id=world.connection.id)
    db.commit()
    assert report.became_ready == (on.id,)
    assert stored(engine, before.id).status == ItemStatus.REVIEW

    _lock(db, world, None)
    report = reassess_after_organisation_change(db, business_id=world.business.id)
    db.commit()
    assert report.became_ready == (before.id,)
    with pytest.raises(ValueError, match="give business_id or connection_id"):
        reassess_after_organisation_change(db)


def test_the_duplicate_look_up_is_one_query_per_batch_on_an_index(
    engine: Engine, db: Session
) -> None:
    world = _world(db)
    for n in range(600):
        _acme(db, world, f"q-{n:04d}", total=Decimal(n), created_at=T0)
    db.commit()
    with statements_on(engine) as statements:
        _assess(db, world)
    lookups = [(sql, params) for sql, params in statements if "row_number" in sql.lower()]
    assert len(lookups) == 2  # 600 items: two batches of 500, one query each
    sql, params = lookups[0]
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    plan = " ".join(str(r) for r in db.connection().exec_driver_sql(explain + sql, params))
    if engine.dialect.name == "sqlite":  # PostgreSQL's planner may scan a table this small
        assert "USING INDEX ix_items_duplicate_amounts" in plan
        assert "USING INDEX ix_items_duplicate_reference" in plan


def test_intake_stores_the_supplier_key_of_every_row_before_any_assessment(
    engine: Engine, db: Session, tmp_path: Path
) -> None:
    from connector.items.intake import import_items
    from tests.connector.items.conftest import CLERK as MEMBER
    from tests.connector.items.conftest import EXAMPLES

    business = make_business(db)
    make_membership(db, user=make_user(db, email=MEMBER), business=business, role=Role.STANDARD)
    db.commit()
    report = import_items(db, EXAMPLES / "items.csv", business_id=business.id,
                          actor_email=MEMBER, images_dir=tmp_path / "images")  # fmt: skip
    assert report.imported
    keys = dict(db.exec(select(Item.contact_name, Item.supplier_key)).all())
    assert keys["Staples UK"] == "staples uk"
    assert keys["Smile Lab Supplies Ltd"] == "smile lab supplies"
    assert all(item.review_reasons == ["not yet assessed"] for item in db.exec(select(Item)))
