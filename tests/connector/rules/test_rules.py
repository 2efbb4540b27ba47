"""The rules engine as a table: one named row per rank of PRODUCT.md ("Which value wins")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.rules.facts import ContactRule
from tests.connector.rules.test_rules_world import READY, check_table_row, row

D = Decimal


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
]


@pytest.mark.parametrize(("facts", "settings", "expect"), TABLE)
def test_rules_table(
    facts: dict[str, Any], settings: dict[str, Any], expect: dict[str, Any]
) -> None:
    check_table_row(facts, settings, expect)
