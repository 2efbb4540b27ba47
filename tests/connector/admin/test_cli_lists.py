"""The nomi-connector CLI: the mirrored lists with headers, choices that list themselves, help and
the version."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from connector.admin.cli import app
from tests.connector.admin.conftest import Run


def _said(output: str) -> str:
    """Output as one line, as the error box wraps it."""
    return " ".join(output.replace("│", " ").split())


def test_categories_are_listed_under_a_header_by_code(run: Run, bright_smile: None) -> None:
    listed = run("lists", "categories", "--business", "bright-smile")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "code\tname\ttype\tstatus\tnomi_id"
    assert lines[1:] == [
        "200\tSales\tINCOME\tACTIVE\tcat-200",
        "453\tOffice Expenses\tEXPENSE\tACTIVE\tcat-453",
        "489\tTelephone & Internet\tEXPENSE\tACTIVE\tcat-489",
        "499\tSundry (old)\tEXPENSE\tARCHIVED\tcat-499",
    ]
    found = run("lists", "categories", "--business", "bright-smile", "--containing", "OFFICE")
    assert found.output.splitlines()[1:] == ["453\tOffice Expenses\tEXPENSE\tACTIVE\tcat-453"]


@pytest.mark.parametrize(
    ("command", "header", "row"),
    [
        ("tax-rates", "code\tname\trate\tapplies_to\tstatus\tnomi_id",
         "STD20\tStandard 20%\t20.00\tBOTH\tACTIVE\ttax-20"),
        ("bank-accounts", "name\tmasked_number\tcurrency\tstatus\tnomi_id",
         "Company Credit Card\t****1204\tGBP\tACTIVE\tbank-3"),
        ("suppliers",
         "name\ttax_number\tdefault_category\tdefault_tax_rate\tcurrency\tstatus\tnomi_id",
         "Staples UK\t-\t453 Office Expenses\tSTD20 Standard 20%\t-\tACTIVE\tsup-staples"),
    ],
)  # fmt: skip
def test_every_list_has_a_header_and_shows_codes_and_names(
    run: Run, bright_smile: None, command: str, header: str, row: str
) -> None:
    listed = run("lists", command, "--business", "bright-smile")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == header
    assert row in lines[1:]


def test_a_list_as_json_has_one_object_per_entry(run: Run, bright_smile: None) -> None:
    listed = run("lists", "tax-rates", "--business", "bright-smile", "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert {r["code"]: r["rate"] for r in rows} == {
        "RED5": "5.00",
        "STD20": "20.00",
        "ZERO": "0.00",
    }
    assert set(rows[0]) == {"code", "name", "rate", "applies_to", "status", "nomi_id"}


def test_a_business_with_nothing_mirrored_lists_only_the_header(run: Run) -> None:
    assert run("business", "add", "new-shop", "--name", "New Shop").exit_code == 0
    listed = run("lists", "customers", "--business", "new-shop")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "name\ttax_number\tdefault_category\tdefault_tax_rate\tcurrency\tstatus\tnomi_id"
    ]
    unknown = run("lists", "customers", "--business", "new-shp")
    assert unknown.exit_code == 1
    assert "no business 'new-shp'" in unknown.output


@pytest.mark.parametrize(
    ("args", "bad", "choices"),
    [
        (("member", "add", "--business", "b", "--user", "u@x.example", "--role"), "boss",
         ("admin", "standard", "accountant")),
        (("history", "export", "--since", "2026-01-01", "--output", "x", "--format"), "xlsx",
         ("csv", "parquet")),
        (("items", "list", "--business", "b", "--status"), "lost",
         ("review", "ready", "publishing", "published", "archived")),
        (("rules", "remove", "X", "--business", "b", "--actor", "a@x.example", "--kind"), "vendor",
         ("supplier", "customer")),
    ],
)  # fmt: skip
def test_a_value_outside_a_closed_set_is_refused_listing_the_choices(
    run: Run, args: tuple[str, ...], bad: str, choices: tuple[str, ...]
) -> None:
    refused = run(*args, bad)
    assert refused.exit_code == 2, refused.output
    listed = ", ".join(f"'{c}'" for c in choices)
    assert f"'{bad}' is not one of {listed}" in _said(refused.output)
    command = [a for a in args if not a.startswith("-")][:2]
    helped = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert "|".join(choices) in helped.output, helped.output


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Every leaf command under ``group`` (typer's own click: duck-typed by ``commands``)."""
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


def test_every_option_and_argument_of_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) > 20
    missing = [
        f"{path} {param.name}"
        for path, command in [("", root), *commands]
        for param in command.params
        if not getattr(param, "help", None) and param.name != "help"
    ]
    assert missing == []


def test_version_prints_the_installed_version(run: Run) -> None:
    shown = run("--version")
    assert shown.exit_code == 0
    assert shown.output.strip() == f"nomi-connector {version('nomi-connector')}"
