"""The nomi-connector CLI: items (import, list, edit) and memberships."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import Item, Membership, User
from tests.connector.admin.conftest import EXAMPLES, IMPORTER, Run


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
    assert wrong.exit_code == 2  # a usage error, listing the statuses there are
    assert "'lost' is not one of" in wrong.output
    for status in ("review", "ready", "publishing", "published", "archived"):
        assert status in wrong.output
    tsv = run("items", "list", "--business", "bright-smile", "--status", "REVIEW").output
    lines = tsv.splitlines()
    assert lines[0].split("\t") == [
        "external_id", "kind", "status", "contact", "date", "currency", "total", "reasons"
    ]  # fmt: skip
    assert len(lines) == 1 + sum(1 for r in rows if r["status"] == "review")
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

    edited = run(*edit, "--actor", "clerk@bright.example", "--category", "453")
    assert edited.exit_code == 0, edited.output
    assert edited.output.startswith("bs-0001: ")
    assert "category 453 Office Expenses" in edited.output
    refused = run(*edit, "--actor", "stranger@else.example", "--category", "cat-453")
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
    assert item.category_edit == "cat-453"
    assert sorted(a.allowed for a in audit) == [False, True]


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


def test_an_item_is_edited_by_category_name_and_tax_code_and_a_typo_is_answered_with_matches(
    run: Run, bright_smile: None
) -> None:
    """Issue 19: `--category "Office Expenses"` was refused; `--category 453` said nothing."""
    imported = run(
        "items", "import", str(EXAMPLES / "items.csv"), "--business", "bright-smile", *IMPORTER
    )
    assert imported.exit_code == 0, imported.output
    edit = ("items", "edit", "bs-0004", "--business", "bright-smile", *IMPORTER)

    edited = run(*edit, "--category", "office expenses", "--tax-rate", "red5")
    assert edited.exit_code == 0, edited.output
    assert "category 453 Office Expenses, tax rate RED5 Reduced 5%" in edited.output

    typo = run(*edit, "--category", "Ofice Expences")
    assert typo.exit_code == 1
    assert typo.output.startswith("error: no category 'Ofice Expences' in business 'bright-smile'")
    assert "close matches: 'Office Expenses' (code 453)" in typo.output
    assert typo.output.rstrip().endswith("(option --category)")
    archived = run(*edit, "--category", "499")
    assert archived.exit_code == 1
    assert "'Sundry (old)' (code 499, archived) is archived in Nomi" in archived.output
    unknown_item = run("items", "edit", "bs-004", "--business", "bright-smile", *IMPORTER,
                       "--category", "453")  # fmt: skip
    assert unknown_item.exit_code == 1
    assert "has no item 'bs-004' (close matches: 'bs-0004'" in unknown_item.output
