"""Publishing the documents of issue 20 to the sandbox: credit notes, lines, foreign currency."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlmodel import select

from connector.publishing.pipeline import CREDIT_NOTE_UNPAID
from connector.publishing.steps import live_record, record_api
from connector.rules.vocabulary import HoldCode, ItemKind, ItemStatus
from connector.store.models import BankAccount, Organisation, PaymentMethod
from tests.connector.publishing.test_publishing_world import (
    World,
    attempts,
    bank_method,
    write_image,
)
from tests.connector.publishing.test_publishing_world import world as world  # the fixture

D = Decimal
PDF = {"image_content_type": "application/pdf"}


def _lines(org: Any, *rows: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    """Stored lines (net, tax, description, category code), each at 20% standard rate."""
    return [
        {
            "net": net,
            "tax": tax,
            "description": text,
            "category_edit": org.category(code),
            "tax_rate_edit": org.tax_rate("STD20"),
        }
        for net, tax, text, code in rows
    ]


def _organisation(world: World, base: str = "GBP") -> None:
    """The mirrored organisation row (the sync fills it; these tests insert it)."""
    with world.session() as s:
        s.add(
            Organisation(
                connection_id=world.connection_id, nomi_id="org", name="Bright", base_currency=base
            )
        )
        s.commit()


def test_a_cost_credit_note_becomes_a_supplier_credit_note_with_its_image(world: World) -> None:
    image = write_image(world.images)
    item_id = world.add(ItemKind.COST, document_type="credit_note", image_path=str(image), **PDF)
    world.ready()

    result = world.publish()

    assert result.count("published") == 1
    item = world.item(item_id)
    assert (item.status, item.nomi_record_type) == (ItemStatus.PUBLISHED, "supplier_credit_note")
    note = world.nomi.find_supplier_credit_note_by_source_id(str(item_id))
    assert note is not None
    assert note.id == item.nomi_record_id
    assert note.total == D("120.00")
    assert note.supplier_id == world.org.supplier("Staples UK")
    assert [(line.net_amount, line.tax_amount) for line in note.lines] == [
        (D("100.00"), D("20.00"))
    ]
    assert note.applies_to_id is None
    assert [a.content_type for a in note.attachments] == ["application/pdf"]
    assert world.nomi.find_expense_by_source_id(str(item_id)) is None
    steps = [(a.step, a.outcome) for a in attempts(world, item_id)]
    assert steps == [("supplier_credit_note", "published"), ("attachment", "published")]


def test_a_sales_credit_note_credits_the_published_invoice_it_names(world: World) -> None:
    invoice_id = world.add(ItemKind.SALES, external_id="INV-1")
    world.ready()
    world.publish()
    credit_id = world.add(
        ItemKind.SALES,
        document_type="credit_note",
        credits_external_id="INV-1",
        total=D("60.00"),
        tax_amount=D("10.00"),
    )
    world.ready()

    result = world.publish()

    assert result.count("published") == 1
    invoice, credit = world.item(invoice_id), world.item(credit_id)
    assert credit.nomi_record_type == "customer_credit_note"
    note = world.nomi.find_customer_credit_note_by_source_id(str(credit_id))
    assert note is not None
    assert note.id == credit.nomi_record_id
    assert note.applies_to_id == invoice.nomi_record_id
    assert note.total == D("60.00")
    assert world.nomi.find_sales_invoice_by_source_id(str(credit_id)) is None


def test_a_credit_note_and_the_invoice_it_credits_in_one_batch_publish_linked(
    world: World,
) -> None:
    # The credit note became Ready first, so it is claimed first; the batch still publishes the
    # invoice before it, so the credit links to it instead of waiting in review for it.
    credit_id = world.add(
        ItemKind.SALES,
        document_type="credit_note",
        credits_external_id="INV-2",
        total=D("60.00"),
        tax_amount=D("10.00"),
    )
    world.ready()
    invoice_id = world.add(ItemKind.SALES, external_id="INV-2")
    world.ready()

    result = world.publish(workers=3)

    assert result.count("published") == 2, [(o.outcome, o.message) for o in result.outcomes]
    note = world.nomi.find_customer_credit_note_by_source_id(str(credit_id))
    assert note is not None
    assert note.applies_to_id == world.item(invoice_id).nomi_record_id
    assert [o.item_id for o in result.outcomes] == [credit_id, invoice_id]  # claim order kept


def test_a_credit_note_naming_an_unpublished_item_waits_in_review_naming_it(world: World) -> None:
    world.add(ItemKind.COST, external_id="EXP-9", date=None)  # stays in review: no date
    credit_id = world.add(ItemKind.COST, document_type="credit_note", credits_external_id="EXP-9")
    world.ready()
    assert world.item(credit_id).status == ItemStatus.READY

    result = world.publish()

    assert result.count("held") == 1
    item = world.item(credit_id)
    assert item.status == ItemStatus.REVIEW
    assert any("'EXP-9'" in reason for reason in item.review_reasons), item.review_reasons
    [held] = attempts(world, credit_id)
    assert held.error_code == HoldCode.CREDITED_NOT_PUBLISHED
    assert world.nomi.find_supplier_credit_note_by_source_id(str(credit_id)) is None


def test_a_credit_note_naming_an_unknown_item_publishes_unlinked_with_a_flag(world: World) -> None:
    credit_id = world.add(ItemKind.COST, document_type="credit_note", credits_external_id="NOPE")
    world.ready()

    result = world.publish()

    [outcome] = result.outcomes
    assert outcome.outcome == "published"
    assert any("'NOPE'" in flag and "applies_to" in flag for flag in outcome.flags)
    note = world.nomi.find_supplier_credit_note_by_source_id(str(credit_id))
    assert note is not None
    assert note.applies_to_id is None


def test_a_three_line_expense_sends_each_line_with_its_category(world: World) -> None:
    lines = _lines(
        world.org,
        ("50.00", "10.00", "paper", "453"),
        ("25.00", "5.00", "phone", "489"),
        ("25.00", "5.00", "toner", "453"),
    )
    item_id = world.add(ItemKind.COST, lines=lines, category_edit=None)
    world.ready()

    result = world.publish()

    assert result.count("published") == 1
    expense = world.nomi.find_expense_by_source_id(str(item_id))
    assert expense is not None
    assert expense.total == D("120.00")
    assert expense.category_id is None
    assert [(x.description, x.category_id, x.net_amount, x.tax_amount) for x in expense.lines] == [
        ("paper", world.org.category("453"), D("50.00"), D("10.00")),
        ("phone", world.org.category("489"), D("25.00"), D("5.00")),
        ("toner", world.org.category("453"), D("25.00"), D("5.00")),
    ]
    assert {x.tax_rate_id for x in expense.lines} == {world.org.tax_rate("STD20")}


def test_a_three_line_sales_invoice_has_a_category_per_line(world: World) -> None:
    lines = _lines(
        world.org,
        ("50.00", "10.00", "check-up", "200"),
        ("30.00", "6.00", "cleaning", "200"),
        ("20.00", "4.00", "whitening", "260"),
    )
    lines[2]["category_edit"] = world.org.category("260")  # a line edit wins over the item's
    item_id = world.add(ItemKind.SALES, lines=lines)
    world.ready()

    result = world.publish()

    assert result.count("published") == 1, result.outcomes
    invoice = world.nomi.find_sales_invoice_by_source_id(str(item_id))
    assert invoice is not None
    assert [(x.description, x.amount, x.tax_amount) for x in invoice.lines] == [
        ("check-up", D("60.00"), D("10.00")),
        ("cleaning", D("36.00"), D("6.00")),
        ("whitening", D("24.00"), D("4.00")),
    ]
    assert [x.category_id for x in invoice.lines] == [
        world.org.category("200"),
        world.org.category("200"),
        world.org.category("260"),
    ]


def test_a_eur_receipt_carries_its_rate_or_takes_nomis_and_shows_the_base_total(
    world: World,
) -> None:
    _organisation(world)
    with_rate = world.add(
        ItemKind.COST, document_type="receipt", currency="EUR", exchange_rate=D("0.850000")
    )
    without_rate = world.add(ItemKind.COST, document_type="receipt", currency="EUR")
    world.ready()

    result = world.publish()

    assert result.count("published") == 2, result.outcomes
    given = world.nomi.find_expense_by_source_id(str(with_rate))
    daily = world.nomi.find_expense_by_source_id(str(without_rate))
    assert given is not None
    assert daily is not None
    assert (given.currency, given.exchange_rate, given.base_total) == (
        "EUR",
        D("0.85"),
        D("102.00"),
    )
    assert daily.currency == "EUR"
    assert daily.exchange_rate is not None
    assert daily.exchange_rate != D("0.85")
    assert daily.base_total == (D("120.00") * daily.exchange_rate).quantize(
        D("0.01"), rounding=ROUND_HALF_UP
    )


def test_a_paid_item_with_a_bank_account_in_a_third_currency_is_held_not_sent(
    world: World,
) -> None:
    """A USD sale paid into a EUR account of a GBP organisation: Nomi would refuse it.

    The item became Ready before the organisation was mirrored (its base currency unknown); the
    publish resolves it again with the base currency known and holds it.
    """
    euro = world.org.bank("Old Euro Account")
    world.sandbox.admin.patch(
        f"/tenants/{world.org.tenant_id}/bank-accounts/{euro}", json={"status": "ACTIVE"}
    ).raise_for_status()
    with world.session() as s:
        row = s.exec(select(BankAccount).where(BankAccount.nomi_id == euro)).one()
        row.status = "ACTIVE"
        method = PaymentMethod(
            business_id=world.business_id, name="Euro account", bank_account_nomi_id=euro
        )
        s.add_all([row, method])
        s.commit()
        method_id = method.id
        sterling = bank_method(s, world.business_id, world.org)
        s.commit()
    held_id = world.add(ItemKind.SALES, currency="USD", paid=True, payment_method_id=method_id)
    paid_id = world.add(ItemKind.SALES, currency="USD", paid=True, payment_method_id=sterling)
    world.ready()
    assert world.item(held_id).status == ItemStatus.READY
    _organisation(world)

    result = world.publish()

    assert result.count("published") == 1, result.outcomes
    item = world.item(held_id)
    assert item.status == ItemStatus.REVIEW
    [reason] = item.review_reasons
    assert "EUR" in reason, reason
    assert "USD" in reason, reason
    [held] = attempts(world, held_id)
    assert (held.step, held.error_code) == ("resolve", HoldCode.BANK_CURRENCY)
    assert world.nomi.find_sales_invoice_by_source_id(str(held_id)) is None
    invoice = world.nomi.find_sales_invoice_by_source_id(str(paid_id))
    assert invoice is not None
    assert len(invoice.payments) == 1
    world.ready()  # assessed with the base currency known, it stays in review
    assert world.item(held_id).status == ItemStatus.REVIEW


def test_recovery_by_source_id_ignores_a_voided_record(world: World) -> None:
    item_id = world.add(ItemKind.COST, document_type="credit_note")
    world.ready()
    world.publish()
    first = world.item(item_id).nomi_record_id
    assert first is not None
    api = record_api(world.nomi, "supplier_credit_note")
    assert live_record(api, str(item_id)) is not None

    world.nomi.void_supplier_credit_note(first, uuid.uuid4().hex)

    assert live_record(api, str(item_id)) is None
    assert [n.voided for n in api.find_all(str(item_id))] == [True]


def test_a_paid_credit_note_publishes_without_a_payment_and_says_so(world: World) -> None:
    with world.session() as s:
        method = bank_method(s, world.business_id, world.org)
        s.commit()
    credit_id = world.add(
        ItemKind.SALES, document_type="credit_note", paid=True, payment_method_id=method
    )
    world.ready()

    result = world.publish()

    [outcome] = result.outcomes
    assert outcome.outcome == "published"
    assert CREDIT_NOTE_UNPAID in outcome.flags
    assert not world.item(credit_id).payment_recorded
    assert world.records("payment") == []
    assert [a.step for a in attempts(world, credit_id)] == ["customer_credit_note"]
