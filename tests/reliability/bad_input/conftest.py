"""Fixtures of the bad-input tests: a business with a clerk, an import that reports refusals by
(line, field), and the ``nomi-connector`` CLI on a fresh database.

The corpus (``corpus/``) holds small broken files; large ones (a 50 MB image, a 200 KB cell, a
5,000-digit number, JSON nested 100,000 deep) are generated in a temporary folder by the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from connector.admin.cli import app
from connector.items.intake import import_items
from connector.rules.vocabulary import Role
from connector.store.db import make_engine, migrate
from connector.store.models import Business, Item
from tests.connector.factories import make_business, make_membership, make_user

CORPUS = Path(__file__).resolve().parent / "corpus"
CLERK = "clerk@bright.example"
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    migrate(built)
    try:
        yield built
    finally:
        built.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def business(db: Session) -> Business:
    made = make_business(db, slug="bright-smile")
    make_membership(db, user=make_user(db, email=CLERK), business=made, role=Role.STANDARD)
    db.commit()
    return made


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path / "stored-images"


Import = Callable[[Path], "ImportOutcome"]


class ImportOutcome:
    """What one import did: the report's errors by (line, field), imported external ids."""

    def __init__(self, errors: dict[tuple[int, str], str], imported: set[str]) -> None:
        self.errors = errors
        self.imported = imported


@pytest.fixture
def run_import(db: Session, business: Business, images: Path) -> Import:
    def run(path: Path) -> ImportOutcome:
        before = external_ids(db, business.id)
        report = import_items(
            db, path, business_id=business.id, actor_email=CLERK, images_dir=images
        )
        errors = {(e.line, e.field): e.message for e in report.errors}
        assert len(errors) == len(report.errors), "one message per (line, field)"
        return ImportOutcome(errors, external_ids(db, business.id) - before)

    return run


def external_ids(db: Session, business_id: uuid.UUID) -> set[str]:
    """The external ids of the business's items."""
    return set(db.exec(select(Item.external_id).where(Item.business_id == business_id)))


def stored_images(images: Path) -> list[Path]:
    """The images stored so far."""
    return sorted(images.iterdir()) if images.exists() else []


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Callable[..., tuple[int, str]]:
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--home", str(home), "--database-url", database_url, *args])
        return result.exit_code, result.output

    assert invoke("db", "upgrade")[0] == 0
    for args in [
        ("business", "add", "bright-smile", "--name", "Bright Smile Dental Ltd"),
        ("user", "add", "owner@bright.example", "--name", "Owner"),
        ("user", "add", "clerk@bright.example", "--name", "Clerk"),
        ("member", "add", "--business", "bright-smile", "--user", "owner@bright.example"),
        (
            "member",
            "add",
            "--business",
            "bright-smile",
            "--user",
            "clerk@bright.example",
            "--actor",
            "owner@bright.example",
        ),
    ]:
        role = ["--role", "admin" if "owner@bright.example" in args[:6] else "standard"]
        code, output = invoke(*args, *(role if args[0] == "member" else []))
        assert code == 0, output
    return invoke


def count_rows(database_url: str, model: type) -> int:
    """Rows of ``model`` in the database at ``database_url``, read on a fresh engine."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            return int(s.exec(select(func.count()).select_from(model)).one())
    finally:
        engine.dispose()
