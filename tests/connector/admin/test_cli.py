"""The nomi-connector CLI, driven through typer's CliRunner on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner, Result

from connector.admin.cli import app
from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import ConnectionSettings, Item, Membership, User
from tests.connector.conftest import commit_elsewhere_before_first_write

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
IMPORTER = ("--actor", "clerk@bright.example")  # a standard member may import
Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(
            app, ["--home", str(tmp_path / "home"), "--database-url", database_url, *args]
        )

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


@pytest.fixture
def bright_smile(run: Run) -> None:
    for args in [
        ("business", "add", "bright-smile", "--name", "Bright Smile Dental Ltd"),
        ("user", "add", "owner@bright.example", "--name", "Owner"),
        ("user", "add", "clerk@bright.example", "--name", "Clerk"),
        ("user", "add", "books@ledger.example", "--name", "Accountant"),
        (
            "member",
            "add",
            "--business",
            "bright-smile",
            "--user",
            "owner@bright.example",
            "--role",
            "admin",
        ),
        (
            "member",
            "add",
            "--business",
            "bright-smile",
            "--user",
            "clerk@bright.example",
            "--role",
            "standard",
            "--actor",
            "owner@bright.example",
        ),
        (
            "member",
            "add",
            "--business",
            "bright-smile",
            "--user",
            "books@ledger.example",
            "--role",
            "accountant",
            "--actor",
            "owner@bright.example",
        ),
        (
            "payment-methods",
            "add",
            "Company credit card",
            "--business",
            "bright-smile",
            "--bank-account",
            "bank-3",
            "--actor",
            "owner@bright.example",
        ),
        (
            "payment-methods",
            "add",
            "Business current account",
            "--business",
            "bright-smile",
            "--actor",
            "books@ledger.example",
        ),
    ]:
        result = run(*args)
        assert result.exit_code == 0, result.output


def test_businesses_are_added_and_listed_and_a_duplicate_is_a_clear_error(run: Run) -> None:
    assert run("business", "add", "acme", "--name", "Acme Ltd").exit_code == 0
    listed = run("business", "list")
    assert "acme\tAcme Ltd" in listed.output

    again = run("business", "add", "acme", "--name", "Acme again")
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert "Traceback" not in again.output


def test_an_admin_changes_settings_and_a_standard_member_is_refused_and_audited(
    run: Run, bright_smile: None, database_url: str
) -> None:
    changed = run(
        "settings",
        "set",
        "--business",
        "bright-smile",
        "--actor",
        "owner@bright.example",
        "auto_publish=true",
        "default_tax_costs=tax-20",
    )
    assert changed.exit_code == 0, changed.output
    by_accountant = run(
        "settings",
        "set",
        "--business",
        "bright-smile",
        "--actor",
        "books@ledger.example",
        "warn_new_supplier=off",
    )
    assert by_accountant.exit_code == 0, by_accountant.output
    refused = run(
        "settings",
        "set",
        "--business",
        "bright-smile",
        "--actor",
        "clerk@bright.example",
        "auto_publish=false",
    )
    assert refused.exit_code == 1
    assert "clerk@bright.example may not perform 'settings.set'" in refused.output
    bad = run(
        "settings",
        "set",
        "--business",
        "bright-smile",
        "--actor",
        "owner@bright.example",
        "colour=blue",
    )
    assert bad.exit_code == 1
    assert "unknown setting 'colour'" in bad.output

    shown = run("settings", "show", "--business", "bright-smile").output
    assert "auto_publish = true" in shown
    assert "default_tax_costs = tax-20" in shown
    assert "warn_new_supplier = false" in shown
    engine = make_engine(database_url)
    with Session(engine) as db:
        audit = db.exec(
            select(AuditLog).where(AuditLog.action == "settings.set").order_by(col(AuditLog.at))
        ).all()
        settings = db.exec(select(ConnectionSettings)).one()
    engine.dispose()
    assert [(a.action, a.allowed) for a in audit] == [
        ("settings.set", True),
        ("settings.set", True),
        ("settings.set", False),
    ]
    assert settings.auto_publish is True


@pytest.mark.parametrize(
    "command",
    [
        ("settings", "set", "auto_publish=true"),
        ("rules", "remove", "Screwfix"),
        ("payment-methods", "add", "Petty cash"),
        ("member", "add", "--user", "clerk@bright.example", "--role", "admin"),
    ],
)
def test_an_unknown_actor_is_refused_and_the_refusal_audited_by_every_command(
    run: Run, bright_smile: None, database_url: str, command: tuple[str, ...]
) -> None:
    refused = run(*command, "--business", "bright-smile", "--actor", " Nobody@Bright.example")
    assert refused.exit_code == 1
    assert "no such user" in refused.output
    assert "Traceback" not in refused.output
    engine = make_engine(database_url)
    with Session(engine) as db:
        refusals = db.exec(select(AuditLog).where(AuditLog.allowed == False)).all()  # noqa: E712
        clerk = db.exec(select(User).where(User.email == "clerk@bright.example")).one()
        role = db.exec(select(Membership.role).where(Membership.user_id == clerk.id)).one()
    engine.dispose()
    [row] = refusals
    assert (
        row.action
        == {
            "settings": "settings.set",
            "rules": f"rules.{command[1]}",
            "payment-methods": f"payment_methods.{command[1]}",
            "member": "members.add",
        }[command[0]]
    )
    assert row.detail["email"] == " Nobody@Bright.example"
    assert row.actor_user_id is None
    assert role == "standard"  # nothing changed


def test_actors_are_matched_trimmed_and_case_folded(run: Run, database_url: str) -> None:
    for args in [
        ("business", "add", "strasse", "--name", "Straße GmbH"),
        ("user", "add", " Anna.Straße@Example.com", "--name", "Anna"),
        (
            "member",
            "add",
            "--business",
            "strasse",
            "--user",
            "anna.strasse@example.com",
            "--role",
            "admin",
        ),
    ]:
        result = run(*args)
        assert result.exit_code == 0, result.output
    again = run("user", "add", "ANNA.STRASSE@example.com", "--name", "Twin")
    assert again.exit_code == 1
    assert "already exists" in again.output
    changed = run(
        "settings",
        "set",
        "--business",
        "strasse",
        "--actor",
        "  ANNA.STRASSE@EXAMPLE.COM ",
        "auto_publish=true",
    )
    assert changed.exit_code == 0, changed.output
    engine = make_engine(database_url)
    with Session(engine) as db:
        [user] = db.exec(select(User)).all()
        allowed = db.exec(select(AuditLog).where(AuditLog.action == "settings.set")).one()
    engine.dispose()
    assert user.email == "anna.strasse@example.com"
    assert (allowed.allowed, allowed.actor_user_id) == (True, user.id)


def test_a_settings_change_waits_its_turn_while_another_connection_commits(
    run: Run, bright_smile: None, database_url: str
) -> None:
    """A publish run commits all the time; the CLI's read-then-write must not fail at once with
    "database is locked" on SQLite."""
    engine = make_engine(database_url)
    try:
        with commit_elsewhere_before_first_write(engine, any_engine=True) as errors:
            changed = run(
                "settings",
                "set",
                "--business",
                "bright-smile",
                "--actor",
                "owner@bright.example",
                "auto_publish=true",
            )
        assert errors == []
        assert changed.exit_code == 0, changed.output
        with Session(engine) as db:
            assert db.exec(select(ConnectionSettings)).one().auto_publish is True
    finally:
        engine.dispose()


def test_rules_and_payment_methods_are_added_and_listed(run: Run, bright_smile: None) -> None:
    added = run(
        "rules",
        "add",
        "Staples UK",
        "--business",
        "bright-smile",
        "--category",
        "cat-453",
        "--tax-rate",
        "tax-20",
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
        "cat-200",
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

    rules = run("rules", "list", "--business", "bright-smile").output
    assert "supplier\tStaples UK\tcategory=cat-453\ttax_rate=tax-20\tpaid=true" in rules
    assert "customer\tNHS England\tcategory=cat-200" in rules
    methods = run("payment-methods", "list", "--business", "bright-smile").output
    assert "Company credit card\tbank_account=bank-3" in methods


def test_items_import_list_and_report_refused_rows(run: Run, bright_smile: None) -> None:
    imported = run(
        "items", "import", str(EXAMPLES / "items.csv"), "--business", "bright-smile", *IMPORTER
    )
    assert imported.exit_code == 0, imported.output
    assert "imported 10, already present 0, refused 0 of 10 rows" in imported.output
    again = run(
        "items", "import", str(EXAMPLES / "items.csv"), "--business", "bright-smile", *IMPORTER
    )
    assert "imported 0, already present 10" in again.output

    bad = run(
        "items", "import", str(EXAMPLES / "bad-items.csv"), "--business", "bright-smile", *IMPORTER
    )
    assert bad.exit_code == 1
    assert "line 6, currency: 'XYZ' is not an ISO 4217 currency code" in bad.output

    listed = run("items", "list", "--business", "bright-smile", "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 10
    assert {r["external_id"] for r in rows} >= {"bs-0001", "bs-0010"}
    review = run("items", "list", "--business", "bright-smile", "--status", "review", "--json")
    assert all(json.loads(line)["status"] == "review" for line in review.output.splitlines())
    wrong = run("items", "list", "--business", "bright-smile", "--status", "lost")
    assert wrong.exit_code == 1
    missing = run("items", "import", "nope.csv", "--business", "bright-smile", *IMPORTER)
    assert missing.exit_code == 1
    assert "file not found" in missing.output


def test_an_item_is_edited_by_a_member_and_refused_to_an_outsider(
    run: Run, bright_smile: None, database_url: str
) -> None:
    assert (
        run(
            "items", "import", str(EXAMPLES / "items.csv"), "--business", "bright-smile", *IMPORTER
        ).exit_code
        == 0
    )
    assert run("user", "add", "stranger@else.example", "--name", "Stranger").exit_code == 0
    edit = ("items", "edit", "bs-0001", "--business", "bright-smile")

    edited = run(*edit, "--actor", "clerk@bright.example", "--category", "cat-office")
    assert edited.exit_code == 0, edited.output
    assert edited.output.startswith("bs-0001: ")
    refused = run(*edit, "--actor", "stranger@else.example", "--category", "cat-other")
    assert refused.exit_code == 1
    assert "stranger@else.example may not perform 'item.edit'" in refused.output
    nothing = run(*edit, "--actor", "clerk@bright.example")
    assert nothing.exit_code == 1
    assert "nothing to change" in nothing.output

    engine = make_engine(database_url)
    with Session(engine) as db:
        item = db.exec(select(Item).where(Item.external_id == "bs-0001")).one()
        audit = db.exec(select(AuditLog).where(AuditLog.action == "item.edit")).all()
    engine.dispose()
    assert item.category_edit == "cat-office"
    assert sorted(a.allowed for a in audit) == [False, True]


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
        (("--category", "=cmd|' /C calc'!A0"), "category takes a Nomi category id"),
        (("--tax-rate", "x" * 100), "tax rate takes a Nomi tax-rate id"),
        (("--kind", "vendor"), "unknown rule kind 'vendor'"),
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
    if args[0] != "--kind":  # the library names the value in words, the CLI adds its option
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
    assert "bank account takes a Nomi bank-account id" in refused.output
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
    assert listed.casefold().count("company credit card") == 1


def test_members_are_changed_by_admins_only_and_the_last_admin_stays(
    run: Run, bright_smile: None, database_url: str
) -> None:
    """Roles decide who manages the connection: a standard member cannot make anyone admin."""
    run("user", "add", "temp@bright.example", "--name", "Temp")
    member = ("member", "add", "--business", "bright-smile")

    no_actor = run(*member, "--user", "clerk@bright.example", "--role", "admin")
    assert no_actor.exit_code == 1
    assert "business 'bright-smile' has admins" in no_actor.output
    assert "must be the acting user to change its members (option --actor)" in no_actor.output
    self_promotion = run(
        *member,
        "--user",
        "clerk@bright.example",
        "--role",
        "admin",
        "--actor",
        "clerk@bright.example",
    )
    assert self_promotion.exit_code == 1
    assert (
        "user clerk@bright.example may not perform 'members.add' on business 'bright-smile'"
        in self_promotion.output
    )
    assert "Traceback" not in no_actor.output + self_promotion.output
    # Still standard: a settings change by the clerk is refused.
    still = run(
        "settings", "set", "auto_publish=true", "--business", "bright-smile",
        "--actor", "clerk@bright.example",
    )  # fmt: skip
    assert still.exit_code == 1

    by_accountant = run(
        *member, "--user", "temp@bright.example", "--role", "standard",
        "--actor", "books@ledger.example",
    )  # fmt: skip
    assert by_accountant.exit_code == 0, by_accountant.output

    # The owner demotes the accountant (the owner stays admin), then cannot demote themself.
    demoted = run(
        *member, "--user", "books@ledger.example", "--role", "standard",
        "--actor", "owner@bright.example",
    )  # fmt: skip
    assert demoted.exit_code == 0, demoted.output
    last = run(
        *member, "--user", "owner@bright.example", "--role", "standard",
        "--actor", "owner@bright.example",
    )  # fmt: skip
    assert last.exit_code == 1
    assert "owner@bright.example is the last admin or accountant of 'bright-smile'" in last.output

    engine = make_engine(database_url)
    with Session(engine) as db:
        audit = db.exec(
            select(AuditLog).where(AuditLog.action == "members.add").order_by(col(AuditLog.at))
        ).all()
        roles = {m.user_id: m.role for m in db.exec(select(Membership))}
        users = {u.email: u.id for u in db.exec(select(User))}
    engine.dispose()
    assert roles[users["owner@bright.example"]] == "admin"
    assert roles[users["clerk@bright.example"]] == "standard"
    assert roles[users["books@ledger.example"]] == "standard"
    # The fixture's bootstrap (owner) and two adds by the owner, then this test's attempts.
    assert [(a.allowed, a.detail.get("bootstrap", False)) for a in audit] == [
        (True, True),
        (True, False),
        (True, False),
        (False, False),
        (True, False),
        (True, False),
    ]
    assert audit[-1].detail["role"] == "standard"
    assert audit[-1].detail["member_user_id"] == str(users["books@ledger.example"])


def test_a_new_business_starts_with_an_admin(run: Run) -> None:
    """The first admin needs no actor; a standard member cannot come first."""
    for args in [
        ("business", "add", "new-co", "--name", "New Co"),
        ("user", "add", "staff@new.example", "--name", "Staff"),
        ("user", "add", "boss@new.example", "--name", "Boss"),
    ]:
        assert run(*args).exit_code == 0
    first = run(
        "member", "add", "--business", "new-co", "--user", "staff@new.example", "--role", "standard"
    )
    assert first.exit_code == 1
    assert "business 'new-co' has no admin yet" in first.output
    boss = run(
        "member", "add", "--business", "new-co", "--user", "boss@new.example", "--role", "admin"
    )
    assert boss.exit_code == 0, boss.output
    assert "boss@new.example is admin of new-co" in boss.output


def test_payment_methods_are_linked_and_removed_by_admins_only(
    run: Run, bright_smile: None, database_url: str
) -> None:
    """The fixture's "Company credit card" (bank-3) and "Business current account" (none)."""
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

    linked = run("payment-methods", "link", "company credit card", *method,
                 "--bank-account", "bank-9", "--actor", "owner@bright.example")  # fmt: skip
    assert linked.exit_code == 0, linked.output
    assert "'Company credit card' linked to bank account bank-9" in linked.output
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
        "Company credit card\tbank_account=-"
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
            "cat-453",
            "--actor",
            "owner@bright.example",
        )
        assert added.exit_code == 0, added.output
    listed = run("rules", "list", "--business", "bright-smile")
    assert listed.exit_code == 0, listed.output
    names = sorted(line.split("\t")[1] for line in listed.output.splitlines())
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
