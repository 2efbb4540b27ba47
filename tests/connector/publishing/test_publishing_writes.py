"""How many write transactions publishing costs (SQLite has one writer; each one is queued for)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.items.context import build_context
from connector.publishing import outbox
from connector.publishing.batch import BatchResult, publish_batch
from connector.publishing.book import PublishBook
from connector.publishing.queue import claim_next
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Item
from tests.connector.publishing.test_publishing_world import World, attempts, write_image
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


@contextmanager
def counting_writes(engine: Engine) -> Iterator[list[str]]:
    """Collect the ``BEGIN`` mode of every transaction ``engine`` starts meanwhile."""
    begun: list[str] = []

    def on_begin(conn: sa.Connection) -> None:
        begun.append(conn.get_execution_options().get("sqlite_begin", "DEFERRED"))

    sa.event.listen(engine, "begin", on_begin)
    try:
        yield begun
    finally:
        sa.event.remove(engine, "begin", on_begin)


def claim(world: World, run_id: uuid.UUID) -> list[Item]:
    """Claim every Ready item of the world's business for ``run_id``."""
    with world.session() as s:
        ids = list(s.exec(select(Item.id).where(Item.status == ItemStatus.READY)).all())
        return claim_next(
            s, run_id=run_id, business_id=world.business_id, candidates=ids, batch_size=50
        )


def publish_claimed(world: World, items: list[Item], run_id: uuid.UUID) -> BatchResult:
    """Publish claimed items as one batch on three threads."""
    with world.session() as s:
        ctx = build_context(s, world.business_id)
    book = PublishBook(world.connection_id)
    return publish_batch(world.engine, world.nomi, items, run_id, ctx, book=book, workers=3)


def test_an_item_whose_only_write_is_its_record_costs_one_write_transaction(world: World) -> None:
    ids = [world.add(ItemKind.COST), world.add(ItemKind.SALES), world.add(ItemKind.COST)]
    world.ready()
    run_id = uuid.uuid4()
    items = claim(world, run_id)

    with counting_writes(world.engine) as begun:
        result = publish_claimed(world, items, run_id)

    assert result.count("published") == 3
    # attempt row + published together: one write per item at most (fewer when grouped)
    assert 1 <= begun.count("IMMEDIATE") <= 3
    for item_id in ids:
        item = world.item(item_id)
        assert item.status == ItemStatus.PUBLISHED
        assert item.nomi_record_id is not None
        [attempt] = attempts(world, item_id)
        assert (attempt.outcome, attempt.attempt_no) == ("published", 1)
        assert attempt.nomi_record_id == item.nomi_record_id
        assert attempt.run_id == run_id


def test_an_item_with_an_image_saves_its_record_before_the_upload(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()
    run_id = uuid.uuid4()
    items = claim(world, run_id)
    seen: list[tuple[str | None, list[str]]] = []
    upload = world.nomi.upload_expense_attachment

    def watching(*args: Any, **kwargs: Any) -> Any:
        left = world.item(item_id)
        seen.append((left.nomi_record_id, [a.step for a in attempts(world, item_id)]))
        return upload(*args, **kwargs)

    monkeypatch.setattr(world.nomi, "upload_expense_attachment", watching)
    with counting_writes(world.engine) as begun:
        publish_claimed(world, items, run_id)

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    assert seen == [(item.nomi_record_id, ["expense"])]
    # record + its attempt; image flag + its attempt; published
    assert begun.count("IMMEDIATE") == 3
    # each call made once: numbered per (item, step), so nothing counts as a retry
    assert [(a.step, a.attempt_no) for a in attempts(world, item_id)] == [
        ("expense", 1),
        ("attachment", 1),
    ]


def test_a_lost_claim_still_keeps_the_attempt_rows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    run_id = uuid.uuid4()
    items = claim(world, run_id)
    create = world.nomi.create_expense

    def stolen(*args: Any, **kwargs: Any) -> Any:
        answer = create(*args, **kwargs)
        with world.session() as s:  # another run's recovery took the claim meanwhile
            outbox.release_claim(s, item_id, run_id)
        return answer

    monkeypatch.setattr(world.nomi, "create_expense", stolen)
    result = publish_claimed(world, items, run_id)

    assert result.count("claim_lost") == 1
    assert world.item(item_id).status == ItemStatus.READY
    assert [(a.step, a.outcome) for a in attempts(world, item_id)] == [("expense", "published")]
