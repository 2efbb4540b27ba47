"""A small, fixed Nomi world and the table helpers shared by the rules tests (no tests here)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from connector.rules.engine import resolve
from connector.rules.facts import (
    BankAccountRef,
    CategoryRef,
    ContactRef,
    ContactRule,
    ItemFacts,
    PaymentMethodRef,
    Resolution,
    RulesContext,
    RulesSettings,
    TaxRateRef,
)

TAX_RATES = (
    TaxRateRef("std20", "VAT 20%", Decimal("20"), "BOTH"),
    TaxRateRef("zero", "Zero rated", Decimal("0"), "BOTH"),
    TaxRateRef("red5", "Reduced 5%", Decimal("5"), "PURCHASES"),
    TaxRateRef("sales20", "VAT on sales 20%", Decimal("20"), "SALES"),
    TaxRateRef("purch20", "VAT on purchases 20%", Decimal("20"), "PURCHASES"),
    TaxRateRef("old17", "VAT 17.5% (old)", Decimal("17.5"), "BOTH", active=False),
)
CATEGORIES = (
    CategoryRef("cat-office", "Office costs", "EXPENSE"),
    CategoryRef("cat-travel", "Travel", "EXPENSE"),
    CategoryRef("cat-old", "Old expenses", "EXPENSE", active=False),
    CategoryRef("cat-sales", "Sales", "INCOME"),
    CategoryRef("cat-consult", "Consulting income", "INCOME"),
)
SUPPLIERS = (
    ContactRef("sup-acme", "Acme Ltd"),
    ContactRef("sup-bolt", "Bolt Supplies"),
    ContactRef("sup-gone", "Gone Trading", active=False),
)
CUSTOMERS = (ContactRef("cus-harbour", "Harbour Coffee Co"),)
BANKS = (
    BankAccountRef("bank-main", "Main account"),
    BankAccountRef("bank-old", "Old", active=False),
)
METHODS = (
    PaymentMethodRef("pm-card", "Company card", "bank-main"),
    PaymentMethodRef("pm-cash", "Petty cash", None),
    PaymentMethodRef("pm-oldcard", "Old card", "bank-old"),
)
RULES = (
    ContactRule("supplier", "Acme Ltd", "user", category_id="cat-travel", tax_rate_id="red5"),
    ContactRule("supplier", "Acme Ltd", "nomi", tax_rate_id="std20"),
    ContactRule(
        "customer", "Harbour Coffee Co", "user", category_id="cat-sales", tax_rate_id="sales20"
    ),
    ContactRule(
        "supplier",
        "Paid Supplies",
        "user",
        category_id="cat-office",
        paid=True,
        payment_method_id="pm-card",
        description="Stationery",
        auto_publish=False,
    ),
)
SETTINGS = RulesSettings(
    warn_new_supplier=False,
    publish_images_with_expense_claims=False,
    use_tax_list=True,
    use_supplier_tax_rates=False,
    default_tax_costs="purch20",
    default_zero_tax_code_costs="zero",
    default_tax_sales="sales20",
    default_zero_tax_code_sales="zero",
    auto_publish=False,
)


def context(rules: tuple[ContactRule, ...] = RULES, **settings: Any) -> RulesContext:
    """The fixed world with some settings overridden."""
    return RulesContext(
        settings=dataclasses.replace(SETTINGS, **settings),
        suppliers=SUPPLIERS,
        customers=CUSTOMERS,
        categories=CATEGORIES,
        tax_rates=TAX_RATES,
        bank_accounts=BANKS,
        rules=rules,
        payment_methods=METHODS,
    )


def item(**fields: Any) -> ItemFacts:
    """A complete item (a cost from Bolt Supplies unless told) with some fields overridden."""
    kind = fields.get("kind", "cost")
    base: dict[str, Any] = {
        "kind": kind,
        "contact_name": "Bolt Supplies",
        "date": dt.date(2025, 3, 1),
        "currency": "GBP",
        "total": Decimal("120.00"),
        "category_id": "cat-sales" if kind == "sales" else "cat-office",
    }
    base.update(fields)
    return ItemFacts(**base)


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


def check_table_row(
    facts: dict[str, Any], settings: dict[str, Any], expect: dict[str, Any]
) -> None:
    """Resolve one table row and check it; a ready resolution also adds up (net + tax = total)."""
    rules = settings.pop("rules", RULES)
    res = resolve(item(**facts), context(rules=rules, **settings))
    check(res, expect)
    if res.is_ready:
        assert res.net is not None
        assert res.tax is not None
        assert res.net + res.tax == res.total
