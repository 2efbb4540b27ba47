"""An item's plan: the bodies and keys it sends, built before the first Nomi call."""

from __future__ import annotations

import uuid
from datetime import timedelta

from connector.items.context import build_context
from connector.publishing.queue import (
    claim_next,
    recover_stale,
)
from connector.rules.vocabulary import ItemKind, ItemStatus
from tests.connector.publishing.test_publishing_world import (
    World,
    duplicates,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_a_crash_after_the_create_then_stale_recovery_publishes_one_record(world: World) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    dead_run = uuid.uuid4()
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        [item] = claim_next(
            s, run_id=dead_run, business_id=world.business_id, candidates=[item_id], batch_size=5
        )
        # The dead run created the record (same key and body as a real run), then crashed.
        from connector.items.context import facts_from_item
        from connector.publishing.outbox import idempotency_key
        from connector.publishing.payloads import expense_body
        from connector.rules.engine import resolve

        res = resolve(facts_from_item(item), ctx)
        key = idempotency_key(item.id, item.publish_generation, "expense")
        body = expense_body(item, res, contact_id=res.contact_id, user_id=None)
        world.nomi.create_expense(body, key)
    world.sandbox.admin.post("/clock/advance", json={"seconds": 2 * 86400}).raise_for_status()
    with world.session() as s:
        recovered = recover_stale(s, older_than=timedelta(seconds=0), run_id=uuid.uuid4())
    assert [r.id for r in recovered] == [item_id]

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert len(world.records("expense")) == 1
    assert duplicates(world.sandbox)["expenses"] == {}
