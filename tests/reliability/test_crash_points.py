"""Library crash points after a Nomi write and before its progress is saved: one record, recovered.

A "crash" is a ``BaseException`` raised at the chosen point: nothing after it runs (no handler of
the pipeline catches it), so the database keeps exactly what a killed process would have left.
The point after the create and before its record id is saved is covered in
``tests/connector/publishing/test_plan.py``; these are the points after the image and the payment.
The hooks are the product's own seams: the Nomi client's calls and ``Move.published``, the move the
pipeline builds to finish an item.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from connector.publishing.moves import Move
from connector.publishing.queue import recover_stale
from connector.rules.vocabulary import ItemKind, ItemStatus
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


def test_a_crash_after_the_image_upload_before_saving_it_keeps_one_image(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()
    with monkeypatch.context() as m:
        m.setattr(
            world.nomi,
            "upload_expense_attachment",
            crash_after(world.nomi.upload_expense_attachment),
        )
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
    assert len(world.records("expense")) == 1
    assert len(world.records("attachment")) == 1
    assert duplicates(world.sandbox)["expenses"] == {}
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert ("expense", "recovered") in steps
    assert [s for s, _ in steps].count("expense") == 2  # the create and the recovery, no 2nd create


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
