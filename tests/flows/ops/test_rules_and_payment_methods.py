"""manage-contact-rules and manage-payment-methods through the Prefect test server, on SQLite."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from connector.store.models import BankAccount, Category, ContactRule, PaymentMethod, TaxRate
from flows.ops.manage_contact_rules import ContactRuleParams, manage_contact_rules
from flows.ops.manage_payment_methods import PaymentMethodParams, manage_payment_methods
from tests.flows.ops.conftest import OpsBusiness, refusal

pytestmark = pytest.mark.prefect


def test_an_admin_sets_a_supplier_rule_by_names_then_removes_it(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    who = {"business": synced_business.slug, "acting_user": synced_business.admin}
    saved = manage_contact_rules(
        ContactRuleParams(
            **who,
            name="Staples UK",
            category="Office Expenses",
            tax_rate="STD20",
            paid="yes",
            description="Stationery",
        )
    )

    assert saved.startswith("supplier rule for 'Staples UK' saved")
    with db_session_for() as s:
        rule = s.exec(select(ContactRule).where(ContactRule.name == "Staples UK")).one()
        office = s.exec(select(Category).where(Category.code == "453")).one()
        standard = s.exec(select(TaxRate).where(TaxRate.code == "STD20")).one()
        assert (rule.kind, rule.source) == ("supplier", "user")
        assert rule.category_nomi_id == office.nomi_id
        assert rule.tax_rate_nomi_id == standard.nomi_id
        assert rule.paid is True
        assert rule.auto_publish is None  # "not set"
        assert rule.description == "Stationery"

    removed = manage_contact_rules(ContactRuleParams(**who, action="remove", name="staples uk"))
    assert "removed" in removed
    with db_session_for() as s:
        assert s.exec(select(ContactRule).where(ContactRule.source == "user")).first() is None


def test_a_misspelt_category_fails_the_rule_naming_close_matches_and_writes_nothing(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    state = manage_contact_rules(
        ContactRuleParams(
            business=synced_business.slug,
            acting_user=synced_business.admin,
            name="Staples UK",
            category="Ofice Expenses",
        ),
        return_state=True,
    )

    message = refusal(state)
    assert "no category 'Ofice Expenses'" in message
    assert "'Office Expenses' (code 453)" in message
    with db_session_for() as s:
        assert s.exec(select(ContactRule).where(ContactRule.source == "user")).first() is None


def test_an_admin_adds_links_and_removes_a_payment_method_by_bank_account_name(
    synced_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    who = {"business": synced_business.slug, "acting_user": synced_business.admin}
    added = manage_payment_methods(
        PaymentMethodParams(**who, name="Company card", bank_account="Company Credit Card")
    )
    assert added == (
        "payment method 'Company card' added, paid from bank account Company Credit Card"
    )
    linked = manage_payment_methods(
        PaymentMethodParams(**who, action="link", name="company card", bank_account="****7730")
    )
    assert linked.startswith("payment method 'Company card' paid from bank account Business Sav")
    with db_session_for() as s:
        method = s.exec(select(PaymentMethod)).one()
        savings = s.exec(select(BankAccount).where(BankAccount.name == "Business Savings")).one()
        assert method.bank_account_nomi_id == savings.nomi_id

    removed = manage_payment_methods(
        PaymentMethodParams(**who, action="remove", name="Company card")
    )
    assert removed == "payment method 'Company card' removed"
    with db_session_for() as s:
        assert s.exec(select(PaymentMethod)).first() is None


def test_payment_method_refusals_end_the_run_failed_in_one_line(
    ops_business: OpsBusiness, db_session_for: Callable[[], Session]
) -> None:
    member = manage_payment_methods(
        PaymentMethodParams(
            business=ops_business.slug, acting_user=ops_business.member, name="Petty cash"
        ),
        return_state=True,
    )
    assert "payment_methods.add" in refusal(member)
    link = manage_payment_methods(
        PaymentMethodParams(
            business=ops_business.slug,
            acting_user=ops_business.admin,
            action="link",
            name="Petty cash",
        ),
        return_state=True,
    )
    assert "needs a bank account" in refusal(link)
    with db_session_for() as s:
        assert s.exec(select(PaymentMethod)).first() is None
