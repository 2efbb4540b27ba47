"""Bad input through the ``nomi-connector`` CLI: each problem named, exit 1, no refused row kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from connector.store.db import make_engine
from connector.store.history_tables import AuditLog
from connector.store.models import Item
from tests.reliability.bad_input.conftest import (
    CLERK,
    CORPUS,
    count_rows,
)

CLI_REFUSALS = [
    ("bad-amounts.csv", "line 12, total: total 10000000.01 is implausibly large"),
    ("hostile-names.jsonl", "line 1, contact_name: contains the control character U+0000"),
    ("non-objects.jsonl", "line 7, (record): not valid JSON: key(s) given more than once"),
    ("dates-and-currencies.csv", "line 8, currency: 'GBPX' is not an ISO 4217 currency code"),
    ("latin1.csv", "error: cannot read latin1.csv as UTF-8 text"),
    ("duplicate-column.csv", "error: duplicate-column.csv: column(s) named more than once"),
    ("nowhere.csv", "error: file not found"),
]


def test_the_cli_names_each_problem_exits_1_and_writes_no_refused_row(
    cli: Callable[..., tuple[int, str]], database_url: str, tmp_path: Path
) -> None:
    for name, shown in CLI_REFUSALS:
        before = count_rows(database_url, Item)
        code, output = cli(
            "items", "import", str(CORPUS / name), "--business", "bright-smile", "--actor", CLERK
        )

        assert code == 1, name
        assert shown in output, output
        assert "Traceback" not in output
        good_rows = 1 if name == "non-objects.jsonl" else 0  # its first line is a good item
        assert count_rows(database_url, Item) == before + good_rows, name
    assert not (tmp_path / "home" / "images").exists()


def test_the_cli_refuses_an_unknown_business_and_bad_settings_without_writing(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    audits = count_rows(database_url, AuditLog)
    code, output = cli(
        "items", "import", str(CORPUS / "unicode-names.jsonl"), "--business", "no-such",
        "--actor", CLERK,
    )  # fmt: skip
    assert (code, "no-such" in output) == (1, True)

    for changes, message in [
        (["auto_publish=maybe"], "auto_publish takes true or false, not 'maybe'"),
        (["colour=blue"], "unknown setting 'colour'"),
        (["auto_publish"], "expected KEY=VALUE, got 'auto_publish'"),
        # no tax rates mirrored here: nothing to check against, and nothing is stored unchecked
        (["default_tax_costs=" + "x" * 100], "so the default_tax_costs 'xxxx"),
        (["default_tax_sales==HYPERLINK(1)"], "the default_tax_sales '=HYPERLINK(1)' cannot be"),
        (["default_zero_tax_code_sales=tax\x1b[2J"], "default_zero_tax_code_sales 'tax\\x1b[2J'"),
    ]:
        code, output = cli(
            "settings", "set", *changes, "--business", "bright-smile",
            "--actor", "owner@bright.example",
        )  # fmt: skip
        assert code == 1, output
        assert message in output
    assert count_rows(database_url, Item) == 0
    assert count_rows(database_url, AuditLog) == audits  # refused before the permission check


def test_a_standard_member_changing_settings_is_refused_audited_and_changes_nothing(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    code, output = cli(
        "settings", "set", "auto_publish=true", "--business", "bright-smile",
        "--actor", "clerk@bright.example",
    )  # fmt: skip

    assert code == 1
    assert (
        "user clerk@bright.example may not perform 'settings.set' on business 'bright-smile': "
        "their role there is 'standard'; only admins and accountants may"
    ) in output
    code, shown = cli("settings", "show", "--business", "bright-smile")
    assert "auto_publish = false" in shown
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            [refusal] = s.exec(select(AuditLog).where(AuditLog.action == "settings.set")).all()
    finally:
        engine.dispose()
    assert refusal.allowed is False


def test_the_cli_import_needs_a_member_as_actor_and_audits_the_import(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    example = str(CORPUS / "unicode-names.jsonl")
    code, output = cli("items", "import", example, "--business", "bright-smile")
    assert code == 2
    assert "--actor" in output

    assert cli("user", "add", "someone@else.example", "--name", "Someone")[0] == 0
    code, output = cli(
        "items", "import", example, "--business", "bright-smile", "--actor", "someone@else.example"
    )
    assert code == 1
    assert output.strip() == (
        "error: user someone@else.example may not perform 'items.import': they are not a member "
        "of this business"
    )
    assert count_rows(database_url, Item) == 0

    code, output = cli("items", "import", example, "--business", "bright-smile", "--actor", CLERK)
    assert code == 0, output
    assert "imported 4, already present 0, refused 0 of 4 rows" in output
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            audits = s.exec(select(AuditLog).where(AuditLog.action == "items.import")).all()
    finally:
        engine.dispose()
    assert sorted((a.allowed, a.detail.get("imported")) for a in audits) == [
        (False, None),
        (True, 4),
    ]
