"""The CLI against odd bytes and a busy database (issue 17), on SQLite and on PostgreSQL.

Text the admin commands take goes through connector.text_guard and is refused with the field
named, identically on both databases; what list commands print is escaped; business slugs are
checked; a writer that meets a database another connection keeps busy says so in one line.
"""

from __future__ import annotations

import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from connector.admin.businesses import add_business, connection_of
from connector.admin.cli import app
from connector.admin.commands.base import BUSY_EXIT
from connector.admin.members import add_member
from connector.admin.users import add_user
from connector.store.db import make_engine
from connector.store.models import Business, ContactRule, PaymentMethod, User

Run = Callable[..., Result]
ADMIN = "owner@acme.example"


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Run:
    """The CLI on a migrated database; ``env`` adds environment variables."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app, ["--home", str(tmp_path / "home"), "--database-url", database_url, *args], env=env
        )

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


@pytest.fixture
def acme(run: Run, database_url: str) -> Iterator[sa.Engine]:
    """Business ``acme`` with its admin (written directly: fast); yields an engine on it."""
    engine = make_engine(database_url)
    with Session(engine) as db:
        business = add_business(db, slug="acme", name="Acme Ltd")
        admin = add_user(db, email=ADMIN, name="Owner")
        add_member(db, business=business, user=admin, role="admin")
        db.commit()
    try:
        yield engine
    finally:
        engine.dispose()


def _refused(result: Result, *needles: str) -> None:
    """One clear error line, exit 1, no traceback, no raw control character."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert "DataError" not in result.output
    assert not any(unicodedata.category(c) == "Cc" for c in lines[0]), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_formula_in_a_rule_description_is_refused_and_nothing_is_written(
    run: Run, acme: sa.Engine
) -> None:
    formula = '=HYPERLINK("http://evil.example/x","Click")'
    added = run(
        "rules",
        "add",
        "Royal Mail",
        "--business",
        "acme",
        "--description",
        formula,
        "--actor",
        ADMIN,
    )
    _refused(added, "rule description", "spreadsheet formula")
    for name in ["=cmd|'/c calc'!A1", "@SUM(A1:A2)", "+44 Trading"]:
        _refused(run("rules", "add", name, "--business", "acme", "--actor", ADMIN), "rule name")
    with Session(acme) as db:
        assert db.exec(select(ContactRule)).all() == []
    kept = run(
        "rules",
        "add",
        "Royal Mail",
        "--business",
        "acme",
        "--description",
        "Post",
        "--actor",
        ADMIN,
    )
    assert kept.exit_code == 0, kept.output


BAD_TEXT = {
    "NUL": "Evil\x00Corp",
    "ESC": "Evil\x1b]0;pwned\x07Corp",
    "bidi": "Evil\u202eproC",
    "5000 chars": "E" * 5000,
}


def test_control_bidi_and_overlong_names_are_refused_by_field_on_both_databases(
    run: Run, acme: sa.Engine
) -> None:
    """PostgreSQL would fail on a NUL or an over-long name with a raw psycopg.DataError."""
    for what, text in BAD_TEXT.items():
        reason = "longer than 255" if what == "5000 chars" else "refused"
        _refused(run("business", "add", "evil", "--name", text), "business name", reason)
        _refused(run("user", "add", "evil@x.example", "--name", text), "user name", reason)
        _refused(
            run("payment-methods", "add", text, "--business", "acme", "--actor", ADMIN),
            "payment method name",
            reason,
        )
        _refused(run("rules", "add", text, "--business", "acme", "--actor", ADMIN), "rule name")
    # looked-up names with such bytes are simply not found (PostgreSQL cannot even query a NUL)
    _refused(run("rules", "list", "--business", "a\x00"), "no business 'a\\x00'")
    _refused(
        run("rules", "add", "Acme", "--business", "acme", "--actor", "a\x00@x.example"),
        "no such user",
    )
    edit = ("items", "edit", "--business", "acme", "--category", "cat-1", "--actor")
    _refused(run(*edit, ADMIN, "--", "a\x00"), "has no item")
    _refused(run(*edit, "a\x00@x.example", "--", "a1"), "may not perform")
    with Session(acme) as db:
        assert [b.slug for b in db.exec(select(Business))] == ["acme"]
        assert [u.email for u in db.exec(select(User))] == [ADMIN]
        assert db.exec(select(PaymentMethod)).all() == []
        assert db.exec(select(ContactRule)).all() == []


def test_names_are_stored_in_nfc_so_one_name_is_one_payment_method(
    run: Run, acme: sa.Engine
) -> None:
    nfd, nfc = "Cafe\u0301 card", "Caf\u00e9 card"
    assert run("payment-methods", "add", nfd, "--business", "acme", "--actor", ADMIN).exit_code == 0
    again = run("payment-methods", "add", nfc, "--business", "acme", "--actor", ADMIN)
    assert again.exit_code == 1
    assert "already has the payment method" in again.output
    with Session(acme) as db:
        assert [m.name for m in db.exec(select(PaymentMethod))] == [nfc]


def test_list_outputs_escape_terminal_sequences_stored_earlier(run: Run, acme: sa.Engine) -> None:
    """Rows written before the guard (or mirrored from Nomi) print escaped, never raw."""
    nasty = "Evil\x1b]0;pwned\x07\u202e\tCorp"
    with Session(acme) as db:
        business = db.exec(select(Business)).one()
        business.name = nasty
        connection = connection_of(db, business)
        db.add(PaymentMethod(business_id=business.id, name=nasty))
        db.add(
            ContactRule(
                connection_id=connection.id, kind="supplier", name=nasty, name_normalised="e"
            )
        )
        db.commit()
    escaped = "Evil\\x1b]0;pwned\\x07\\u202e\\x09Corp"
    for args in [
        ("business", "list"),
        ("payment-methods", "list", "--business", "acme"),
        ("rules", "list", "--business", "acme"),
    ]:
        listed = run(*args)
        assert listed.exit_code == 0, listed.output
        assert escaped in listed.output, listed.output
        raw = {c for c in listed.output if unicodedata.category(c) == "Cc"} - {"\t", "\n"}
        assert raw == set(), args
        assert "\u202e" not in listed.output, args
        # the value's own tab is escaped: the columns stay where they were
        line = next(line for line in listed.output.splitlines() if escaped in line)
        assert line.split("\t")[{"payment-methods": 0}.get(args[0], 1)] == escaped


def test_a_bad_business_slug_is_refused_at_creation(run: Run) -> None:
    for slug in ["bad_slug", "../../etc", "=1+1", "x" * 3000, "Acme", "a", "-acme", "acme-"]:
        added = run("business", "add", "--name", "Bad Ltd", "--", slug)
        _refused(added, "business slug", "lowercase letters, digits and hyphens")
        assert len(added.output) < 400  # a 3000-character slug is not echoed back whole
    assert run("business", "list").output == "slug\tname\tid\n"  # the header alone
    assert run("business", "add", "ab-2", "--name", "Good Ltd").exit_code == 0


def _hold_the_write_lock(database_url: str) -> Callable[[], None]:
    """Another connection takes the database's write lock (SQLite) or locks the settings table
    against writes (PostgreSQL); returns what releases it."""
    if database_url.startswith("sqlite"):
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            other.rollback()
            other.close()

        return release_sqlite
    engine = make_engine(database_url)
    conn = engine.connect()
    conn.execute(sa.text("LOCK TABLE connection_settings IN EXCLUSIVE MODE"))

    def release() -> None:
        conn.rollback()
        conn.close()
        engine.dispose()

    return release


def test_a_cli_write_on_a_busy_database_waits_a_bounded_time_then_says_so_in_one_line(
    run: Run, acme: sa.Engine, database_url: str
) -> None:
    release = _hold_the_write_lock(database_url)
    try:
        started = time.monotonic()
        changed = run(
            "settings",
            "set",
            "--business",
            "acme",
            "--actor",
            ADMIN,
            "auto_publish=true",
            env={"NOMI_CONNECTOR_BUSY_TIMEOUT": "0.5"},
        )
        waited = time.monotonic() - started
    finally:
        release()
    assert changed.exit_code == BUSY_EXIT, (changed.output, changed.exception)
    assert isinstance(changed.exception, SystemExit), changed.exception
    lines = changed.output.splitlines()
    assert len(lines) == 1, changed.output
    assert lines[0].startswith("error: the database is busy")
    assert "0.5 s" in lines[0]
    assert 0.4 <= waited < 10, waited
    # nothing half-written, and the same command goes through once the lock is gone
    again = run("settings", "set", "--business", "acme", "--actor", ADMIN, "auto_publish=true")
    assert again.exit_code == 0, again.output
