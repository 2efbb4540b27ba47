"""An item's plan: the bodies and keys it sends, built before the first Nomi call."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

import connector.publishing.pipeline
from connector.items.context import build_context
from connector.publishing.payloads import expense_body, payment_body, sales_invoice_body
from connector.publishing.plan import Plan, plan_item
from connector.publishing.queue import (
    claim_next,
    recover_stale,
)
from connector.rules.facts import LineResolution, Resolution
from connector.rules.names import matching_key
from connector.rules.vocabulary import ItemKind, ItemStatus
from connector.store.models import Item
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


def _item(kind: str, **values: Any) -> Item:
    return Item(
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        business_id=uuid.uuid4(),
        kind=kind,
        status=ItemStatus.PUBLISHING,
        external_id="ext-1",
        reference="INV-7",
        date=date(2026, 3, 1),
        currency="GBP",
        publish_generation=3,
        **values,
    )


def _resolution(**values: Any) -> Resolution:
    base: dict[str, Any] = {
        "status": ItemStatus.READY,
        "category_id": "cat-1",
        "tax_rate_id": "rate-1",
        "tax": Decimal("20.00"),
        "total": Decimal("120.00"),
        "description": "Paper",
    }
    return Resolution(**(base | values))


def _sent(body: BaseModel) -> dict[str, Any]:
    """What the client sends of a body (``NomiClient`` dumps it so)."""
    return body.model_dump(mode="json", exclude_none=True)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_plans_keys_are_the_item_generation_step_hashes_and_the_contacts_name_hash() -> None:
    item, connection_id = _item(ItemKind.COST), uuid.uuid4()

    plan = plan_item(item, _resolution(new_contact_name="Brand New Ltd"), connection_id)

    prefix = f"{item.id}:3"
    assert plan.record_step == plan.record_type == "expense"
    assert plan.record_key == _sha(f"{prefix}:expense")
    assert plan.attachment_key == _sha(f"{prefix}:attachment")
    assert plan.payment_key == _sha(f"{prefix}:payment")
    assert plan.new_contact is not None
    assert plan.new_contact.kind == "supplier"
    contact = f"{connection_id}:supplier:{matching_key('Brand New Ltd')}:contact"
    assert plan.new_contact.key == _sha(contact)
    assert plan.new_contact.body.name == "Brand New Ltd"
    assert plan.attachment_name == f"document-{item.id}"


@pytest.mark.parametrize("kind", [ItemKind.COST, ItemKind.EXPENSE_CLAIM])
def test_an_expense_body_planned_early_is_the_body_built_at_the_call(kind: str) -> None:
    item = _item(kind, claimant_nomi_user_id=None)
    res = _resolution(new_contact_name="Brand New Ltd", paid=True, bank_account_id="bank-1")

    plan = plan_item(item, res, uuid.uuid4())

    late = expense_body(item, res, contact_id="sup-9", user_id="user-2")
    assert _sent(plan.expense_for("sup-9", "user-2")) == _sent(late)
    assert plan.sales_invoice is None
    assert plan.payment is None


def test_a_sales_invoice_planned_early_is_the_body_built_at_the_call() -> None:
    item = _item(ItemKind.SALES)
    res = _resolution(new_contact_name="New Customer", paid=True, bank_account_id="bank-1")

    plan: Plan = plan_item(item, res, uuid.uuid4())

    assert plan.record_step == plan.record_type == "sales_invoice"
    assert plan.record_key == _sha(f"{item.id}:3:sales_invoice")
    assert plan.new_contact is not None
    assert plan.new_contact.kind == "customer"
    late = sales_invoice_body(item, res, contact_id="cus-4")
    assert _sent(plan.invoice_for("cus-4")) == _sent(late)
    payment = payment_body(item, res)
    assert payment is not None
    assert plan.payment is not None
    assert _sent(plan.payment) == _sent(payment)


def test_the_plan_is_built_before_the_first_nomi_call(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(ItemKind.COST, contact_name="Brand New Widgets Ltd")
    world.ready()
    events: list[str] = []

    def planning(*args: Any, **kwargs: Any) -> Plan:
        events.append("plan")
        return plan_item(*args, **kwargs)

    def noting(name: str) -> Any:
        call = getattr(world.nomi, name)

        def noted(*args: Any, **kwargs: Any) -> Any:
            events.append(name)
            return call(*args, **kwargs)

        return noted

    monkeypatch.setattr(connector.publishing.pipeline, "plan_item", planning)
    for name in ("create_supplier", "create_expense"):
        monkeypatch.setattr(world.nomi, name, noting(name))

    result = world.publish(workers=1)

    assert result.count("published") == 1
    assert events == ["plan", "create_supplier", "create_expense"]


def _lines(*amounts: tuple[str, str]) -> tuple[LineResolution, ...]:
    return tuple(
        LineResolution(n + 1, f"line {n + 1}", f"cat-{n + 1}", "rate-1", D(net), D(tax))
        for n, (net, tax) in enumerate(amounts)
    )


D = Decimal
THREE = (("50.00", "10.00"), ("25.00", "5.00"), ("25.00", "5.00"))


@pytest.mark.parametrize(
    ("kind", "step", "contact_field"),
    [
        (ItemKind.COST, "supplier_credit_note", "supplier_id"),
        (ItemKind.SALES, "customer_credit_note", "customer_id"),
    ],
)
def test_a_credit_note_plans_a_credit_note_with_what_it_credits_and_no_payment(
    kind: str, step: str, contact_field: str
) -> None:
    item = _item(kind, document_type="credit_note", paid=True)
    res = _resolution(
        document_type="credit_note", paid=True, bank_account_id="bank-1", contact_id="c-1"
    )

    plan = plan_item(item, res, uuid.uuid4(), applies_to_id="exp-7")

    assert plan.record_step == plan.record_type == step
    assert plan.record_key == _sha(f"{item.id}:3:{step}")
    assert plan.expense is None
    assert plan.sales_invoice is None
    assert plan.payment is None
    sent = _sent(plan.body_for("c-2", None))
    assert sent[contact_field] == "c-2"
    assert sent["applies_to_id"] == "exp-7"
    assert sent["total"] == "120.00"
    [line] = sent["lines"]
    assert (line["category_id"], line["tax_amount"]) == ("cat-1", "20.00")


def test_a_three_line_expense_sends_lines_instead_of_the_single_category_and_tax() -> None:
    item = _item(ItemKind.COST)  # currency: the resolution's
    res = _resolution(
        category_id=None, lines=_lines(*THREE), currency="EUR", exchange_rate=D("0.85")
    )

    sent = _sent(expense_body(item, res, contact_id="sup-1", user_id=None))

    assert "category_id" not in sent
    assert "tax_amount" not in sent
    assert "tax_rate_id" not in sent
    assert [(x["category_id"], x["net_amount"], x["tax_amount"]) for x in sent["lines"]] == [
        ("cat-1", "50.00", "10.00"),
        ("cat-2", "25.00", "5.00"),
        ("cat-3", "25.00", "5.00"),
    ]
    assert (sent["currency"], sent["exchange_rate"]) == ("EUR", "0.85")


def test_a_three_line_invoice_sends_gross_lines_each_with_its_category() -> None:
    item = _item(ItemKind.SALES)
    res = _resolution(category_id=None, lines=_lines(*THREE))

    sent = _sent(sales_invoice_body(item, res, contact_id="cus-1"))

    assert [(x["category_id"], x["amount"], x["tax_amount"]) for x in sent["lines"]] == [
        ("cat-1", "60.00", "10.00"),
        ("cat-2", "30.00", "5.00"),
        ("cat-3", "30.00", "5.00"),
    ]
    assert sum(D(x["amount"]) for x in sent["lines"]) == D(sent["total"])
    assert "exchange_rate" not in sent  # none given: Nomi applies its daily rate
