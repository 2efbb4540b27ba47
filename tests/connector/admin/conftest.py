"""Fixtures of the nomi-connector CLI tests: a runner on a fresh database, a seeded business."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from connector.admin.businesses import connection_of
from connector.admin.cli import app
from connector.store.db import make_engine
from connector.store.models import Business
from tests.connector.factories import (
    make_bank_account,
    make_category,
    make_supplier,
    make_tax_rate,
)

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


#: The mirrored lists of ``bright_smile``: codes and names as sandbox/seed.py seeds them.
CATEGORIES = [
    ("cat-200", "200", "Sales", "INCOME", "ACTIVE"),
    ("cat-453", "453", "Office Expenses", "EXPENSE", "ACTIVE"),
    ("cat-489", "489", "Telephone & Internet", "EXPENSE", "ACTIVE"),
    ("cat-499", "499", "Sundry (old)", "EXPENSE", "ARCHIVED"),
]
TAX_RATES = [
    ("tax-20", "STD20", "Standard 20%", "20"),
    ("tax-5", "RED5", "Reduced 5%", "5"),
    ("tax-0", "ZERO", "Zero rated 0%", "0"),
]
BANK_ACCOUNTS = [
    ("bank-3", "Company Credit Card", "****1204", "ACTIVE"),
    ("bank-9", "Business Savings", "****7730", "ACTIVE"),
    ("bank-old", "Old Euro Account", "****9051", "ARCHIVED"),
]


def mirror_lists(database_url: str, slug: str) -> None:
    """Give the business a (pending) connection and the lists a sync would have mirrored."""
    engine = make_engine(database_url)
    with Session(engine) as db:
        business = db.exec(select(Business).where(Business.slug == slug)).one()
        connection = connection_of(db, business)
        for nomi_id, code, name, kind, status in CATEGORIES:
            make_category(db, connection=connection, nomi_id=nomi_id, code=code, name=name,
                          type=kind, status=status)  # fmt: skip
        for nomi_id, code, name, rate in TAX_RATES:
            make_tax_rate(db, connection=connection, nomi_id=nomi_id, code=code, name=name,
                          rate=Decimal(rate))  # fmt: skip
        for nomi_id, name, masked, status in BANK_ACCOUNTS:
            make_bank_account(db, connection=connection, nomi_id=nomi_id, name=name,
                              masked_number=masked, status=status)  # fmt: skip
        make_supplier(db, connection=connection, nomi_id="sup-staples", name="Staples UK",
                      default_category_id="cat-453", default_tax_rate_id="tax-20")  # fmt: skip
        db.commit()
    engine.dispose()


@pytest.fixture
def bright_smile(run: Run, database_url: str) -> None:
    """Bright Smile with an admin, a clerk, an accountant, its lists mirrored and two payment
    methods (the card paid from bank-3, "Company Credit Card")."""
    assert (
        run("business", "add", "bright-smile", "--name", "Bright Smile Dental Ltd").exit_code == 0
    )
    mirror_lists(database_url, "bright-smile")
    for args in [
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
