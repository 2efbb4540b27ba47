"""Library crash points after a Nomi write and before its progress is saved: one record, recovered.

A "crash" is a ``BaseException`` raised at the chosen point: nothing after it runs (no handler of
the pipeline catches it), so the database keeps exactly what a killed process would have left.
The point after the create and before its record id is saved is covered in
``tests/connector/publishing/test_plan.py``; these are the points after the image and the payment.
The hooks are the product's own seams: the Nomi client's calls and ``Move.published``, the move the
pipeline builds to finish an item.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from connector.admin.corrections import CorrectionRefusedError
from connector.publishing.moves import Move
from connector.publishing.queue import recover_stale
from connector.rules.vocabulary import ItemKind, ItemStatus
from tests.connector.publishing.correcting import (
    active_records,
    add_admin,
    correct,
    item_records,
    published,
)
from tests.connector.publishing.test_publishing_world import (
    World,
    attempts,
    bank_method,
    duplicates,
    write_image,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


class Crash(BaseException):
    """The process died here."""


def crash_after(target: Callable[..., Any]) -> Callable[..., Any]:
    """``target`` runs (its write lands), then the process dies before anything else."""

    def dying(*args: Any, **kwargs: Any) -> Any:
        target(*args, **kwargs)
        raise Crash

    return dying


def recover(world: World) -> list[uuid.UUID]:
    """What the next run does first: give back claims older than the (zero) timeout."""
    with world.session() as s:
        return [i.id for i in recover_stale(s, older_than=timedelta(0), run_id=uuid.uuid4())]


#: (kind, document type, record kind, the client's upload): every record an image goes on.
WITH_IMAGES = [
    pytest.param(ItemKind.COST, "invoice", "expense", "upload_expense_attachment", id="expense"),
    pytest.param(
        ItemKind.COST,
        "credit_note",
        "supplier_credit_note",
        "upload_supplier_credit_note_attachment",
        id="supplier credit note",
    ),
    pytest.param(
        ItemKind.SALES,
        "credit_note",
        "customer_credit_note",
        "upload_customer_credit_note_attachment",
        id="customer credit note",
    ),
]


@pytest.mark.parametrize(("kind", "document_type", "record", "upload"), WITH_IMAGES)
def test_a_crash_after_the_image_upload_before_saving_it_keeps_one_image(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    document_type: str,
    record: str,
    upload: str,
) -> None:
    image = write_image(world.images)
    item_id = world.add(
        kind,
        document_type=document_type,
        image_path=str(image),
        image_content_type="application/pdf",
    )
    world.ready()
    with monkeypatch.context() as m:
        m.setattr(world.nomi, upload, crash_after(getattr(world.nomi, upload)))
        with pytest.raises(Crash):
            world.publish(workers=1)
    left = world.item(item_id)
    assert left.status == ItemStatus.PUBLISHING
    assert left.nomi_record_id is not None
    assert not left.image_published

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    assert item.nomi_record_id == left.nomi_record_id
    assert len(world.records(record)) == 1
    assert len(world.records("attachment")) == 1
    assert duplicates(world.sandbox).get(f"{record}s", {}) == {}
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert (record, "recovered") in steps
    assert [s for s, _ in steps].count(record) == 2  # the create and the recovery, no 2nd create


def test_a_crash_after_a_credit_note_is_created_before_saving_it_creates_it_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create landed, nothing was saved: the retry replays its key, Nomi holds one."""
    item_id = world.add(ItemKind.COST, document_type="credit_note", currency="EUR")
    world.ready()
    with monkeypatch.context() as m:
        create = world.nomi.create_supplier_credit_note
        m.setattr(world.nomi, "create_supplier_credit_note", crash_after(create))
        with pytest.raises(Crash):
            world.publish(workers=1)
    assert world.item(item_id).nomi_record_id is None

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    [landed] = world.records("supplier_credit_note")
    assert item.nomi_record_id == landed["id"]
    assert landed["currency"] == "EUR"


def test_a_crash_after_saving_the_image_before_the_published_move_publishes_without_writing_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()
    with monkeypatch.context() as m:
        m.setattr(Move, "published", crash_after(lambda *a, **k: None))
        with pytest.raises(Crash):
            world.publish(workers=1)
    left = world.item(item_id)
    assert left.status == ItemStatus.PUBLISHING
    assert left.image_published
    writes_before = _writes(world)

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    assert _writes(world) == writes_before  # nothing sent again: create and image were saved
    assert len(world.records("expense")) == 1
    assert len(world.records("attachment")) == 1


def test_a_crash_after_the_payment_before_saving_it_records_one_payment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    item_id = world.add(ItemKind.SALES, paid=True, payment_method_id=method)
    world.ready()
    with monkeypatch.context() as m:
        m.setattr(
            world.nomi,
            "add_sales_invoice_payment",
            crash_after(world.nomi.add_sales_invoice_payment),
        )
        with pytest.raises(Crash):
            world.publish(workers=1)
    left = world.item(item_id)
    assert left.status == ItemStatus.PUBLISHING
    assert not left.payment_recorded

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.payment_recorded
    assert len(world.records("sales_invoice")) == 1
    assert len(world.records("payment")) == 1
    assert duplicates(world.sandbox)["sales_invoices"] == {}


def _writes(world: World) -> list[tuple[str, str]]:
    """Every write request the sandbox saw (method, path)."""
    journal = world.sandbox.admin.get("/requests", params={"limit": 1000}).json()
    rows = journal if isinstance(journal, list) else journal.get("requests", [])
    return [(r["method"], r["path"]) for r in rows if r["method"] in {"POST", "PUT", "PATCH"}]


# --- corrections: void, then create (connector.admin.corrections) ----------------------------


def test_a_crash_after_the_void_before_saving_it_ends_the_correction_with_one_live_record(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nomi voided the old record, nothing was saved: the next run voids again (a replay or
    ``already_voided``), applies the edit and creates generation 1 once."""
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)
    old = world.item(item_id).nomi_record_id
    with monkeypatch.context() as m:
        m.setattr(world.nomi, "void_expense", crash_after(world.nomi.void_expense))
        with pytest.raises(Crash):
            correct(world, item_id, admin, {"category": "493"})
    left = world.item(item_id)
    assert left.status == ItemStatus.PUBLISHING
    assert left.pending_correction is not None
    assert left.nomi_record_id == old
    assert active_records(world, item_id) == []  # the window the recovery must close

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.record_generation == 1
    assert item.voided_record_ids == [f"expense:{old}"]
    [live] = active_records(world, item_id)
    assert live["id"] == item.nomi_record_id
    assert live["category_id"] == world.org.category("493")
    assert len(item_records(world, item_id)) == 2


def test_a_crash_after_the_new_generation_is_created_before_saving_it_creates_it_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = add_admin(world)
    item_id = published(world, ItemKind.SALES)
    with monkeypatch.context() as m:
        m.setattr(world.nomi, "create_sales_invoice", crash_after(world.nomi.create_sales_invoice))
        with pytest.raises(Crash):
            correct(world, item_id, admin, {"total": "240.00", "tax": "40.00"})
    left = world.item(item_id)
    assert left.record_generation == 1
    assert left.nomi_record_id is None

    assert recover(world) == [item_id]
    world.publish(workers=1)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    [live] = active_records(world, item_id)
    assert live["id"] == item.nomi_record_id
    assert len(item_records(world, item_id)) == 2
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert ("sales_invoice", "recovered") in steps


def test_two_corrections_racing_leave_one_live_record_and_one_refusal(world: World) -> None:
    """Both ask at once; the claim admits one (the void is slowed so they overlap)."""
    admin = add_admin(world)
    item_id = published(world, ItemKind.COST)
    world.fault("latency", method="POST", path="/api/v1/expenses/", params={"seconds": 1.0})
    start = threading.Barrier(2)
    results: list[object] = []

    def race(category: str) -> None:
        start.wait()
        try:
            results.append(correct(world, item_id, admin, {"category": category}))
        except CorrectionRefusedError as exc:
            results.append(exc)

    threads = [threading.Thread(target=race, args=(c,)) for c in ("493", "429")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    refused = [r for r in results if isinstance(r, CorrectionRefusedError)]
    assert len(results) == 2
    assert len(refused) == 1
    assert "another run" in str(refused[0])
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.record_generation == 1
    [live] = active_records(world, item_id)
    assert live["id"] == item.nomi_record_id
