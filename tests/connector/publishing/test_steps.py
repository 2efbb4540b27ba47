"""The steps of a publish against the sandbox: one contact per new name, images, replays."""

from __future__ import annotations

from sqlmodel import select

from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Supplier
from nomi.client import NomiClient
from nomi.retry import RetryPolicy
from tests.connector.publishing.test_publishing_world import (
    World,
    attempts,
    duplicates,
    write_image,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_two_items_of_one_new_supplier_create_one_supplier(world: World) -> None:
    first = world.add(ItemKind.COST, contact_name="Brand New Widgets Ltd")
    second = world.add(ItemKind.COST, contact_name="Brand New Widgets Limited")
    world.ready()

    world.publish(workers=2)

    created = world.records("supplier")
    assert len(created) == 1
    a, b = world.item(first), world.item(second)
    assert a.status == b.status == ItemStatus.PUBLISHED
    assert a.resolved_contact_nomi_id == b.resolved_contact_nomi_id
    with world.session() as s:
        mirrored = s.exec(
            select(Supplier).where(Supplier.nomi_id == a.resolved_contact_nomi_id)
        ).all()
    assert len(mirrored) == 1


def test_attachment_failing_once_after_create_ends_attached(world: World) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()
    world.fault("attachment_fail_once", method="PUT", count=1)

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert len(expense.attachments) == 1


def test_attachment_too_large_publishes_the_record_and_flags_the_item(world: World) -> None:
    world.sandbox.admin.patch("/settings", json={"max_attachment_bytes": 100}).raise_for_status()
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert not item.image_published
    assert item.image_error is not None
    assert "attachment_too_large" in item.image_error
    assert len(world.records("expense")) == 1


def test_commit_then_drop_on_the_create_leaves_exactly_one_record(world: World) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("commit_then_drop", method="POST", path="/api/v1/expenses", count=1)

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1
    assert duplicates(world.sandbox)["expenses"] == {}


def test_commit_then_drop_beyond_the_clients_retries_is_looked_up_by_source_id(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault("commit_then_drop", method="POST", path="/api/v1/expenses", count=1)
    impatient = NomiClient(
        world.sandbox.base_url, world.org.tenant_id, world.nomi._tokens, retry=RetryPolicy(1)
    )

    first = world.publish(nomi=impatient)

    assert first.stopped == "transient"
    assert world.item(item_id).last_error_code == "outcome_unknown"
    world.sandbox.clear_faults()
    # The idempotency key would replay; expire it so only the source_id look-up can save us.
    world.sandbox.admin.post("/clock/advance", json={"seconds": 2 * 86400}).raise_for_status()
    second = world.publish()

    assert second.count("published") == 1
    assert len(world.records("expense")) == 1
    assert ("expense", "recovered") in [(a.step, a.outcome) for a in attempts(world, item_id)]
