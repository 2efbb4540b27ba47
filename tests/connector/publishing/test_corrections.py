"""Correcting and archiving published items against the sandbox: void first, then a new record."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from connector.access import PermissionDeniedError
from connector.admin.corrections import CorrectionRefusedError
from connector.rules.vocabulary import ItemKind, ItemStatus, Role
from connector.store.history_tables import AuditLog
from tests.connector.publishing.correcting import (
    active_records,
    add_admin,
    archive,
    correct,
    item_records,
    published,
)
from tests.connector.publishing.test_publishing_world import (
    World,
    attempts,
    bank_method,
    write_image,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_a_corrected_expense_is_voided_and_created_again_with_the_new_category(
    world: World,
) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)
    old = world.item(item_id).nomi_record_id

    result = correct(world, item_id, admin, {"category": "493"})

    item = world.item(item_id)
    assert result.outcome == "published"
    assert item.status == ItemStatus.PUBLISHED
    assert item.record_generation == 1
    assert item.voided_record_ids == [f"expense:{old}"]
    assert item.nomi_record_id not in (None, old)
    assert item.pending_correction is None
    [live] = active_records(world, item_id)
    assert live["id"] == item.nomi_record_id
    assert live["source_id"] == f"{item_id}:g1"
    assert live["category_id"] == world.org.category("493")
    assert {r["id"]: r["status"] for r in item_records(world, item_id)}[old] == "VOIDED"
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert ("void", "published") in steps
    assert [s for s, _ in steps].count("expense") == 2


def test_a_correction_moves_the_image_and_the_payment_to_the_new_record(world: World) -> None:
    admin = add_admin(world)
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    image = write_image(world.images)
    item_id = published(
        world,
        ItemKind.COST,
        paid=True,
        payment_method_id=method,
        image_path=str(image),
        image_content_type="application/pdf",
    )

    correct(world, item_id, admin, {"total": "144.00", "tax": "24.00"})

    item = world.item(item_id)
    [live] = active_records(world, item_id)
    assert Decimal(str(live["total"])) == Decimal("144.00")
    assert live["paid_from_bank_account_id"] == world.org.bank()
    assert item.image_published
    assert item.nomi_record_id is not None
    on_new = [a for a in world.records("attachment") if item.nomi_record_id in str(a)]
    assert len(on_new) == 1


def test_a_corrected_sales_invoice_gets_a_new_number_as_nomi_keeps_the_voided_one(
    world: World,
) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.SALES, reference="SI-1001")

    correct(world, item_id, admin, {"category": "200"})
    correct(world, item_id, admin, {"total": "240.00", "tax": "40.00"})

    item = world.item(item_id)
    assert item.record_generation == 2
    assert len(item.voided_record_ids) == 2
    [live] = active_records(world, item_id)
    assert live["number"] == "SI-1001-R2"


def test_a_correction_inside_a_locked_period_is_refused_and_changes_nothing(
    world: World,
) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)
    before = world.item(item_id)
    world.sandbox.admin.patch(f"/tenants/{world.org.tenant_id}", json={"lock_date": "2026-12-31"})

    with pytest.raises(CorrectionRefusedError, match="period_locked") as refused:
        correct(world, item_id, admin, {"category": "493"})

    assert refused.value.code == "period_locked"
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.nomi_record_id == before.nomi_record_id
    assert item.category_edit == before.category_edit
    assert item.record_generation == 0
    assert item.voided_record_ids == []
    assert item.pending_correction is None
    assert item.claimed_by_run is None
    assert [r["id"] for r in active_records(world, item_id)] == [before.nomi_record_id]
    with world.session() as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "item.correct")).all()
    assert [a.allowed for a in audit] == [True, False]


def test_correcting_an_invoice_with_payments_is_refused_with_nomis_reason(world: World) -> None:
    admin = add_admin(world)
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    item_id = published(world, ItemKind.SALES, paid=True, payment_method_id=method)

    with pytest.raises(CorrectionRefusedError, match="has_payments"):
        correct(world, item_id, admin, {"total": "240.00", "tax": "40.00"})

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.total == Decimal("120.00")
    assert len(active_records(world, item_id)) == 1


def test_a_standard_member_may_not_correct_and_nothing_is_sent(world: World) -> None:
    member = add_admin(world, Role.STANDARD)
    item_id = published(world, ItemKind.COST)

    with pytest.raises(PermissionDeniedError):
        correct(world, item_id, member, {"category": "493"})

    assert world.item(item_id).record_generation == 0
    assert len(active_records(world, item_id)) == 1


def test_an_edit_that_would_not_be_ready_is_refused_before_any_void(world: World) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)

    with pytest.raises(CorrectionRefusedError, match="not be ready"):
        correct(world, item_id, admin, {"category": "none"})

    assert world.item(item_id).status == ItemStatus.PUBLISHED
    assert not [a for a in attempts(world, item_id) if a.step == "void"]


def test_an_item_not_published_cannot_be_corrected(world: World) -> None:
    admin = add_admin(world)
    item_id = world.add(ItemKind.COST)
    world.ready()

    with pytest.raises(CorrectionRefusedError, match="only a published item"):
        correct(world, item_id, admin, {"category": "493"})


def test_an_archived_published_item_is_voided_and_never_published_again(world: World) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST, document_type="credit_note")
    old = world.item(item_id).nomi_record_id

    result = archive(world, item_id, admin)
    world.ready()
    world.publish(workers=1)

    item = world.item(item_id)
    assert result.outcome == "archived"
    assert item.status == ItemStatus.ARCHIVED
    assert item.voided_record_ids == [f"supplier_credit_note:{old}"]
    assert active_records(world, item_id) == []
    assert len(item_records(world, item_id)) == 1
