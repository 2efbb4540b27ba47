"""The nomi-connector CLI: supplier/customer rules and payment methods (admins only, audited)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select
from typer.testing import Result

from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from tests.connector.admin.conftest import Run


def test_rules_and_payment_methods_are_added_and_listed(run: Run, bright_smile: None) -> None:
    added = run(
        "rules",
        "add",
        "Staples UK",
        "--business",
        "bright-smile",
        "--category",
        "453",
        "--tax-rate",
        "Standard 20%",
        "--payment-method",
        "company credit card",
        "--paid",
        "--actor",
        "owner@bright.example",
    )
    assert added.exit_code == 0, added.output
    customer = run(
        "rules",
        "add",
        "NHS England",
        "--business",
        "bright-smile",
        "--kind",
        "customer",
        "--category",
        "sales",
        "--actor",
        "books@ledger.example",
    )
    assert customer.exit_code == 0, customer.output
    unknown = run(
        "rules",
        "add",
        "X",
        "--business",
        "bright-smile",
        "--payment-method",
        "Cash",
        "--actor",
        "owner@bright.example",
    )
    assert unknown.exit_code == 1
    assert "no payment method 'Cash'" in unknown.output

    rules = run("rules", "list", "--business", "bright-smile").output.splitlines()
    assert rules[0].split("\t") == [
        "kind", "name", "category", "category_id", "tax_rate", "tax_rate_id", "payment_method",
        "description", "paid", "auto_publish", "source",
    ]  # fmt: skip
    assert (
        "supplier\tStaples UK\t453 Office Expenses\tcat-453\tSTD20 Standard 20%\ttax-20\t"
        "Company credit card\t-\ttrue\t-\tuser"
    ) in rules
    assert "customer\tNHS England\t200 Sales\tcat-200\t-\t-\t-\t-\t-\t-\tuser" in rules
    methods = run("payment-methods", "list", "--business", "bright-smile").output.splitlines()
    assert methods[0] == "name\tbank_account\tbank_account_id"
    assert "Company credit card\tCompany Credit Card\tbank-3" in methods


def test_rules_and_payment_methods_are_changed_by_admins_only_and_audited(
    run: Run, bright_smile: None, database_url: str
) -> None:
    """Rules and payment methods decide what items publish as: managing the connection."""
    refused_rule = run(
        "rules",
        "add",
        "Staples UK",
        "--business",
        "bright-smile",
        "--category",
        "cat-453",
        "--auto-publish",
        "--actor",
        "clerk@bright.example",
    )
    assert refused_rule.exit_code == 1
    assert (
        "user clerk@bright.example may not perform 'rules.add' on business 'bright-smile'"
        in refused_rule.output
    )
    refused_method = run(
        "payment-methods",
        "add",
        "Petty cash",
        "--business",
        "bright-smile",
        "--actor",
        "clerk@bright.example",
    )
    assert refused_method.exit_code == 1
    assert "may not perform 'payment_methods.add'" in refused_method.output
    assert "Traceback" not in refused_rule.output + refused_method.output
    assert "Staples UK" not in run("rules", "list", "--business", "bright-smile").output
    assert "Petty cash" not in run("payment-methods", "list", "--business", "bright-smile").output

    allowed = run(
        "rules",
        "add",
        "Staples UK",
        "--business",
        "bright-smile",
        "--category",
        "cat-453",
        "--auto-publish",
        "--actor",
        "books@ledger.example",
    )
    assert allowed.exit_code == 0, allowed.output

    engine = make_engine(database_url)
    with Session(engine) as db:
        audit = db.exec(
            select(AuditLog)
            .where(col(AuditLog.action).in_(["rules.add", "payment_methods.add"]))
            .order_by(col(AuditLog.at))
        ).all()
    engine.dispose()
    # The fixture's two payment methods (admin, accountant), then this test's three attempts.
    assert [(a.action, a.allowed) for a in audit] == [
        ("payment_methods.add", True),
        ("payment_methods.add", True),
        ("rules.add", False),
        ("payment_methods.add", False),
        ("rules.add", True),
    ]
    assert audit[-1].detail["name"] == "Staples UK"
    assert audit[-1].detail["category_nomi_id"] == "cat-453"
    assert audit[-1].detail["auto_publish"] is True
    assert audit[-1].detail["role"] == "accountant"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--category", "=cmd|' /C calc'!A0"), "no category '=cmd|' /C calc'!A0'"),
        (("--category", "Office"), "close matches: 'Office Expenses' (code 453)"),
        (("--category", "Rent"), "no category 'Rent'"),
        (("--tax-rate", "x" * 100), "no tax rate 'xxxx"),
        (("--tax-rate", "Standard 20"), "close matches: 'Standard 20%' (code STD20)"),
    ],
)
def test_a_rule_with_a_bad_value_is_refused_by_name_and_nothing_is_written(
    run: Run, bright_smile: None, database_url: str, args: tuple[str, str], named: str
) -> None:
    refused = run(
        "rules",
        "add",
        "Staples UK",
        "--business",
        "bright-smile",
        *args,
        "--actor",
        "owner@bright.example",
    )
    assert refused.exit_code == 1
    assert named in refused.output
    # the library names the value in words, the CLI adds its option
    assert refused.output.rstrip().endswith(f"(option {args[0]})")
    assert "Traceback" not in refused.output
    assert "Staples UK" not in run("rules", "list", "--business", "bright-smile").output
    engine = make_engine(database_url)
    with Session(engine) as db:
        audited = db.exec(select(AuditLog).where(AuditLog.action == "rules.add")).all()
    engine.dispose()
    assert audited == []


def test_a_payment_method_with_a_malformed_bank_account_is_refused(
    run: Run, bright_smile: None
) -> None:
    refused = run(
        "payment-methods",
        "add",
        "Petty cash",
        "--business",
        "bright-smile",
        "--bank-account",
        "@SUM(A1)",
        "--actor",
        "owner@bright.example",
    )
    assert refused.exit_code == 1
    assert "no bank account '@SUM(A1)' in business 'bright-smile'" in refused.output
    assert refused.output.rstrip().endswith("(option --bank-account)")
    assert "Petty cash" not in run("payment-methods", "list", "--business", "bright-smile").output


def test_a_rule_is_removed_by_an_admin_only_and_removing_it_again_names_the_problem(
    run: Run, bright_smile: None, database_url: str
) -> None:
    def rule(verb: str, actor: str, *extra: str) -> Result:
        return run(
            "rules", verb, "Staples UK", "--business", "bright-smile", *extra, "--actor", actor
        )

    def listed() -> str:
        return str(run("rules", "list", "--business", "bright-smile").output)

    assert rule("add", "owner@bright.example", "--category", "cat-453").exit_code == 0

    refused = rule("remove", "clerk@bright.example")
    assert refused.exit_code == 1
    assert "may not perform 'rules.remove'" in refused.output
    assert "Staples UK" in listed()

    other_kind = rule("remove", "owner@bright.example", "--kind", "customer")
    assert other_kind.exit_code == 1
    assert "no customer rule for 'Staples UK' in business 'bright-smile'" in other_kind.output
    assert "Staples UK" in listed()

    removed = rule("remove", "books@ledger.example")
    assert removed.exit_code == 0, removed.output
    assert "supplier rule for 'Staples UK' removed" in removed.output
    assert "Staples UK" not in listed()

    again = rule("remove", "owner@bright.example")
    assert again.exit_code == 1
    assert "no supplier rule for 'Staples UK'" in again.output

    engine = make_engine(database_url)
    with Session(engine) as db:
        audit = db.exec(
            select(AuditLog).where(AuditLog.action == "rules.remove").order_by(col(AuditLog.at))
        ).all()
    engine.dispose()
    # The refusal, then the removal; the two lookups that found nothing left no trace.
    assert [a.allowed for a in audit] == [False, True]


def test_a_payment_method_named_twice_is_refused_by_name_whatever_the_case(
    run: Run, bright_smile: None
) -> None:
    again = run(
        "payment-methods",
        "add",
        "COMPANY credit card",
        "--business",
        "bright-smile",
        "--actor",
        "owner@bright.example",
    )
    assert again.exit_code == 1
    assert (
        "business 'bright-smile' already has the payment method 'Company credit card'"
        in again.output
    )
    assert "Traceback" not in again.output
    listed = run("payment-methods", "list", "--business", "bright-smile").output
    assert [line.split("\t")[0] for line in listed.splitlines()] == [
        "name", "Business current account", "Company credit card"
    ]  # fmt: skip


def test_payment_methods_are_linked_and_removed_by_admins_only(
    run: Run, bright_smile: None, database_url: str
) -> None:
    """The fixture's "Company credit card" (bank-3) and "Business current account" (none); bank
    accounts are named by name, masked number or Nomi id."""
    method = ("--business", "bright-smile")
    refused = run("payment-methods", "link", "Company credit card", *method,
                  "--bank-account", "bank-9", "--actor", "clerk@bright.example")  # fmt: skip
    assert refused.exit_code == 1
    assert "may not perform 'payment_methods.link'" in refused.output
    refused = run("payment-methods", "remove", "Business current account", *method,
                  "--actor", "clerk@bright.example")  # fmt: skip
    assert refused.exit_code == 1
    assert "may not perform 'payment_methods.remove'" in refused.output
    assert "Traceback" not in refused.output

    owner = ("--actor", "owner@bright.example")
    linked = run("payment-methods", "link", "company credit card", *method,
                 "--bank-account", "business savings", *owner)  # fmt: skip
    assert linked.exit_code == 0, linked.output
    assert "'Company credit card' linked to bank account Business Savings" in linked.output
    by_number = run("payment-methods", "link", "company credit card", *method,
                    "--bank-account", "****1204", "--actor", "owner@bright.example")  # fmt: skip
    assert "linked to bank account Company Credit Card" in by_number.output
    archived = run("payment-methods", "link", "company credit card", *method,
                   "--bank-account", "Old Euro Account", *owner)  # fmt: skip
    assert archived.exit_code == 1
    assert "bank account 'Old Euro Account' (****9051, archived) is archived" in archived.output
    unlinked = run("payment-methods", "link", "Company credit card", *method,
                   "--bank-account", "none", "--actor", "owner@bright.example")  # fmt: skip
    assert "no longer linked to a bank account" in unlinked.output

    ruled = run("rules", "add", "Acme Ltd", *method, "--payment-method", "Company credit card",
                "--actor", "owner@bright.example")  # fmt: skip
    assert ruled.exit_code == 0, ruled.output
    in_use = run("payment-methods", "remove", "Company credit card", *method,
                 "--actor", "owner@bright.example")  # fmt: skip
    assert in_use.exit_code == 1
    assert "'Company credit card' is used by 1 rule(s) (Acme Ltd)" in in_use.output
    removed = run("payment-methods", "remove", "Business current account", *method,
                  "--actor", "books@ledger.example")  # fmt: skip
    assert removed.exit_code == 0, removed.output
    assert run("payment-methods", "list", *method).output.splitlines() == [
        "name\tbank_account\tbank_account_id",
        "Company credit card\t-\t-",
    ]
    missing = run("payment-methods", "remove", "Nope", *method, "--actor", "owner@bright.example")
    assert missing.exit_code == 1
    assert "no payment method 'Nope' in business 'bright-smile'" in missing.output


def test_rules_for_names_in_any_script_are_added_as_separate_rules(
    run: Run, bright_smile: None
) -> None:
    """Issue 15: `rules add "مكتبة النور"` was refused ("a rule needs a supplier or customer")."""
    for name in ("مكتبة النور", "東京デンタル", 'שוקולד טוב בע"מ'):
        added = run(
            "rules",
            "add",
            name,
            "--business",
            "bright-smile",
            "--category",
            "453",
            "--actor",
            "owner@bright.example",
        )
        assert added.exit_code == 0, added.output
    listed = run("rules", "list", "--business", "bright-smile")
    assert listed.exit_code == 0, listed.output
    names = sorted(line.split("\t")[1] for line in listed.output.splitlines()[1:])
    assert names == sorted(["مكتبة النور", "東京デンタル", 'שוקולד טוב בע"מ'])


def test_a_rule_for_an_emoji_only_name_is_refused_saying_why(
    run: Run, bright_smile: None, database_url: str
) -> None:
    refused = run(
        "rules",
        "add",
        "🦷🦷",
        "--business",
        "bright-smile",
        "--category",
        "cat-453",
        "--actor",
        "owner@bright.example",
    )
    assert refused.exit_code == 1
    assert "no letters or digits to match on" in refused.output
    assert "Traceback" not in refused.output
    engine = make_engine(database_url)
    with Session(engine) as db:
        audited = db.exec(select(AuditLog).where(AuditLog.action == "rules.add")).all()
    engine.dispose()
    assert audited == []


def test_a_rule_kind_outside_the_choices_lists_them(run: Run, bright_smile: None) -> None:
    refused = run("rules", "add", "Staples UK", "--business", "bright-smile", "--kind", "vendor",
                  "--actor", "owner@bright.example")  # fmt: skip
    assert refused.exit_code == 2
    said = " ".join(refused.output.replace("│", " ").split())  # as wrapped in the error box
    assert "'vendor' is not one of 'supplier', 'customer'" in said
    by_case = run("rules", "add", "NHS England", "--business", "bright-smile", "--kind",
                  "CUSTOMER", "--category", "200", "--actor", "owner@bright.example")  # fmt: skip
    assert by_case.exit_code == 0, by_case.output
    assert "customer rule for 'NHS England' saved" in by_case.output
