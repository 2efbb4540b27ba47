"""Intake of the documents accountants really have: credit notes, lines and foreign currency."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session

from connector.items.assess import reassess
from connector.items.context import build_context, facts_from_item
from connector.items.intake import import_items
from connector.rules.facts import OrganisationRef
from connector.rules.vocabulary import DocumentType, ItemKind
from connector.store.models import Business, Item, Organisation
from tests.connector.factories import make_item
from tests.connector.items.conftest import CLERK, build_world, items_of

LINE_HEADER = (
    "external_id,kind,document_type,credits_external_id,contact_name,date,currency,"
    "exchange_rate,total,tax_amount,category,line_description,line_net,line_tax,line_category,"
    "line_tax_rate\n"
)


def _import(db: Session, business: Business, path: Path) -> Any:
    return import_items(
        db, path, business_id=business.id, actor_email=CLERK, images_dir=path.parent / "images"
    )


def _jsonl(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _by_id(db: Session, business: Business) -> dict[str, Item]:
    return {i.external_id: i for i in items_of(db, business)}


def _errors(report: Any) -> dict[tuple[int, str], str]:
    return {(e.line, e.field): e.message for e in report.errors}


def test_a_three_line_csv_invoice_becomes_one_item_with_its_lines_in_order(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(
        LINE_HEADER
        + "inv-3,sales,invoice,,Smile Clinic,2026-03-02,GBP,,360.00,60.00,,Check-up,100.00,20.00,"
        "inc-1,vat20\n"
        "inv-3,,,,,,,,,,,Whitening,150.00,30.00,,\n"
        "inv-3,sales,,,Smile Clinic,,,,360.00,,,Floss,50.00,10.00,inc-2,\n"
        "one-1,cost,receipt,,Staples UK,2026-03-02,,,12.00,2.00,,,,,,\n",
        encoding="utf-8",
    )
    report = _import(db, business, path)

    assert report.errors == []
    assert (report.rows, len(report.imported)) == (2, 2)
    items = _by_id(db, business)
    invoice = items["inv-3"]
    assert invoice.kind == ItemKind.SALES
    assert invoice.document_type == DocumentType.INVOICE
    assert invoice.total == Decimal("360.00")
    assert invoice.tax_amount == Decimal("60.00")
    assert invoice.lines == [
        {
            "description": "Check-up",
            "net": "100.00",
            "tax": "20.00",
            "category_edit": "inc-1",
            "tax_rate_edit": "vat20",
        },
        {
            "description": "Whitening",
            "net": "150.00",
            "tax": "30.00",
            "category_edit": None,
            "tax_rate_edit": None,
        },
        {
            "description": "Floss",
            "net": "50.00",
            "tax": "10.00",
            "category_edit": "inc-2",
            "tax_rate_edit": None,
        },
    ]
    receipt = items["one-1"]
    assert (receipt.document_type, receipt.lines) == (DocumentType.RECEIPT, [])


def test_jsonl_lines_credit_notes_and_a_foreign_rate_import_and_a_missing_total_is_the_sum(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "docs.jsonl",
        {
            "external_id": "eu-1",
            "kind": "cost",
            "contact_name": "Lufthansa",
            "date": "2026-03-02",
            "currency": "eur",
            "exchange_rate": "0.853412",
            "lines": [
                {"description": "Flight", "net": "200.00", "tax": 0},
                {"description": "Seat", "net": 30.5, "tax_rate": "zero"},
            ],
        },
        {
            "external_id": "cn-1",
            "kind": "cost",
            "document_type": "credit_note",
            "credits_external_id": "eu-1",
            "contact_name": "Lufthansa",
            "date": "2026-03-09",
            "currency": "EUR",
            "total": "30.50",
        },
    )
    report = _import(db, business, path)

    assert report.errors == []
    items = _by_id(db, business)
    foreign = items["eu-1"]
    assert foreign.currency == "EUR"
    assert foreign.exchange_rate == Decimal("0.853412")
    assert foreign.total == Decimal("230.50")
    assert foreign.tax_amount == Decimal("0.00")
    assert [line["net"] for line in foreign.lines] == ["200.00", "30.50"]
    assert foreign.lines[1]["tax"] is None
    credit = items["cn-1"]
    assert credit.document_type == DocumentType.CREDIT_NOTE
    assert credit.credits_external_id == "eu-1"
    assert credit.total == Decimal("30.50")


def test_every_line_error_names_the_item_the_line_and_the_field_and_writes_nothing_of_it(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "bad.jsonl",
        {"external_id": "ok-1", "kind": "cost", "contact_name": "A", "total": "1.00"},
        {
            "external_id": "bad-1",
            "kind": "cost",
            "contact_name": "A",
            "lines": [
                {"net": "10.00", "tax": "2.00"},
                {"net": "1.234", "tax": "-1.00", "colour": "red"},
                {"tax": "1.00", "description": "=HYPERLINK()"},
            ],
        },
        {
            "external_id": "bad-2",
            "kind": "cost",
            "contact_name": "A",
            "total": "13.00",
            "tax_amount": "2.00",
            "lines": [{"net": "10.00", "tax": "2.00"}],
        },
        {"external_id": "bad-3", "kind": "cost", "contact_name": "A", "lines": "two"},
        {"external_id": "bad-4", "kind": "cost", "contact_name": "A", "lines": [3]},
        {
            "external_id": "bad-5",
            "kind": "cost",
            "contact_name": "A",
            "tax_amount": "1.00",
            "lines": [{"net": "10.00", "tax": "2.00"}, {"net": "0", "tax": "0"}],
        },
    )
    report = _import(db, business, path)

    assert _errors(report) == {
        (2, "lines[2].net"): "bad-1 line 2: 1.234 has more than two decimal places",
        (2, "lines[2].tax"): "bad-1 line 2: tax cannot be negative (got -1.00)",
        (2, "lines[2].colour"): "bad-1 line 2: unknown field",
        (2, "lines[3].net"): "bad-1 line 3: required: the line's amount before tax",
        (2, "lines[3].description"): "bad-1 line 3: starts with '=', which looks like a "
        "spreadsheet formula; refused",
        (3, "total"): "the lines add up to 12.00, not the total 13.00",
        (4, "lines"): "must be a list of line objects (description, net, tax, category, tax_rate)",
        (5, "lines[1]"): "bad-4 line 1: must be an object with net, tax, description, category "
        "and tax_rate",
        (6, "lines[2].net"): "bad-5 line 2: a line of 0.00: leave it out",
    }
    assert set(_by_id(db, business)) == {"ok-1"}
    assert report.refused == 5


def test_lines_tax_must_add_up_to_the_item_tax_to_the_penny(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "tax.jsonl",
        {
            "external_id": "t-1",
            "kind": "cost",
            "contact_name": "A",
            "tax_amount": "3.01",
            "lines": [{"net": "10.00", "tax": "2.00"}, {"net": "5.00", "tax": "1.00"}],
        },
    )
    report = _import(db, business, path)

    assert _errors(report) == {
        (1, "tax_amount"): "the lines' tax adds up to 3.00, not the tax 3.01"
    }
    assert items_of(db, business) == []


def test_csv_rows_of_one_item_must_agree_be_consecutive_and_each_carry_a_line(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        LINE_HEADER + "a-1,cost,,,Staples UK,2026-03-02,,,,,,Paper,10.00,2.00,,\n"
        "a-1,cost,,,Other Ltd,,,,,,,Pens,5.00,1.00,,\n"
        "b-1,cost,,,Staples UK,2026-03-02,,,,,,Paper,10.00,2.00,,\n"
        "c-1,cost,,,Staples UK,2026-03-02,,,6.00,,,,,,,\n"
        "c-1,cost,,,,,,,,,,Stamps,5.00,1.00,,\n"
        "b-1,cost,,,Staples UK,2026-03-02,,,,,,Ink,3.00,,,\n"
        "d-1,cost,,,Staples UK,2026-03-02,,,,,,Ink,3.00,,,\n"
        "d-1,cost,,,Staples UK,2026-03-02,,,3.00,,,,,,,\n",
        encoding="utf-8",
    )
    report = _import(db, business, path)

    assert _errors(report) == {
        (3, "contact_name"): "'Other Ltd' differs from 'Staples UK' on line 2 of item a-1: leave "
        "it blank on the item's other rows or repeat it exactly",
        (7, "external_id"): "duplicate of line 4 in this file",
        (9, "external_id"): "duplicate of line 8 in this file",
    }
    items = _by_id(db, business)
    assert set(items) == {"b-1", "c-1", "d-1"}
    assert items["c-1"].total == Decimal("6.00")  # a head row, then its one line
    assert [line["description"] for line in items["c-1"].lines] == ["Stamps"]


def test_csv_line_errors_name_the_file_line_the_column_and_the_item_line(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = tmp_path / "bad-lines.csv"
    path.write_text(
        LINE_HEADER + "x-1,cost,,,Staples UK,2026-03-02,,,,,,Paper,10.00,2.00,,\n"
        "x-1,,,,,,,,,,,Pens,five,,,\n"
        "x-1,,,,,,,,,,,Ink,1.00,,=cmd,\n",
        encoding="utf-8",
    )
    report = _import(db, business, path)

    errors = _errors(report)
    assert errors[(3, "line_net")] == "x-1 line 2: 'five' is not a number (digits and one '.' only)"
    assert errors[(4, "line_category")] == (
        "x-1 line 3: starts with '=', which looks like a spreadsheet formula; refused"
    )
    assert set(errors) == {(3, "line_net"), (4, "line_category")}
    assert items_of(db, business) == []


def test_too_many_lines_refuse_the_item_without_holding_them_all(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    rows = "".join(f"m-1,cost,,,Staples UK,,,,,,,Line {n},1.00,,,\n" for n in range(501))
    path.write_text(LINE_HEADER + rows + "ok-1,cost,,,Staples UK,,,,1.00,,,,,,,\n")
    report = _import(db, business, path)

    assert _errors(report) == {(2, "lines"): "501 lines: at most 500 per item"}
    assert set(_by_id(db, business)) == {"ok-1"}


def test_document_fields_are_checked_with_the_field_named(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "fields.jsonl",
        {"external_id": "f-1", "kind": "cost", "contact_name": "A", "document_type": "bill"},
        {
            "external_id": "f-2",
            "kind": "expense_claim",
            "claimant_email": "a@b.example",
            "contact_name": "A",
            "document_type": "credit_note",
        },
        {"external_id": "f-3", "kind": "cost", "contact_name": "A", "credits_external_id": "x"},
        {
            "external_id": "f-4",
            "kind": "cost",
            "contact_name": "A",
            "document_type": "credit_note",
            "credits_external_id": "f-4",
        },
        {"external_id": "f-5", "kind": "cost", "contact_name": "A", "exchange_rate": "0"},
        {"external_id": "f-6", "kind": "cost", "contact_name": "A", "exchange_rate": "1.1234567"},
        {"external_id": "f-7", "kind": "cost", "contact_name": "A", "exchange_rate": "1e3"},
        {"external_id": "f-8", "kind": "cost", "contact_name": "A", "exchange_rate": "1000000000"},
        {"external_id": "f-9", "kind": "cost", "contact_name": "A", "currency": "EURO"},
        {
            "external_id": "f-10",
            "kind": "cost",
            "contact_name": "A",
            "document_type": "credit_note",
            "total": "-5.00",
        },
        {"external_id": "ok", "kind": "cost", "contact_name": "A", "exchange_rate": 1.25},
    )
    report = _import(db, business, path)

    errors = _errors(report)
    assert errors == {
        (1, "document_type"): "unknown document type 'bill': use invoice, receipt or credit_note",
        (2, "document_type"): "an expense claim cannot be a credit note: import the credit as a "
        "cost item with document_type credit_note",
        (3, "credits_external_id"): "only a credit note credits another item (set document_type "
        "to credit_note)",
        (4, "credits_external_id"): "a credit note cannot credit itself",
        (5, "exchange_rate"): "an exchange rate must be more than 0 (got 0)",
        (6, "exchange_rate"): "1.1234567 has more than 6 decimal places",
        (7, "exchange_rate"): "'1e3' is not a number (digits and one '.' only)",
        (8, "exchange_rate"): "1000000000 is implausibly large: at most 9 digits before the point",
        (9, "currency"): "'EURO' is not an ISO 4217 currency code",
        (10, "total"): "total must be more than 0 (got -5.00): a credit is imported as a credit "
        "note (document_type credit_note) with a positive total",
    }
    assert _by_id(db, business)["ok"].exchange_rate == Decimal("1.250000")


def test_a_credit_note_credits_an_item_of_the_file_or_of_the_business_on_its_own_side(
    db: Session, business: Business, tmp_path: Path
) -> None:
    make_item(db, business=business, external_id="old-cost")
    make_item(db, business=business, external_id="old-sale", kind=ItemKind.SALES)
    make_item(
        db, business=business, external_id="old-credit", document_type=DocumentType.CREDIT_NOTE
    )
    db.commit()

    def credit(n: str, credits: str, kind: str = "cost") -> dict[str, Any]:
        return {
            "external_id": n,
            "kind": kind,
            "document_type": "credit_note",
            "credits_external_id": credits,
            "contact_name": "A",
            "total": "5.00",
        }

    path = _jsonl(
        tmp_path / "credits.jsonl",
        credit("c-ahead", "new-cost"),  # names a row further down the file
        credit("c-old", "old-cost"),
        credit("c-missing", "nowhere"),
        credit("c-side", "old-sale"),
        credit("c-sale", "old-sale", kind="sales"),
        credit("c-credit", "old-credit"),
        credit("c-refused", "bad-cost"),
        {"external_id": "new-cost", "kind": "cost", "contact_name": "A", "total": "9.00"},
        {"external_id": "bad-cost", "kind": "cost", "contact_name": "A", "total": "x"},
    )
    report = _import(db, business, path)

    assert _errors(report) == {
        (3, "credits_external_id"): "no item 'nowhere' in this business or among the good rows "
        "of this file",
        (4, "credits_external_id"): "'old-sale' is a sales item: a supplier credit note credits "
        "a cost or expense claim item",
        (6, "credits_external_id"): "'old-credit' is itself a credit note: a credit note credits "
        "an invoice or receipt",
        (7, "credits_external_id"): "no item 'bad-cost' in this business or among the good rows "
        "of this file",
        (9, "total"): "'x' is not a number (digits and one '.' only)",
    }
    assert report.refused == 5
    assert set(_by_id(db, business)) == {
        "old-cost",
        "old-sale",
        "old-credit",
        "c-ahead",
        "c-old",
        "c-sale",
        "new-cost",
    }


def test_assessment_resolves_and_stores_each_line_and_reads_the_organisation(
    db: Session, tmp_path: Path
) -> None:
    """The stored lines reach the engine; its per-line results are stored with the item."""
    world = build_world(db)
    db.add(
        Organisation(
            connection_id=world.connection.id,
            nomi_id="org-1",
            name="Bright",
            base_currency="GBP",
            lock_date=dt.date(2026, 1, 31),
        )
    )
    lines = [
        {
            "description": "Desk",
            "net": "100.00",
            "tax": "20.00",
            "category_edit": "cat-travel",
            "tax_rate_edit": None,
        },
        {
            "description": "Book",
            "net": "12.50",
            "tax": "0.00",
            "category_edit": None,
            "tax_rate_edit": None,
        },
    ]
    item = make_item(
        db,
        business=world.business,
        status="review",
        contact_name="Acme Ltd",
        date=dt.date(2026, 3, 1),  # after the lock date
        total=Decimal("132.50"),
        tax_amount=Decimal("20.00"),
        currency="EUR",
        exchange_rate=Decimal("0.85"),
        lines=lines,
    )
    db.commit()

    ctx = build_context(db, world.business.id)
    assert ctx.organisation == OrganisationRef("GBP", dt.date(2026, 1, 31))
    facts = facts_from_item(item)
    assert [(line.net, line.tax, line.category_id) for line in facts.lines] == [
        (Decimal("100.00"), Decimal("20.00"), "cat-travel"),
        (Decimal("12.50"), Decimal("0.00"), None),
    ]
    report = reassess(db, business_id=world.business.id)
    db.commit()

    assert report.ready == 1
    db.refresh(item)
    assert item.status == "ready"
    assert (item.resolved_net, item.resolved_tax) == (Decimal("112.50"), Decimal("20.00"))
    assert item.resolved_category_nomi_id is None  # the lines' categories differ
    assert item.resolved_lines == [
        {
            "number": 1,
            "category": "cat-travel",
            "tax_rate": "vat20",
            "net": "100.00",
            "tax": "20.00",
            "sources": {"category": "line", "tax_rate": "default_tax", "tax_amount": "extracted"},
        },
        {
            "number": 2,
            "category": "cat-office",
            "tax_rate": "zero",
            "net": "12.50",
            "tax": "0.00",
            "sources": {
                "category": "user_rule",
                "tax_rate": "default_zero_tax",
                "tax_amount": "extracted",
            },
        },
    ]
    again = reassess(db, business_id=world.business.id)
    assert again.updated == 0


def test_the_documented_examples_import_as_documented(
    db: Session, business: Business, tmp_path: Path
) -> None:
    """docs/intake.md "Documents": its CSV and JSON Lines examples import without a problem."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "intake.md").read_text()
    section = text[text.index("## Documents") :]
    csv_text = re.search(r"```csv\n(.*?)```", section, re.S)
    jsonl_text = re.search(r"```json\n(.*?)```", section, re.S)
    assert csv_text is not None
    assert jsonl_text is not None
    (tmp_path / "docs.csv").write_text(csv_text.group(1), encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text(jsonl_text.group(1), encoding="utf-8")

    first = _import(db, business, tmp_path / "docs.csv")
    second = _import(db, business, tmp_path / "docs.jsonl")

    assert (first.errors, second.errors) == ([], [])
    items = _by_id(db, business)
    assert len(items["inv-3"].lines) == 3
    assert items["eu-7"].exchange_rate == Decimal("0.853412")
    assert items["cn-1"].credits_external_id == "eu-7"
    assert items["cn-2"].document_type == DocumentType.CREDIT_NOTE
    assert items["inv-4"].total == Decimal("300.00")


def test_a_json_record_cannot_pose_as_the_csv_readers_markers(
    db: Session, business: Business, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "markers.jsonl",
        {
            "external_id": "m-1",
            "kind": "cost",
            "contact_name": "A",
            "total": "1.00",
            "__conflicts__": [[1, "total", "x"], 5],
        },
        {
            "external_id": "m-2",
            "kind": "cost",
            "contact_name": "A",
            "__conflicts__": 7,
            "lines": [[5, {"net": "1.00"}]],
        },
    )
    report = _import(db, business, path)

    assert _errors(report) == {
        (2, "lines[1]"): "m-2 line 1: must be an object with net, tax, description, category and "
        "tax_rate"
    }
    assert set(_by_id(db, business)) == {"m-1"}
