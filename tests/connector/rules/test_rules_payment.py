"""The rules engine as a table: payment, other blocks, tax arithmetic, images and auto-publish."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.connector.rules.test_rules_world import READY, check_table_row, row

D = Decimal


TABLE = [
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
    check_table_row(facts, settings, expect)
