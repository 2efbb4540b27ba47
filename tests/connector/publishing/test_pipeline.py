"""Publishing each kind to the sandbox: records, images, payments, holds, rejections."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal
from typing import Any

import pytest

import connector.publishing.pipeline
from connector.items.choices import allow_retry
from connector.items.context import build_context, facts_from_item
from connector.publishing.batch import publish_batch
from connector.publishing.book import PublishBook
from connector.publishing.queue import Selection, claim_next, select_candidates
from connector.rules.engine import resolve
from connector.rules.facts import Resolution, Resolved
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Item
from tests.connector.publishing.test_publishing_world import (
    World,
    attempts,
    bank_method,
    set_settings,
    write_image,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture


def test_cost_item_with_image_becomes_one_expense_with_its_image(world: World) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, image_path=str(image), image_content_type="application/pdf")
    world.ready()

    result = world.publish()

    assert result.count("published") == 1
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.image_published
    assert item.image_error is None
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert expense.id == item.nomi_record_id
    assert expense.kind == "company"
    assert str(expense.total) == "120.00"
    assert [a.content_type for a in expense.attachments] == ["application/pdf"]
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert steps == [("expense", "published"), ("attachment", "published")]
    assert all(a.idempotency_key for a in attempts(world, item_id))


@pytest.mark.parametrize("with_images", [True, False])
def test_expense_claim_carries_the_claimant_and_its_image_only_when_the_setting_is_on(
    world: World, with_images: bool
) -> None:
    with world.session() as s:
        set_settings(s, world.connection_id, publish_images_with_expense_claims=with_images)
    image = write_image(world.images)
    item_id = world.add(
        ItemKind.EXPENSE_CLAIM, image_path=str(image), image_content_type="application/pdf"
    )
    world.ready()

    world.publish()

    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert expense.kind == "claim"
    owen = next(u for u in world.nomi.list_users() if u.email == "owen@brightsmile.example")
    assert expense.user_id == owen.id
    assert len(expense.attachments) == (1 if with_images else 0)
    assert item.image_published is with_images


def test_paid_sales_item_gets_a_payment_into_the_linked_bank_account(world: World) -> None:
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    paid = world.add(ItemKind.SALES, paid=True, payment_method_id=method)
    unpaid = world.add(ItemKind.SALES)
    world.ready()

    world.publish()

    paid_item, unpaid_item = world.item(paid), world.item(unpaid)
    assert paid_item.status == unpaid_item.status == ItemStatus.PUBLISHED
    assert paid_item.payment_recorded
    assert not unpaid_item.payment_recorded
    invoice = world.nomi.find_sales_invoice_by_source_id(str(paid))
    assert invoice is not None
    assert invoice.status == "PAID"
    assert [p.bank_account_id for p in invoice.payments] == [world.org.bank()]
    other = world.nomi.find_sales_invoice_by_source_id(str(unpaid))
    assert other is not None
    assert other.payments == []
    assert other.status == "AUTHORISED"
    assert len(world.records("payment")) == 1


def test_warn_new_supplier_holds_the_item_in_review(world: World) -> None:
    with world.session() as s:
        set_settings(s, world.connection_id, warn_new_supplier=True)
    held = world.add(ItemKind.COST, contact_name="Unheard Of Supplies")
    world.ready()
    assert world.item(held).status == ItemStatus.REVIEW
    # A stale ready status (assessed before the setting changed) is caught at publish time.
    with world.session() as s:
        item = s.get(Item, held)
        assert item is not None
        item.status, item.review_reasons = ItemStatus.READY, []
        s.add(item)
        s.commit()

    result = world.publish()

    assert result.count("held") == 1
    item = world.item(held)
    assert item.status == ItemStatus.REVIEW
    assert any("new supplier" in r for r in item.review_reasons)
    assert world.records("supplier") == []
    assert world.records("expense") == []


def test_rejection_is_recorded_and_not_taken_by_auto_publish_until_retry_is_allowed(
    world: World,
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    world.fault(
        "validation",
        method="POST",
        path="/api/v1/expenses",
        count=1,
        params={"code": "period_locked"},
    )

    result = world.publish()

    assert result.count("rejected") == 1
    item = world.item(item_id)
    assert item.status == ItemStatus.READY
    assert item.last_error_code == "period_locked"
    assert item.last_error_message
    assert item.publish_generation == 2
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        set_settings(s, world.connection_id, auto_publish=True)
        ctx = build_context(s, world.business_id)
        assert select_candidates(s, world.business_id, ctx, Selection(), limit=10) == []
        assert allow_retry(s, [item_id]) == 1
        assert select_candidates(s, world.business_id, ctx, Selection(), limit=10) == [item_id]


def test_a_zero_rated_sale_publishes_no_tax_whatever_was_extracted(world: World) -> None:
    """Issue 15: 0.11 with 0.01 extracted at EXEMPT (0%) published 0.01 tax; now 0 and a note."""
    item_id = world.add(
        ItemKind.SALES,
        total=Decimal("0.11"),
        tax_amount=Decimal("0.01"),
        tax_rate_edit=world.org.tax_rate("EXEMPT"),
    )
    world.ready()

    result = world.publish()

    assert result.count("published") == 1, result
    (outcome,) = result.outcomes
    assert any("0.01 is not published" in flag for flag in outcome.flags), outcome.flags
    item = world.item(item_id)
    assert item.status == ItemStatus.PUBLISHED
    assert item.tax_amount == Decimal("0.01")  # the extracted amount is kept on the item
    invoice = world.nomi.find_sales_invoice_by_source_id(str(item_id))
    assert invoice is not None
    assert [(str(line.amount), str(line.tax_amount)) for line in invoice.lines] == [
        ("0.11", "0.00")
    ]


def test_a_resolution_made_by_the_caller_is_reused_unless_the_item_changed_since(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    same, changed = world.add(ItemKind.COST), world.add(ItemKind.COST)
    world.ready()
    run_id = uuid.uuid4()
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        facts = {i: facts_from_item(s.get_one(Item, i)) for i in (same, changed)}
        stale = dataclasses.replace(facts[changed], total=Decimal("1.00"))  # edited since
        resolved = {
            same: Resolved(facts[same], resolve(facts[same], ctx)),
            changed: Resolved(stale, resolve(stale, ctx)),
        }
        items = claim_next(
            s,
            run_id=run_id,
            business_id=world.business_id,
            candidates=[same, changed],
            batch_size=5,
        )
    calls = _count_resolves(monkeypatch)

    result = _publish(world, items, run_id, ctx, resolved)

    assert result.count("published") == 2
    assert calls == [facts[changed]]  # only the changed item is resolved again, from its facts
    for item_id in (same, changed):
        expense = world.nomi.find_expense_by_source_id(str(item_id))
        assert expense is not None
        assert str(expense.total) == "120.00"


def test_an_auto_published_item_is_resolved_once_from_selection_to_nomi(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id = world.add(ItemKind.COST)
    world.ready()
    with world.session() as s:
        set_settings(s, world.connection_id, auto_publish=True)
    run_id = uuid.uuid4()
    resolutions: dict[uuid.UUID, Resolved] = {}
    with world.session() as s:
        ctx = build_context(s, world.business_id)
        picked = select_candidates(
            s, world.business_id, ctx, Selection(), limit=10, resolutions=resolutions
        )
        items = claim_next(
            s, run_id=run_id, business_id=world.business_id, candidates=picked, batch_size=5
        )
    assert picked == [item_id]
    assert set(resolutions) == {item_id}
    calls = _count_resolves(monkeypatch)

    result = _publish(world, items, run_id, ctx, resolutions)

    assert result.count("published") == 1
    assert calls == []  # the selection's resolution was used


def _count_resolves(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The facts of every ``resolve`` call the pipeline makes from now on."""
    calls: list[Any] = []

    def counting(*args: Any) -> Resolution:
        calls.append(args[0])
        return resolve(*args)

    monkeypatch.setattr(connector.publishing.pipeline, "resolve", counting)
    return calls


def _publish(
    world: World,
    items: list[Item],
    run_id: uuid.UUID,
    ctx: Any,
    resolved: dict[uuid.UUID, Resolved],
) -> Any:
    return publish_batch(
        world.engine,
        world.nomi,
        items,
        run_id,
        ctx,
        book=PublishBook(world.connection_id),
        resolved=resolved,
    )


def test_a_ready_credit_note_becomes_a_credit_note_never_an_expense(world: World) -> None:
    """Issue 20's hazard: a credit must never reach Nomi as an expense (or a sales invoice)."""
    credit = world.add(ItemKind.COST, document_type="credit_note")
    sale_credit = world.add(ItemKind.SALES, document_type="credit_note")
    plain = world.add(ItemKind.COST)
    world.ready()

    result = world.publish()

    assert result.count("published") == 3
    assert world.nomi.find_expense_by_source_id(str(credit)) is None
    assert world.nomi.find_supplier_credit_note_by_source_id(str(credit)) is not None
    assert world.nomi.find_sales_invoice_by_source_id(str(sale_credit)) is None
    assert world.nomi.find_customer_credit_note_by_source_id(str(sale_credit)) is not None
    assert world.item(plain).nomi_record_type == "expense"


def test_a_batch_says_once_when_its_last_item_started_before_it_ends(world: World) -> None:
    """The sending lane goes back then: the next batch sends while this one's last items finish."""
    ids = [world.add(ItemKind.COST) for _ in range(6)]
    world.ready()
    seen: list[dict[str, int]] = []

    def all_started() -> None:
        with world.session() as s:
            statuses = [s.get(Item, i).status for i in ids]  # type: ignore[union-attr]
        seen.append(
            {
                "published": statuses.count(ItemStatus.PUBLISHED),
                "publishing": statuses.count(ItemStatus.PUBLISHING),
            }
        )

    result = world.publish(workers=2, on_all_started=all_started)

    assert result.count("published") == 6
    assert len(seen) == 1, seen  # once per batch
    # Called as the last item started: that one at least was still being published.
    assert seen[0]["publishing"] >= 1, seen
    assert seen[0]["published"] <= 5, seen
