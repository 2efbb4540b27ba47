"""The steps of a publish against the sandbox: one contact per new name, images, replays."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from connector.publishing.steps import record_api
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


#: (kind, document type, record kind, path): every record type an item becomes.
RECORD_TYPES = [
    pytest.param(ItemKind.COST, "invoice", "expense", "/api/v1/expenses", id="expense"),
    pytest.param(
        ItemKind.SALES, "invoice", "sales_invoice", "/api/v1/sales-invoices", id="sales invoice"
    ),
    pytest.param(
        ItemKind.COST,
        "credit_note",
        "supplier_credit_note",
        "/api/v1/supplier-credit-notes",
        id="supplier credit note",
    ),
    pytest.param(
        ItemKind.SALES,
        "credit_note",
        "customer_credit_note",
        "/api/v1/customer-credit-notes",
        id="customer credit note",
    ),
]


def _lose_the_answer(world: World, kind: str, document_type: str, path: str) -> uuid.UUID:
    """Publish one item whose create lands but whose answer the client never gets."""
    item_id = world.add(kind, document_type=document_type)
    world.ready()
    world.fault("commit_then_drop", method="POST", path=path, count=1)
    impatient = NomiClient(
        world.sandbox.base_url, world.org.tenant_id, world.nomi._tokens, retry=RetryPolicy(1)
    )
    first = world.publish(nomi=impatient)
    assert first.stopped == "transient"
    assert world.item(item_id).last_error_code == "outcome_unknown"
    world.sandbox.clear_faults()
    # The idempotency key would replay; expire it so only the source_id look-up can save us.
    world.sandbox.admin.post("/clock/advance", json={"seconds": 2 * 86400}).raise_for_status()
    return item_id


@pytest.mark.parametrize(("kind", "document_type", "record", "path"), RECORD_TYPES)
def test_commit_then_drop_beyond_the_clients_retries_is_looked_up_by_source_id(
    world: World, kind: str, document_type: str, record: str, path: str
) -> None:
    item_id = _lose_the_answer(world, kind, document_type, path)

    second = world.publish()

    assert second.count("published") == 1
    [landed] = world.records(record)
    assert world.item(item_id).nomi_record_id == landed["id"]
    assert world.item(item_id).nomi_record_type == record
    assert (record, "recovered") in [(a.step, a.outcome) for a in attempts(world, item_id)]


@pytest.mark.parametrize(("kind", "document_type", "record", "path"), RECORD_TYPES[::2])
def test_the_source_id_look_up_ignores_a_record_voided_since(
    world: World, kind: str, document_type: str, record: str, path: str
) -> None:
    """A record voided in Nomi after the lost answer is not the item's: a new one is created.

    Only the unnumbered records: a voided invoice or customer credit note keeps its number, so
    Nomi refuses a new one under it (``duplicate_number``), as it should.
    """
    item_id = _lose_the_answer(world, kind, document_type, path)
    [landed] = world.records(record)
    api = record_api(world.nomi, record)
    voided = api.find_all(str(item_id))[0]
    getattr(world.nomi, f"void_{record}")(voided.id, uuid.uuid4().hex)

    second = world.publish()

    assert second.count("published") == 1
    item = world.item(item_id)
    assert item.nomi_record_id != landed["id"]
    live = [r for r in api.find_all(str(item_id)) if not r.voided]
    assert [r.id for r in live] == [item.nomi_record_id]
    assert (record, "recovered") not in [(a.step, a.outcome) for a in attempts(world, item_id)]
