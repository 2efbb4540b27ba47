"""The rules engine on documents with lines, credit notes and foreign currency (issue 20)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from connector.rules.engine import resolve
from connector.rules.facts import BankAccountRef, LineFacts, OrganisationRef, RulesContext
from tests.connector.rules.test_rules_world import READY, check, context, item, row

D = Decimal
L = LineFacts


def _lines(res: Any) -> list[dict[str, Any]]:
    return [
        {
            "category_id": line.category_id,
            "tax_rate_id": line.tax_rate_id,
            "net": line.net,
            "tax": line.tax,
            **{f"{k}_source": v for k, v in line.sources.items()},
        }
        for line in res.lines
    ]


LINE_TABLE = [
    row(
        "each line resolves its own category and tax rate: line edit, item edit, rule, default",
        {
            "contact_name": "Acme Ltd",
            "category_id": None,
            "total": D("185.00"),
            "lines": (
                L(D("100.00"), D("20.00"), "Desk", category_id="cat-office", tax_rate_id="std20"),
                L(D("50.00"), D("2.50"), "Train"),  # the Acme rule: cat-travel, red5
                L(D("12.50"), D("0"), "Book", tax_rate_id="zero"),
            ),
        },
        {
            **READY,
            "net": D("162.50"),
            "tax": D("22.50"),
            "total": D("185.00"),
            "category_id": None,  # the lines differ
            "tax_rate_id": None,
            "sources": {"category": "lines", "tax_rate": "lines", "tax_amount": "lines"},
            "lines": [
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "std20",
                    "net": D("100.00"),
                    "tax": D("20.00"),
                    "category_source": "line",
                    "tax_rate_source": "line",
                    "tax_amount_source": "extracted",
                },
                {
                    "category_id": "cat-travel",
                    "tax_rate_id": "red5",
                    "net": D("50.00"),
                    "tax": D("2.50"),
                    "category_source": "user_rule",
                    "tax_rate_source": "user_rule",
                    "tax_amount_source": "extracted",
                },
                {
                    "category_id": "cat-travel",
                    "tax_rate_id": "zero",
                    "net": D("12.50"),
                    "tax": D("0.00"),
                    "category_source": "user_rule",
                    "tax_rate_source": "line",
                    "tax_amount_source": "extracted",
                },
            ],
        },
    ),
    row(
        "the item's edit applies to every line without its own, before rules and defaults",
        {
            "contact_name": "Acme Ltd",
            "category_id": "cat-office",
            "tax_rate_id": "std20",
            "total": D("36.00"),
            "lines": (L(D("10.00"), D("2.00")), L(D("20.00"), D("4.00"), category_id="cat-travel")),
        },
        {
            **READY,
            "tax_rate_id": "std20",  # every line has it
            "category_id": None,
            "lines": [
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "std20",
                    "net": D("10.00"),
                    "tax": D("2.00"),
                    "category_source": "item",
                    "tax_rate_source": "item",
                    "tax_amount_source": "extracted",
                },
                {
                    "category_id": "cat-travel",
                    "tax_rate_id": "std20",
                    "net": D("20.00"),
                    "tax": D("4.00"),
                    "category_source": "line",
                    "tax_rate_source": "item",
                    "tax_amount_source": "extracted",
                },
            ],
        },
    ),
    row(
        "a zero tax on one line picks the zero code for that line only",
        {
            "total": D("22.00"),
            "lines": (L(D("10.00"), D("0")), L(D("10.00"), D("2.00"))),
        },
        {
            **READY,
            "category_id": "cat-office",  # every line has the item's
            "tax": D("2.00"),
            "lines": [
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "zero",
                    "net": D("10.00"),
                    "tax": D("0.00"),
                    "category_source": "item",
                    "tax_rate_source": "default_zero_tax",
                    "tax_amount_source": "extracted",
                },
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "purch20",
                    "net": D("10.00"),
                    "tax": D("2.00"),
                    "category_source": "item",
                    "tax_rate_source": "default_tax",
                    "tax_amount_source": "extracted",
                },
            ],
        },
    ),
    row(
        "a line whose tax does not fit its rate is recomputed from its gross, the total kept",
        {
            "total": D("22.00"),
            "lines": (L(D("10.00"), D("1.00")), L(D("11.00"))),
        },
        {
            **READY,
            "net": D("18.34"),
            "tax": D("3.66"),
            "total": D("22.00"),
            "notes": ["line 1: extracted tax 1.00 does not match 'VAT on purchases 20%' on 11.00"],
            "lines": [
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "purch20",
                    "net": D("9.17"),
                    "tax": D("1.83"),
                    "category_source": "item",
                    "tax_rate_source": "default_tax",
                    "tax_amount_source": "computed",
                },
                {
                    "category_id": "cat-office",
                    "tax_rate_id": "purch20",
                    "net": D("9.17"),
                    "tax": D("1.83"),
                    "category_source": "item",
                    "tax_rate_source": "default_tax",
                    "tax_amount_source": "computed",
                },
            ],
        },
    ),
    row(
        "a line without category, one with a wrong-side rate and one archived: each named",
        {
            "contact_name": "Newco",
            "category_id": None,
            "total": D("3.00"),
            "lines": (
                L(D("1.00")),
                L(D("1.00"), category_id="cat-office", tax_rate_id="sales20"),
                L(D("1.00"), category_id="cat-old"),
            ),
        },
        {
            "status": "review",
            "net": None,
            "reasons": [
                "line 1: no category: set one on the line or the item or add a supplier rule",
                "line 2: tax rate 'VAT on sales 20%' (set on the line) applies to sales only",
                "line 3: category 'Old expenses' (set on the line) is archived",
            ],
        },
        default_tax_costs=None,
    ),
    row(
        "lines that do not add up to the total block the item",
        {"total": D("12.01"), "lines": (L(D("10.00"), D("2.00")),)},
        {"status": "review", "reasons": ["the lines add up to 12.00, not the total 12.01"]},
    ),
    row(
        "a line's tax-rate edit is ignored with a note while use_tax_list is off",
        {"total": D("12.00"), "lines": (L(D("10.00"), D("2.00"), tax_rate_id="zero"),)},
        {
            **READY,
            "tax_rate_id": "purch20",
            "notes": ["line 1: the tax rate set on the line is ignored because 'Use tax list'"],
        },
        use_tax_list=False,
    ),
    # Credit notes: the side of their kind.
    row(
        "a supplier credit note takes a purchases rate from a rule",
        {"contact_name": "Acme Ltd", "category_id": None, "document_type": "credit_note"},
        {
            **READY,
            "document_type": "credit_note",
            "tax_rate_id": "red5",
            "category_id": "cat-travel",
        },
    ),
    row(
        "a sales-only rate cannot be used on a supplier credit note",
        {"document_type": "credit_note", "tax_rate_id": "sales20"},
        {
            "status": "review",
            "reasons": ["applies to sales only and cannot be used on a supplier credit note"],
        },
    ),
    row(
        "a customer credit note takes the customer rule's sales rate",
        {
            "kind": "sales",
            "contact_name": "Harbour Coffee Co",
            "category_id": None,
            "document_type": "credit_note",
        },
        {**READY, "tax_rate_id": "sales20", "category_id": "cat-sales", "tax": D("20.00")},
    ),
    row(
        "a purchases-only rate from a rule cannot be used on a customer credit note",
        {"kind": "sales", "contact_name": "Harbour Coffee Co", "document_type": "credit_note"},
        {
            "status": "review",
            "reasons": [
                "tax rate 'Reduced 5%' (from the customer rule for 'Harbour Coffee Co') applies "
                "to purchases only and cannot be used on a customer credit note"
            ],
        },
        rules=(dataclasses.replace(context().rules[2], tax_rate_id="red5"),),
    ),
    row(
        "an expense category cannot be used on a customer credit note",
        {"kind": "sales", "category_id": "cat-office", "document_type": "credit_note"},
        {"status": "review", "reasons": ["cannot be used on a customer credit note"]},
    ),
    row(
        "an expense claim cannot be a credit note",
        {"kind": "expense_claim", "claimant": "u-1", "document_type": "credit_note"},
        {"status": "review", "reasons": ["an expense claim cannot be a credit note"]},
    ),
    row(
        "a three-line supplier credit note resolves its lines like an invoice",
        {
            "document_type": "credit_note",
            "total": D("36.00"),
            "lines": (L(D("10.00"), D("2.00")), L(D("10.00"), D("2.00")), L(D("10.00"), D("2.00"))),
        },
        {**READY, "tax_rate_id": "purch20", "category_id": "cat-office", "tax": D("6.00")},
    ),
]


@pytest.mark.parametrize(("facts", "settings", "expect"), LINE_TABLE)
def test_lines_and_credits_table(
    facts: dict[str, Any], settings: dict[str, Any], expect: dict[str, Any]
) -> None:
    rules = settings.pop("rules", None)
    ctx = context(**settings) if rules is None else context(rules=rules, **settings)
    res = resolve(item(**facts), ctx)
    want_lines = expect.pop("lines", None)
    check(res, expect)
    if want_lines is not None:
        assert _lines(res) == want_lines
    if res.is_ready:
        assert res.net is not None
        assert res.tax is not None
        assert res.net + res.tax == res.total
        for line in res.lines:
            assert line.net is not None
            assert line.tax is not None
        if res.lines:
            assert (
                sum(
                    line.net + line.tax
                    for line in res.lines
                    if line.net is not None and line.tax is not None
                )
                == res.total
            )


def _world(base: str = "GBP", **settings: Any) -> RulesContext:
    ctx = context(**settings)
    return dataclasses.replace(
        ctx,
        organisation=OrganisationRef(base),
        bank_accounts=(
            BankAccountRef("bank-main", "Main account", currency="GBP"),
            BankAccountRef("bank-old", "Old", active=False),
        ),
    )


CURRENCY_TABLE = [
    pytest.param(
        {"currency": "EUR", "exchange_rate": D("0.853412")},
        "GBP",
        {**READY, "currency": "EUR", "exchange_rate": D("0.853412")},
        id="a foreign item carries the document's exchange rate",
    ),
    pytest.param(
        {"currency": "EUR"},
        "GBP",
        {**READY, "currency": "EUR", "exchange_rate": None, "notes": []},
        id="a foreign item without a rate leaves it to Nomi",
    ),
    pytest.param(
        {"currency": "GBP", "exchange_rate": D("1.2")},
        "GBP",
        {
            **READY,
            "exchange_rate": None,
            "notes": ["exchange rate 1.2 is not published: GBP is the organisation's base"],
        },
        id="a rate on an item in the base currency is not published",
    ),
    pytest.param(
        {"currency": "GBP", "exchange_rate": D("1")},
        "GBP",
        {**READY, "exchange_rate": None, "notes": []},
        id="a rate of 1 in the base currency goes without a note",
    ),
    pytest.param(
        {"currency": "EUR", "exchange_rate": D("0")},
        "GBP",
        {"status": "review", "reasons": ["exchange rate 0 must be more than 0"]},
        id="a rate of 0 blocks the item",
    ),
    pytest.param(
        {"currency": "USD", "paid": True, "payment_method_id": "pm-card"},
        "EUR",
        {
            "status": "review",
            "reasons": [
                "payment method 'Company card' pays from bank account 'Main account' in GBP: an "
                "item in USD is paid from an account in USD or EUR"
            ],
        },
        id="a paid item needs a bank account in its own or the base currency",
    ),
    pytest.param(
        {"currency": "EUR", "paid": True, "payment_method_id": "pm-card"},
        "GBP",
        {**READY, "paid": True, "bank_account_id": "bank-main"},
        id="a bank account in the base currency pays a foreign item",
    ),
    pytest.param(
        {"currency": "GBP", "paid": True, "payment_method_id": "pm-card"},
        "GBP",
        {**READY, "paid": True, "bank_account_id": "bank-main"},
        id="a bank account in the item's currency pays it",
    ),
]


@pytest.mark.parametrize(("facts", "base", "expect"), CURRENCY_TABLE)
def test_currency_table(facts: dict[str, Any], base: str, expect: dict[str, Any]) -> None:
    check(resolve(item(**facts), _world(base)), expect)


def test_without_a_mirrored_organisation_the_rate_and_bank_pass_unchecked() -> None:
    """Before the first sync of the organisation, nothing is known to refuse."""
    ctx = dataclasses.replace(
        context(), bank_accounts=(BankAccountRef("bank-main", "Main", currency="CHF"),)
    )
    res = resolve(
        item(currency="GBP", exchange_rate=D("1.1"), paid=True, payment_method_id="pm-card"), ctx
    )
    assert res.is_ready, res.reasons
    assert (res.exchange_rate, res.bank_account_id) == (D("1.1"), "bank-main")


def test_an_item_without_lines_resolves_exactly_as_before() -> None:
    """No lines: the resolution has none, and the item-level values are the single line's."""
    res = resolve(item(contact_name="Acme Ltd", category_id=None), context())
    assert res.lines == ()
    assert (res.category_id, res.tax_rate_id, res.tax) == ("cat-travel", "red5", D("5.71"))
    assert res.sources["category"] == "user_rule"
