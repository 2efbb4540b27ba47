"""The rules engine as a table: validity of tax rates and categories, contacts; rule changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.rules.engine import resolve
from connector.rules.facts import ContactRule, ItemFacts
from tests.connector.rules.test_rules_world import READY, check_table_row, context, item, row

D = Decimal


TABLE = [
    # Tax rate validity.
    row(
        "a sales only tax rate on a cost item blocks it",
        {"tax_rate_id": "sales20"},
        {"status": "review", "reasons": ["applies to sales only"], "tax_rate_id": None},
    ),
    row(
        "a purchases only tax rate on a sales item blocks it",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "tax_rate_id": "purch20"},
        {
            "status": "review",
            "reasons": ["applies to purchases only and cannot be used on a sales"],
        },
    ),
    row(
        "an archived tax rate blocks the item",
        {"tax_rate_id": "old17"},
        {"status": "review", "reasons": ["'VAT 17.5% (old)' (set on the item) is archived"]},
    ),
    row(
        "a tax rate that does not exist blocks the item",
        {"tax_rate_id": "ghost"},
        {"status": "review", "reasons": ["does not exist in Nomi"]},
    ),
    row(
        "an archived default tax rate blocks the item",
        {},
        {"status": "review", "reasons": ["(the default tax) is archived"]},
        default_tax_costs="old17",
    ),
    row(
        "an archived rate from a user rule names the rule",
        {"contact_name": "Acme Ltd"},
        {"status": "review", "reasons": ["from the supplier rule for 'Acme Ltd'"]},
        rules=(ContactRule("supplier", "Acme Ltd", "user", tax_rate_id="old17"),),
    ),
    # Category validity.
    row(
        "an archived category blocks the item",
        {"category_id": "cat-old"},
        {"status": "review", "reasons": ["category 'Old expenses' (set on the item) is archived"]},
    ),
    row(
        "an income category on a cost item blocks it",
        {"category_id": "cat-sales"},
        {"status": "review", "reasons": ["is not an expense category"]},
    ),
    row(
        "an expense category on a sales item blocks it",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "category_id": "cat-office"},
        {"status": "review", "reasons": ["is not an income category"]},
    ),
    row(
        "a category that does not exist blocks the item",
        {"category_id": "cat-ghost"},
        {"status": "review", "reasons": ["category 'cat-ghost' (set on the item) does not exist"]},
    ),
    # Contacts.
    row(
        "an unknown supplier is held back under warn_new_supplier",
        {"contact_name": "Newco Widgets"},
        {"status": "review", "reasons": ["new supplier 'Newco Widgets' is not in Nomi"]},
        warn_new_supplier=True,
    ),
    row(
        "an unknown supplier is created when warn_new_supplier is off",
        {"contact_name": "Newco Widgets"},
        {
            **READY,
            "contact_id": None,
            "new_contact_name": "Newco Widgets",
            "sources": {"contact": "new_contact"},
        },
    ),
    row(
        "a confirmed new supplier is created under warn_new_supplier",
        {"contact_name": "Newco Widgets", "confirmed_new_contact": True},
        {
            **READY,
            "new_contact_name": "Newco Widgets",
            "sources": {"contact": "confirmed_new_contact"},
        },
        warn_new_supplier=True,
    ),
    row(
        "an unknown supplier mapped to an existing one publishes to it",
        {"contact_name": "Bolt Supplies UK", "mapped_contact_id": "sup-bolt"},
        {
            **READY,
            "contact_id": "sup-bolt",
            "new_contact_name": None,
            "sources": {"contact": "user_mapping"},
        },
        warn_new_supplier=True,
    ),
    row(
        "a mapping picks up the rules of the mapped supplier",
        {"contact_name": "ACME Trading", "mapped_contact_id": "sup-acme", "category_id": None},
        {**READY, "contact_id": "sup-acme", "category_id": "cat-travel"},
    ),
    row(
        "a mapping to an archived supplier blocks the item",
        {"contact_name": "Whoever", "mapped_contact_id": "sup-gone"},
        {"status": "review", "reasons": ["mapped to is archived"]},
    ),
    row(
        "a supplier that is archived in nomi blocks the item",
        {"contact_name": "Gone Trading"},
        {"status": "review", "reasons": ["supplier 'Gone Trading' is archived in Nomi"]},
    ),
    row(
        "an unknown customer is created even under warn_new_supplier",
        {"kind": "sales", "contact_name": "New Cafe", "category_id": "cat-sales"},
        {**READY, "new_contact_name": "New Cafe", "sources": {"contact": "new_contact"}},
        warn_new_supplier=True,
    ),
    row(
        "a sales item without a customer blocks it",
        {"kind": "sales", "contact_name": None, "category_id": "cat-sales"},
        {"status": "review", "reasons": ["no customer"]},
    ),
    row(
        "a cost item without a supplier publishes without a contact",
        {"contact_name": ""},
        {**READY, "contact_id": None, "new_contact_name": None, "sources": {"contact": "none"}},
        warn_new_supplier=True,
    ),
]


@pytest.mark.parametrize(("facts", "settings", "expect"), TABLE)
def test_rules_table(
    facts: dict[str, Any], settings: dict[str, Any], expect: dict[str, Any]
) -> None:
    check_table_row(facts, settings, expect)


def test_a_later_rule_change_reapplies_but_never_overwrites_an_item_edit() -> None:
    before = context()
    changed = context(
        rules=(
            ContactRule(
                "supplier", "Acme Ltd", "user", category_id="cat-office", tax_rate_id="std20"
            ),
        )
    )
    plain = item(contact_name="Acme Ltd", category_id=None)
    edited = item(contact_name="Acme Ltd", category_id="cat-travel", tax_rate_id="zero")

    assert resolve(plain, before).category_id == "cat-travel"
    assert resolve(plain, before).tax_rate_id == "red5"
    after = resolve(plain, changed)
    assert (after.category_id, after.tax_rate_id) == ("cat-office", "std20")
    assert after.sources["category"] == "user_rule"

    kept = resolve(edited, changed)
    assert (kept.category_id, kept.tax_rate_id) == ("cat-travel", "zero")
    assert kept.sources["category"] == kept.sources["tax_rate"] == "item"


def test_a_rule_removed_later_sends_an_item_back_to_review() -> None:
    plain = item(contact_name="Acme Ltd", category_id=None)
    assert resolve(plain, context()).is_ready
    res = resolve(plain, context(rules=()))
    assert res.status == "review"
    assert res.reasons == (
        "no category: set one on the item or add a supplier rule for 'Acme Ltd'",
    )


def test_several_active_suppliers_with_one_normalised_name_need_a_mapping() -> None:
    from dataclasses import replace

    from connector.rules.facts import ContactRef

    ctx = context()
    twins = replace(ctx, suppliers=(*ctx.suppliers, ContactRef("sup-acme2", "ACME Limited")))
    assert resolve(item(contact_name="Acme Ltd"), twins).contact_id == "sup-acme"
    res = resolve(item(contact_name="Acme"), twins)
    assert res.status == "review"
    assert "several Nomi suppliers match 'Acme'" in res.reasons[0]


def test_an_unknown_item_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown item kind 'invoice'"):
        ItemFacts(kind="invoice")


def test_money_rounds_half_up_to_the_penny_and_refuses_floats() -> None:
    from connector.rules.money import split_gross, tax_in_gross, to_money

    assert to_money("2.345") == D("2.35")
    assert to_money(D("-2.345")) == D("-2.35")
    assert tax_in_gross(D("0.03"), D("20")) == D("0.01")  # 0.005 rounds up
    assert split_gross(D("10"), D("1.666")) == (D("8.33"), D("1.67"))
    with pytest.raises(TypeError, match="not a float"):
        to_money(0.1)  # type: ignore[arg-type]


def test_names_in_every_script_resolve_to_their_own_contact_and_rule() -> None:
    """Issue 15: every non-Latin name shared the key '' and matched the first such contact."""
    from dataclasses import replace

    from connector.rules.facts import ContactRef

    suppliers = (
        ContactRef("sup-arabic", "مطعم الشرق"),
        ContactRef("sup-hebrew", 'שוקולד טוב בע"מ'),
        ContactRef("sup-tokyo", "東京デンタル"),
    )
    rules = (ContactRule("supplier", "東京デンタル", "user", category_id="cat-office"),)
    ctx = replace(context(rules=rules), suppliers=suppliers)
    for written, contact in [
        ("مطعم الشرق", "sup-arabic"),
        ("שוקולד טוב בע״מ", "sup-hebrew"),
        ("東京デンタル", "sup-tokyo"),
    ]:
        res = resolve(item(contact_name=written), ctx)
        assert res.contact_id == contact, (written, res)
    tokyo = resolve(item(contact_name="東京デンタル", category_id=None), ctx)
    assert (tokyo.category_id, tokyo.sources["category"]) == ("cat-office", "user_rule")
    other = resolve(item(contact_name="東京文具", category_id=None), ctx)
    assert other.sources["category"] == "none"  # the Tokyo rule is not another supplier's rule
    new = resolve(item(contact_name="東京文具"), ctx)
    assert (new.contact_id, new.new_contact_name) == (None, "東京文具")


def test_an_item_whose_contact_name_has_no_letters_goes_to_review_unless_mapped() -> None:
    from dataclasses import replace

    from connector.rules.facts import ContactRef

    suppliers = (ContactRef("sup-tooth", "🦷"), ContactRef("sup-bolt", "Bolt Supplies"))
    ctx = replace(context(), suppliers=suppliers)
    res = resolve(item(contact_name="🦷🦷", confirmed_new_contact=True), ctx)
    assert res.status == "review"
    assert any("has no letters or digits to match on" in r for r in res.reasons), res.reasons
    assert res.new_contact_name is None
    assert res.contact_id is None
    mapped = resolve(item(contact_name="🦷🦷", mapped_contact_id="sup-bolt"), ctx)
    assert mapped.is_ready
    assert mapped.contact_id == "sup-bolt"
