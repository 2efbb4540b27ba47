"""Properties of the rules engine over random items, settings, lists and rules (hypothesis)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.rules.engine import resolve
from connector.rules.facts import (
    CategoryRef,
    ContactRef,
    ContactRule,
    ItemFacts,
    LineFacts,
    RulesContext,
    RulesSettings,
    TaxRateRef,
)
from connector.rules.money import tax_in_gross, to_money
from tests.connector.rules.test_rules_world import BANKS, METHODS

RATE_IDS = [f"rate-{n}" for n in range(6)]
CATEGORY_IDS = [f"cat-{n}" for n in range(5)] + ["cat-exp", "cat-inc"]
NAMES = ["Acme Ltd", "Bolt Supplies", "Harbour Coffee Co", "Newco"]
KINDS = ["cost", "sales", "expense_claim"]

mostly_true = st.sampled_from([True, True, True, False])
money = st.decimals(min_value=Decimal("-5000"), max_value=Decimal("1000000"), places=2)
maybe_rate = st.none() | st.sampled_from([*RATE_IDS, "ghost-rate"])
maybe_category = st.none() | st.sampled_from([*CATEGORY_IDS, "ghost-cat"])

tax_rates = st.tuples(
    *[
        st.builds(
            TaxRateRef,
            nomi_id=st.just(rid),
            name=st.just(rid),
            rate=st.decimals(min_value=0, max_value=100, places=2),
            applies_to=st.sampled_from(["BOTH", "PURCHASES", "SALES"]),
            active=mostly_true,
        )
        for rid in RATE_IDS
    ]
)
categories = st.tuples(
    *[
        st.builds(
            CategoryRef,
            nomi_id=st.just(cid),
            name=st.just(cid),
            type=st.sampled_from(["EXPENSE", "INCOME"]),
            active=mostly_true,
        )
        for cid in CATEGORY_IDS[:5]
    ]
).map(
    lambda cats: (
        *cats,
        CategoryRef("cat-exp", "Costs", "EXPENSE"),
        CategoryRef("cat-inc", "Sales", "INCOME"),
    )
)
rules = st.lists(
    st.builds(
        ContactRule,
        contact_kind=st.sampled_from(["supplier", "customer"]),
        name=st.sampled_from(NAMES),
        source=st.sampled_from(["user", "nomi"]),
        category_id=maybe_category,
        tax_rate_id=maybe_rate,
        payment_method_id=st.none() | st.sampled_from(["pm-card", "pm-cash", "pm-oldcard"]),
        paid=st.none() | st.booleans(),
    ),
    max_size=6,
).map(tuple)
rules_settings = st.builds(
    RulesSettings,
    warn_new_supplier=st.booleans(),
    publish_images_with_expense_claims=st.booleans(),
    use_tax_list=st.booleans(),
    use_supplier_tax_rates=st.booleans(),
    default_tax_costs=maybe_rate,
    default_zero_tax_code_costs=maybe_rate,
    default_tax_sales=maybe_rate,
    default_zero_tax_code_sales=maybe_rate,
    auto_publish=st.booleans(),
)
contexts = st.builds(
    RulesContext,
    settings=rules_settings,
    suppliers=st.just((ContactRef("s-acme", "Acme Ltd"), ContactRef("s-bolt", "Bolt Supplies"))),
    customers=st.just((ContactRef("c-harbour", "Harbour Coffee Co"),)),
    categories=categories,
    tax_rates=tax_rates,
    bank_accounts=st.just(BANKS),
    rules=rules,
    payment_methods=st.just(METHODS),
)


@st.composite
def items(draw: Any, **fixed: Any) -> ItemFacts:
    total = draw(money)
    extracted = draw(
        st.none()
        | st.just(Decimal("0"))
        | money
        | st.decimals(min_value=0, max_value=100, places=2).map(lambda r: tax_in_gross(total, r))
    )
    kind = draw(st.sampled_from(KINDS))
    fitting = "cat-inc" if kind == "sales" else "cat-exp"
    fields: dict[str, Any] = {
        "kind": kind,
        "contact_name": draw(st.sampled_from([*NAMES, None])),
        "date": dt.date(2025, 1, 31),
        "total": total,
        "extracted_tax": extracted,
        "category_id": draw(st.just(fitting) | maybe_category),
        "tax_rate_id": draw(maybe_rate),
        "paid": draw(st.none() | st.booleans()),
        "payment_method_id": draw(st.none() | st.sampled_from(["pm-card", "pm-cash"])),
        "claimant": "user-1",
        "confirmed_new_contact": draw(st.booleans()),
        "line_count": draw(st.integers(min_value=1, max_value=4)),
    }
    fields.update(fixed)
    return ItemFacts(**fields)


@settings(max_examples=400, deadline=None)
@given(item=items(), ctx=contexts)
def test_net_plus_tax_equals_the_total_to_the_penny(item: ItemFacts, ctx: RulesContext) -> None:
    res = resolve(item, ctx)
    if res.net is None:
        assert not res.is_ready
        return
    assert res.tax is not None
    assert res.total == to_money(item.total or 0)
    assert res.net + res.tax == res.total
    assert res.net == res.net.quantize(Decimal("0.01"))
    assert res.tax == res.tax.quantize(Decimal("0.01"))
    if res.tax_rate_id is None:
        assert res.tax == 0


zero_heavy_rates = st.sampled_from([Decimal("0"), Decimal("0.00")]) | st.decimals(
    min_value=0, max_value=100, places=2
)


@settings(max_examples=600, deadline=None)
@given(
    rate=zero_heavy_rates,
    total=st.decimals(min_value=Decimal("-500"), max_value=Decimal("5000"), places=2),
    offset=st.sampled_from([Decimal("0"), Decimal("0.01"), Decimal("-0.01"), Decimal("0.02")])
    | st.decimals(min_value=Decimal("-5"), max_value=Decimal("5"), places=2),
    blank=st.booleans(),
    kind=st.sampled_from(KINDS),
    line_count=st.integers(min_value=1, max_value=4),
)
def test_published_tax_is_consistent_with_every_rate(
    rate: Decimal,
    total: Decimal,
    offset: Decimal,
    blank: bool,
    kind: str,
    line_count: int,
) -> None:
    """For every rate: 0% publishes 0 tax; otherwise within the tolerance of the computed tax."""
    ctx = RulesContext(
        settings=RulesSettings(use_tax_list=True),
        categories=(
            CategoryRef("cat-exp", "Costs", "EXPENSE"),
            CategoryRef("cat-inc", "Sales", "INCOME"),
        ),
        tax_rates=(TaxRateRef("the-rate", "The rate", rate, "BOTH"),),
    )
    computed = tax_in_gross(total, rate)
    item = ItemFacts(
        kind=kind,
        contact_name="Acme Ltd",
        date=dt.date(2025, 1, 31),
        total=total,
        extracted_tax=None if blank else computed + offset,
        category_id="cat-inc" if kind == "sales" else "cat-exp",
        tax_rate_id="the-rate",
        claimant="user-1",
        confirmed_new_contact=True,
        line_count=line_count,
    )
    res = resolve(item, ctx)
    assert res.is_ready, res.reasons
    assert res.tax_rate_id == "the-rate"
    assert res.net is not None
    assert res.tax is not None
    assert res.net + res.tax == res.total == to_money(total)
    if rate == 0:
        assert res.tax == 0
        if not blank and computed + offset != 0:
            assert any("is a 0% rate" in note for note in res.notes), res.notes
    else:
        assert abs(res.tax - computed) <= Decimal("0.01") * line_count


@settings(max_examples=400, deadline=None)
@given(item=items(), ctx=contexts)
def test_a_ready_item_never_carries_an_archived_or_wrong_kind_rate_or_category(
    item: ItemFacts, ctx: RulesContext
) -> None:
    res = resolve(item, ctx)
    if not res.is_ready:
        assert res.reasons
        return
    purchases = item.kind != "sales"
    if res.tax_rate_id is not None:
        rate = ctx.tax_rate(res.tax_rate_id)
        assert rate is not None
        assert rate.active
        assert rate.applies_to in ("BOTH", "PURCHASES" if purchases else "SALES")
    assert res.category_id is not None
    category = ctx.category(res.category_id)
    assert category is not None
    assert category.active
    assert category.type == ("EXPENSE" if purchases else "INCOME")


@settings(max_examples=400, deadline=None)
@given(
    item=items(),
    ctx=contexts,
    category=st.sampled_from(CATEGORY_IDS),
    rate=st.sampled_from(RATE_IDS),
)
def test_an_item_level_edit_always_wins(
    item: ItemFacts, ctx: RulesContext, category: str, rate: str
) -> None:
    edited = replace(item, category_id=category, tax_rate_id=rate)
    res = resolve(edited, ctx)
    assert res.sources["category"] == "item"
    if ctx.settings.use_tax_list:
        assert res.sources["tax_rate"] == "item"
    else:
        assert res.sources["tax_rate"] != "item"
    if res.is_ready:
        assert res.category_id == category
        if ctx.settings.use_tax_list:
            assert res.tax_rate_id == rate


def test_the_random_world_reaches_ready_items_with_a_tax_rate() -> None:
    """Guards the properties above against passing vacuously (everything in review)."""
    outcomes: list[tuple[bool, bool]] = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(item=items(), ctx=contexts)
    def sample(item: ItemFacts, ctx: RulesContext) -> None:
        res = resolve(item, ctx)
        outcomes.append((res.is_ready, res.tax_rate_id is not None))

    sample()
    assert sum(ready for ready, _ in outcomes) >= 20
    assert sum(ready and rated for ready, rated in outcomes) >= 5


# --- documents: lines and credit notes (issue 20) ---------------------------------------------

line_amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("50000"), places=2)


@st.composite
def line_facts(draw: Any) -> LineFacts:
    net = draw(line_amounts)
    tax = draw(
        st.none()
        | st.just(Decimal("0"))
        | st.decimals(min_value=0, max_value=30, places=2).map(
            lambda r: to_money(net * r / Decimal(100))
        )
        | line_amounts
    )
    if net + (tax or 0) == 0:
        net = Decimal("0.01")
    return LineFacts(
        net=net,
        tax=tax,
        description=draw(st.none() | st.just("a line")),
        category_id=draw(st.none() | maybe_category),
        tax_rate_id=draw(st.none() | maybe_rate),
    )


@st.composite
def documents(draw: Any) -> ItemFacts:
    """Items with 1 to 6 lines (adding up to the total, now and then a penny off), of any
    document type their kind allows."""
    base = draw(items())
    lines = tuple(draw(st.lists(line_facts(), min_size=1, max_size=6)))
    gross = sum((line.gross for line in lines), Decimal(0))
    off = draw(st.sampled_from([Decimal(0)] * 9 + [Decimal("0.01")]))
    credit = ["credit_note"] * 2 if base.kind != "expense_claim" else []
    kinds = ["invoice", "receipt", *credit]
    return replace(
        base,
        total=gross + off,
        extracted_tax=None,
        lines=lines,
        document_type=draw(st.sampled_from(kinds)),
    )


@settings(max_examples=400, deadline=None)
@given(item=documents(), ctx=contexts)
def test_every_line_and_the_total_add_up_to_the_penny(item: ItemFacts, ctx: RulesContext) -> None:
    res = resolve(item, ctx)
    assert len(res.lines) == len(item.lines)
    for facts, line in zip(item.lines, res.lines, strict=True):
        if line.net is not None:
            assert line.tax is not None
            assert line.net + line.tax == to_money(facts.gross)
            assert line.net == line.net.quantize(Decimal("0.01"))
            assert line.tax == line.tax.quantize(Decimal("0.01"))
            if line.tax_rate_id is None:
                assert line.tax == 0
    if res.net is None:
        assert not res.is_ready
        return
    assert res.tax is not None
    assert res.net == sum(line.net or 0 for line in res.lines)
    assert res.tax == sum(line.tax or 0 for line in res.lines)
    assert res.net + res.tax == res.total == to_money(item.total or 0)


@settings(max_examples=400, deadline=None)
@given(item=documents(), ctx=contexts)
def test_no_ready_line_carries_an_archived_or_wrong_side_rate_or_category(
    item: ItemFacts, ctx: RulesContext
) -> None:
    """The side is the kind's, credit notes included (purchases for costs and claims)."""
    res = resolve(item, ctx)
    if not res.is_ready:
        assert res.reasons
        return
    purchases = item.kind != "sales"
    for line in res.lines:
        if line.tax_rate_id is not None:
            rate = ctx.tax_rate(line.tax_rate_id)
            assert rate is not None
            assert rate.active
            assert rate.applies_to in ("BOTH", "PURCHASES" if purchases else "SALES")
        assert line.category_id is not None
        category = ctx.category(line.category_id)
        assert category is not None
        assert category.active
        assert category.type == ("EXPENSE" if purchases else "INCOME")


@settings(max_examples=400, deadline=None)
@given(
    item=documents(),
    ctx=contexts,
    category=st.sampled_from(CATEGORY_IDS),
    rate=st.sampled_from(RATE_IDS),
    which=st.integers(min_value=0, max_value=5),
)
def test_a_line_edit_always_wins_over_the_item_edit_and_rules(
    item: ItemFacts, ctx: RulesContext, category: str, rate: str, which: int
) -> None:
    n = which % len(item.lines)
    lines = list(item.lines)
    lines[n] = replace(lines[n], category_id=category, tax_rate_id=rate)
    edited = replace(item, lines=tuple(lines), category_id="cat-exp", tax_rate_id="rate-0")
    res = resolve(edited, ctx)
    line = res.lines[n]
    assert line.sources["category"] == "line"
    assert line.sources["tax_rate"] == (
        "line" if ctx.settings.use_tax_list else line.sources["tax_rate"]
    )
    if not ctx.settings.use_tax_list:
        assert line.sources["tax_rate"] not in ("line", "item")
    for other, facts in zip(res.lines, lines, strict=True):
        if facts.category_id is None:
            assert other.sources["category"] == "item"
    if res.is_ready:
        assert line.category_id == category
        if ctx.settings.use_tax_list:
            assert line.tax_rate_id == rate


@settings(max_examples=300, deadline=None)
@given(item=items(), ctx=contexts)
def test_a_receipt_or_a_credit_note_resolves_as_the_invoice_would_but_for_its_type(
    item: ItemFacts, ctx: RulesContext
) -> None:
    """The document type changes no value: a credit note is on its kind's side (claims apart)."""
    invoice = resolve(item, ctx)
    for document_type in ("receipt", "credit_note"):
        other = resolve(replace(item, document_type=document_type), ctx)
        assert other.document_type == document_type
        if document_type == "credit_note" and item.kind == "expense_claim":
            assert not other.is_ready
            continue
        assert replace(other, document_type="invoice", reasons=()) == replace(invoice, reasons=())
        assert len(other.reasons) == len(invoice.reasons)


def test_the_random_documents_reach_ready_items_with_several_lines() -> None:
    """Guards the document properties against passing vacuously."""
    outcomes: list[tuple[bool, int, str]] = []

    @settings(max_examples=1000, deadline=None, database=None, derandomize=True)
    @given(item=documents(), ctx=contexts)
    def sample(item: ItemFacts, ctx: RulesContext) -> None:
        res = resolve(item, ctx)
        outcomes.append((res.is_ready, len(res.lines), item.document_type))

    sample()
    assert sum(ready and lines > 1 for ready, lines, _ in outcomes) >= 5
    assert sum(ready and kind == "credit_note" for ready, _, kind in outcomes) >= 2
