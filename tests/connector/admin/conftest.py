"""Fixtures of the nomi-connector CLI tests: a runner on a fresh database, a seeded business."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from connector.admin.cli import app

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
