"""Names, not ids, in intake files: a category or tax rate by code, name or Nomi id, at item level
and line level, resolved against the mirror when the item is assessed (``docs/intake.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from connector.items.assess import reassess
from connector.items.context import facts_from_item
from connector.items.intake import ImportReport, import_items
from connector.rules.vocabulary import ItemStatus, Role
from connector.store.models import Business, Item
from tests.connector.factories import (
    make_business,
    make_category,
    make_connection,
    make_membership,
    make_tax_rate,
    make_user,
)
from tests.connector.items.conftest import CLERK, HEADER, build_world, items_of

OFFICE = "cat-453"
STANDARD = "tax-std20"


def _lists(db: Session, connection: Any) -> None:
    """The sandbox's "453 Office Expenses" and "STD20 Standard 20%", with other Nomi ids."""
    make_category(db, connection=connection, nomi_id=OFFICE, code="453", name="Office Expenses")
    make_category(db, connection=connection, nomi_id="cat-429", code="429", name="General Expenses")
    make_tax_rate(db, connection=connection, nomi_id=STANDARD, code="STD20", name="Standard 20%")
    db.commit()


def _world(db: Session) -> Business:
    """A connected business with the lists above and the clerk as a member."""
    world = build_world(db)
    make_membership(
        db, user=make_user(db, email=CLERK), business=world.business, role=Role.STANDARD
    )
    _lists(db, world.connection)
    return world.business


def _import(db: Session, business: Business, path: Path) -> ImportReport:
    return import_items(
        db, path, business_id=business.id, actor_email=CLERK, images_dir=path.parent / "images"
    )


def _csv(path: Path, *rows: tuple[str, str, str]) -> Path:
    """Acme cost rows of 120.00 with 20.00 tax, a day apart: (external id, category, tax rate)."""
    lines = [
        f"{n},cost,Acme Ltd,R-{n},2026-03-1{day},,GBP,120.00,20.00,paper,{category},{rate},no,,,,\n"
        for day, (n, category, rate) in enumerate(rows)
    ]
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def _jsonl(path: Path, *lines: tuple[str, list[dict[str, Any]]]) -> Path:
    """Acme cost items with these lines: (external id, lines)."""
    records = [
        {"external_id": n, "kind": "cost", "contact_name": "Acme Ltd", "date": "2026-03-02"}
        | {"lines": found}
        for n, found in lines
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _by_id(db: Session, business: Business) -> dict[str, Item]:
    db.expire_all()
    return {i.external_id: i for i in items_of(db, business)}


def test_a_csv_category_code_and_tax_rate_name_become_ready_with_their_nomi_ids(
    db: Session, tmp_path: Path
) -> None:
    business = _world(db)
    path = _csv(
        tmp_path / "named.csv",
        ("by-code", "453", "Standard 20%"),
        ("by-name", "office expenses", "std20"),
        ("by-id", OFFICE, STANDARD),
    )

    report = _import(db, business, path)

    assert report.errors == []
    items = _by_id(db, business)
    for external_id in ("by-code", "by-name", "by-id"):
        item = items[external_id]
        assert (item.status, item.review_reasons) == (ItemStatus.READY, [])
        assert item.resolved_category_nomi_id == OFFICE  # not the Acme rule's cat-office
        assert item.resolved_tax_rate_nomi_id == STANDARD
        # stored as ids, so publishing (which resolves the stored facts again) reads ids
        facts = facts_from_item(item)
        assert (facts.category_id, facts.tax_rate_id) == (OFFICE, STANDARD)


def test_a_json_line_category_code_and_tax_rate_name_become_ready_with_their_nomi_ids(
    db: Session, tmp_path: Path
) -> None:
    business = _world(db)
    path = _jsonl(
        tmp_path / "lines.jsonl",
        (
            "inv-1",
            [
                {"net": "100.00", "tax": "20.00", "category": "453", "tax_rate": "Standard 20%"},
                {"net": "50.00", "tax": "10.00", "category": "cat-429", "tax_rate": STANDARD},
            ],
        ),
    )

    report = _import(db, business, path)

    assert report.errors == []
    item = _by_id(db, business)["inv-1"]
    assert (item.status, item.review_reasons) == (ItemStatus.READY, [])
    assert [(line["category"], line["tax_rate"]) for line in item.resolved_lines] == [
        (OFFICE, STANDARD),
        ("cat-429", STANDARD),
    ]
    assert [(line["category_edit"], line["tax_rate_edit"]) for line in item.lines] == [
        (OFFICE, STANDARD),
        ("cat-429", STANDARD),
    ]
    assert [line["net"] for line in item.lines] == ["100.00", "50.00"]


def test_an_unknown_category_or_tax_rate_name_holds_the_item_naming_close_matches(
    db: Session, tmp_path: Path
) -> None:
    business = _world(db)
    _import(
        db,
        business,
        _csv(tmp_path / "typo.csv", ("typo", "Ofice Expenses", ""), ("archived", "old", "")),
    )
    _import(
        db,
        business,
        _jsonl(
            tmp_path / "typo.jsonl",
            ("typo-line", [{"net": "100.00", "tax": "20.00", "tax_rate": "Standard 2O%"}]),
        ),
    )

    items = _by_id(db, business)
    typo = items["typo"]
    assert typo.status == ItemStatus.REVIEW
    [reason] = typo.review_reasons
    assert reason.startswith(
        "category 'Ofice Expenses' (set on the item) does not exist in Nomi: choose another "
        "(close matches: 'Office Expenses' (code 453)"
    )
    assert typo.category_edit == "Ofice Expenses"  # kept as given, for the user to fix
    assert (
        items["archived"]
        .review_reasons[0]
        .startswith(
            "category 'Old' (code "  # the lookup's own words for an archived entry
        )
    )
    assert "is archived in Nomi: choose an active one" in items["archived"].review_reasons[0]
    line = items["typo-line"]
    assert line.status == ItemStatus.REVIEW
    [reason] = line.review_reasons
    assert reason.startswith("line 1: tax rate 'Standard 2O%'")
    assert "close matches: 'Standard 20%' (code STD20)" in reason


def test_names_imported_before_the_first_sync_are_resolved_once_the_lists_are_mirrored(
    db: Session, tmp_path: Path
) -> None:
    business = make_business(db)
    make_membership(db, user=make_user(db, email=CLERK), business=business, role=Role.STANDARD)
    db.commit()
    report = _import(db, business, _csv(tmp_path / "early.csv", ("early", "453", "")))
    assert report.errors == []  # not refused: there is nothing to check it against yet
    assert _by_id(db, business)["early"].category_edit == "453"

    connection = make_connection(db, business=business)
    _lists(db, connection)
    with OrmSession(db.get_bind()) as plain:  # a plain SQLAlchemy session (as tasks use) works
        reassess(plain, business_id=business.id)
        plain.commit()

    item = _by_id(db, business)["early"]
    assert (item.category_edit, item.resolved_category_nomi_id) == (OFFICE, OFFICE)
