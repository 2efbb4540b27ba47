"""The rules engine as a table: one named row per rank and interaction of PRODUCT.md."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.rules.engine import resolve
from connector.rules.facts import ContactRule, ItemFacts, Resolution
from tests.connector.rules.test_rules_world import RULES, context, item

D = Decimal


def row(id: str, facts: dict[str, Any], expect: dict[str, Any], **settings: Any) -> Any:
    """One table row: item fields, settings overrides and the expected resolution fields."""
    return pytest.param(facts, settings, expect, id=id)


def check(res: Resolution, expect: dict[str, Any]) -> None:
    """Compare a resolution with the expected fields; reasons/notes are matched by substring."""
    for key, want in expect.items():
        if key == "sources":
            for field_name, source in want.items():
                assert res.sources.get(field_name) == source, (field_name, res.sources)
        elif key in ("reasons", "notes"):
            got = getattr(res, key)
            assert len(got) == len(want), got
            for fragment, text in zip(want, got, strict=True):
                assert fragment in text, (fragment, got)
        else:
            assert getattr(res, key) == want, (key, getattr(res, key), res)


READY = {"status": "ready", "reasons": []}

TABLE = [
    # Rank 1: an edit on the item itself.
    row(
        "an item category edit beats the user supplier rule",
        {"contact_name": "Acme Ltd", "category_id": "cat-office"},
        {**READY, "category_id": "cat-office", "sources": {"category": "item"}},
    ),
    row(
        "an item tax edit beats the nomi supplier rate, the user rule and the defaults",
        {"contact_name": "Acme Ltd", "tax_rate_id": "zero", "extracted_tax": D("20.00")},
        {
            "status": "ready",
            "tax_rate_id": "zero",
            "tax": D("0.00"),
            "net": D("120.00"),
            "sources": {"tax_rate": "item", "tax_amount": "computed"},
        },
        use_supplier_tax_rates=True,
    ),
    row(
        "an item tax edit is ignored when use_tax_list is off and the default applies",
        {"tax_rate_id": "zero"},
        {
            **READY,
            "tax_rate_id": "purch20",
            "sources": {"tax_rate": "default_tax"},
            "notes": ["ignored because 'Use tax list' is off"],
        },
        use_tax_list=False,
    ),
    # Rank 2: a supplier rule imported from Nomi.
    row(
        "a nomi supplier rate beats the user rule and a zero extracted tax",
        {"contact_name": "Acme Ltd", "category_id": None, "extracted_tax": D("0")},
        {
            "status": "ready",
            "tax_rate_id": "std20",
            "category_id": "cat-travel",
            "tax": D("20.00"),
            "sources": {"tax_rate": "nomi_supplier_rule", "category": "user_rule"},
        },
        use_supplier_tax_rates=True,
    ),
    row(
        "a nomi supplier rate is not used when use_supplier_tax_rates is off",
        {"contact_name": "Acme Ltd"},
        {**READY, "tax_rate_id": "red5", "sources": {"tax_rate": "user_rule"}},
        use_supplier_tax_rates=False,
    ),
    row(
        "a nomi supplier rate applies even when use_tax_list is off",
        {"contact_name": "Acme Ltd"},
        {**READY, "tax_rate_id": "std20", "sources": {"tax_rate": "nomi_supplier_rule"}},
        use_supplier_tax_rates=True,
        use_tax_list=False,
    ),
    # Rank 3: a user supplier or customer rule.
    row(
        "a user supplier rule sets category and tax rate",
        {"contact_name": "Acme Ltd", "category_id": None},
        {
            **READY,
            "category_id": "cat-travel",
            "tax_rate_id": "red5",
            "tax": D("5.71"),
            "net": D("114.29"),
            "sources": {"category": "user_rule", "tax_rate": "user_rule"},
        },
    ),
    row(
        "a user rule tax rate is ignored when use_tax_list is off but its category applies",
        {"contact_name": "Acme Ltd", "category_id": None},
        {
            **READY,
            "category_id": "cat-travel",
            "tax_rate_id": "purch20",
            "sources": {"category": "user_rule", "tax_rate": "default_tax"},
        },
        use_tax_list=False,
    ),
    row(
        "a user customer rule sets category and tax rate on a sales item",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "category_id": None},
        {
            **READY,
            "contact_id": "cus-harbour",
            "category_id": "cat-sales",
            "tax_rate_id": "sales20",
            "sources": {"category": "user_rule", "tax_rate": "user_rule"},
        },
    ),
    row(
        "a supplier rule matches a differently written name",
        {"contact_name": "ACME limited.", "category_id": None},
        {**READY, "contact_id": "sup-acme", "category_id": "cat-travel"},
    ),
    # Tax at 0% is 0 (issue 15): the penny tolerance never applies to a zero rate.
    row(
        "a zero rate from a customer rule publishes 0 tax although a penny was extracted",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "category_id": None,
            "total": D("0.11"),
            "extracted_tax": D("0.01"),
        },
        {
            **READY,
            "tax_rate_id": "zero",
            "tax": D("0.00"),
            "net": D("0.11"),
            "total": D("0.11"),
            "sources": {"tax_rate": "user_rule", "tax_amount": "computed"},
            "notes": [
                "extracted tax 0.01 is not published: 'Zero rated' is a 0% rate: 0 tax is published"
            ],
        },
        rules=(ContactRule("customer", "Harbour Coffee Co", "user", "cat-sales", "zero"),),
    ),
    row(
        "a zero rate publishes 0 tax for an extracted tax within the tolerance of several lines",
        {"tax_rate_id": "zero", "extracted_tax": D("0.03"), "line_count": 4},
        {
            **READY,
            "tax": D("0.00"),
            "net": D("120.00"),
            "notes": [
                "extracted tax 0.03 is not published: 'Zero rated' is a 0% rate: 0 tax is published"
            ],
        },
    ),
    # Rank 4: extracted tax amount is 0.
    row(
        "a zero extracted tax on a cost item uses the zero tax code for costs",
        {"extracted_tax": D("0.00")},
        {
            **READY,
            "tax_rate_id": "zero",
            "tax": D("0.00"),
            "net": D("120.00"),
            "sources": {"tax_rate": "default_zero_tax", "tax_amount": "extracted"},
        },
    ),
    row(
        "a zero extracted tax on a sales item uses the zero tax code for sales",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "category_id": "cat-consult",
            "extracted_tax": D("0"),
        },
        {**READY, "tax_rate_id": "zero", "sources": {"tax_rate": "default_zero_tax"}},
        rules=(),
        default_zero_tax_code_sales="zero",
    ),
    row(
        "a blank extracted tax is not zero and falls to the default tax",
        {"extracted_tax": None},
        {
            **READY,
            "tax_rate_id": "purch20",
            "tax": D("20.00"),
            "sources": {"tax_rate": "default_tax"},
        },
    ),
    row(
        "a zero extracted tax without a zero tax code falls to the default tax",
        {"extracted_tax": D("0")},
        {
            **READY,
            "tax_rate_id": "purch20",
            "tax": D("20.00"),
            "sources": {"tax_rate": "default_tax", "tax_amount": "computed"},
            "notes": ["does not match"],
        },
        default_zero_tax_code_costs=None,
    ),
    # Rank 5: default tax for costs / sales.
    row(
        "the default tax for costs applies and tax is computed from the total",
        {},
        {
            **READY,
            "tax_rate_id": "purch20",
            "tax": D("20.00"),
            "net": D("100.00"),
            "total": D("120.00"),
            "sources": {"tax_rate": "default_tax", "tax_amount": "computed"},
        },
    ),
    row(
        "the default tax for sales applies to a sales item",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "category_id": "cat-consult"},
        {**READY, "tax_rate_id": "sales20", "sources": {"tax_rate": "default_tax"}},
        rules=(),
    ),
    row(
        "an expense claim uses the cost defaults",
        {"kind": "expense_claim", "claimant": "user-42"},
        {**READY, "tax_rate_id": "purch20", "sources": {"tax_rate": "default_tax"}},
    ),
    row(
        "an expense claim with zero extracted tax uses the zero tax code for costs",
        {"kind": "expense_claim", "claimant": "user-42", "extracted_tax": D("0")},
        {**READY, "tax_rate_id": "zero", "sources": {"tax_rate": "default_zero_tax"}},
        default_zero_tax_code_sales=None,
    ),
    # Rank 6: nothing.
    row(
        "with no default a cost item publishes with no tax",
        {"extracted_tax": D("20.00")},
        {
            **READY,
            "tax_rate_id": None,
            "tax": D("0.00"),
            "net": D("120.00"),
            "sources": {"tax_rate": "none", "tax_amount": "none"},
            "notes": ["extracted tax 20.00 is not published"],
        },
        default_tax_costs=None,
    ),
    row(
        "an item with no category stays in review",
        {"category_id": None},
        {
            "status": "review",
            "reasons": [
                "no category: set one on the item or add a supplier rule for 'Bolt Supplies'"
            ],
            "sources": {"category": "none"},
        },
    ),
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
    # Payment.
    row(
        "a paid sales item with a linked bank account publishes a payment into it",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "paid": True,
            "payment_method_id": "pm-card",
        },
        {
            **READY,
            "paid": True,
            "bank_account_id": "bank-main",
            "sources": {"bank_account": "payment_method"},
        },
    ),
    row(
        "a paid sales item without a linked bank account publishes unpaid with a note",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "paid": True,
            "payment_method_id": "pm-cash",
        },
        {
            **READY,
            "paid": False,
            "bank_account_id": None,
            "notes": ["not linked to a Nomi bank account"],
        },
    ),
    row(
        "a paid item without a payment method publishes unpaid with a note",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "paid": True},
        {**READY, "paid": False, "notes": ["has no payment method"]},
    ),
    row(
        "a paid sales item whose payment method links an archived bank account blocks it",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "paid": True,
            "payment_method_id": "pm-oldcard",
        },
        {"status": "review", "reasons": ["linked to a Nomi bank account that is archived"]},
    ),
    row(
        "a paid cost item with a linked bank account is paid from it",
        {"paid": True, "payment_method_id": "pm-card"},
        {**READY, "paid": True, "bank_account_id": "bank-main"},
    ),
    row(
        "an unpaid item ignores its payment method's bank account",
        {"paid": False, "payment_method_id": "pm-card"},
        {**READY, "paid": False, "bank_account_id": None, "payment_method_id": "pm-card"},
    ),
    row(
        "a paid expense claim publishes unpaid",
        {
            "kind": "expense_claim",
            "claimant": "user-1",
            "paid": True,
            "payment_method_id": "pm-card",
        },
        {
            **READY,
            "paid": False,
            "bank_account_id": None,
            "notes": ["expense claims are published unpaid"],
        },
    ),
    row(
        "a rule's paid flag, payment method and description apply when the item is silent",
        {"contact_name": "Paid Supplies", "category_id": None},
        {
            **READY,
            "paid": True,
            "bank_account_id": "bank-main",
            "description": "Stationery",
            "new_contact_name": "Paid Supplies",
            "sources": {
                "paid": "user_rule",
                "payment_method": "user_rule",
                "description": "user_rule",
            },
        },
    ),
    row(
        "the item's own paid flag and description beat the rule",
        {"contact_name": "Paid Supplies", "paid": False, "description": "Pens"},
        {
            **READY,
            "paid": False,
            "description": "Pens",
            "sources": {"paid": "item", "description": "item"},
        },
    ),
    # Other blocks.
    row(
        "an item without a total is blocked",
        {"total": None},
        {"status": "review", "reasons": ["no total"], "net": None, "tax": None},
    ),
    row(
        "an item without a date is blocked",
        {"date": None},
        {"status": "review", "reasons": ["no date"]},
    ),
    row(
        "an expense claim without a claimant is blocked",
        {"kind": "expense_claim", "claimant": "  "},
        {"status": "review", "reasons": ["without a claimant"]},
    ),
    row(
        "every blocking reason is listed at once",
        {"total": None, "date": None, "category_id": "cat-old", "tax_rate_id": "old17"},
        {"status": "review", "reasons": ["no total", "no date", "category", "tax rate"]},
    ),
    # Tax arithmetic.
    row(
        "an extracted tax within a penny of the rate is published as extracted",
        {"total": D("100.00"), "extracted_tax": D("16.66")},
        {**READY, "tax": D("16.66"), "net": D("83.34"), "sources": {"tax_amount": "extracted"}},
    ),
    row(
        "an extracted tax off by more than the tolerance is replaced by the computed tax",
        {"total": D("100.00"), "extracted_tax": D("16.60")},
        {**READY, "tax": D("16.67"), "net": D("83.33"), "notes": ["publishing the computed 16.67"]},
    ),
    row(
        "the tolerance grows with the number of lines",
        {"total": D("100.00"), "extracted_tax": D("16.64"), "line_count": 3},
        {**READY, "tax": D("16.64"), "sources": {"tax_amount": "extracted"}},
    ),
    # Images and auto-publish.
    row(
        "a cost item's image is attached",
        {"has_image": True},
        {**READY, "attach_image": True},
    ),
    row(
        "an expense claim's image is not attached when the setting is off",
        {"kind": "expense_claim", "claimant": "user-1", "has_image": True},
        {**READY, "attach_image": False},
    ),
    row(
        "an expense claim's image is attached when the setting is on",
        {"kind": "expense_claim", "claimant": "user-1", "has_image": True},
        {**READY, "attach_image": True},
        publish_images_with_expense_claims=True,
    ),
    row(
        "auto publish on covers cost items",
        {},
        {**READY, "auto_publish": True, "sources": {"auto_publish": "setting"}},
        auto_publish=True,
    ),
    row(
        "auto publish on does not cover expense claims",
        {"kind": "expense_claim", "claimant": "user-1"},
        {**READY, "auto_publish": False},
        auto_publish=True,
    ),
    row(
        "a rule's auto publish off beats the account setting",
        {"contact_name": "Paid Supplies"},
        {**READY, "auto_publish": False, "sources": {"auto_publish": "user_rule"}},
        auto_publish=True,
    ),
]


@pytest.mark.parametrize(("facts", "settings", "expect"), TABLE)
def test_rules_table(
    facts: dict[str, Any], settings: dict[str, Any], expect: dict[str, Any]
) -> None:
    rules = settings.pop("rules", RULES)
    res = resolve(item(**facts), context(rules=rules, **settings))
    check(res, expect)
    if res.is_ready:
        assert res.net is not None
        assert res.tax is not None
        assert res.net + res.tax == res.total


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
