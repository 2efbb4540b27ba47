"""The nomi-connector CLI (CliRunner, SQLite and PostgreSQL): businesses, settings, actors."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import ConnectionSettings, Membership, User
from tests.connector.admin.conftest import Run
from tests.connector.conftest import commit_elsewhere_before_first_write


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
        "default_tax_costs=std20",  # a tax rate by its code, any case
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
    unknown_rate = run("settings", "set", "--business", "bright-smile", "--actor",
                       "owner@bright.example", "default_tax_sales=Standard 2%")  # fmt: skip
    assert unknown_rate.exit_code == 1
    assert "no tax rate 'Standard 2%' in business 'bright-smile'" in unknown_rate.output
    assert "close matches: 'Standard 20%' (code STD20)" in unknown_rate.output

    shown = run("settings", "show", "--business", "bright-smile").output
    assert "auto_publish = true" in shown
    assert "default_tax_costs = STD20 Standard 20% [tax-20]" in shown
    assert "default_tax_sales = -" in shown
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
