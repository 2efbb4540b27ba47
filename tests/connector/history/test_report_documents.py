"""The report's documents: published counts and base-currency totals by business and type."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connector.history.documents import (
    DOCUMENT_COLUMNS,
    NOT_RECORDED,
    base_currency_totals,
    by_document,
    with_base_totals,
)
from connector.history.queries import ReportWindow
from connector.history.records import record_attempt
from connector.history.report.artifacts import TABLES, summary_markdown
from connector.history.report.build import build_report
from connector.history.report.html import base_total_text, render_html
from connector.history.report.units import format_value
from tests.connector.factories import make_business, make_item

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = ReportWindow(date(2026, 3, 1), date(2026, 3, 10))


def _totals(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """``business_document`` totals as the loader returns them."""
    columns = [
        "business",
        "document_type",
        "base_currency",
        "published",
        "failed",
        "retried",
        "attempts",
        "without_base_total",
        "base_total",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["business"] = frame["business"].astype("string")
    return frame


def test_documents_are_totalled_per_business_and_type_and_unknown_totals_stay_unknown() -> None:
    totals = _totals(
        [
            ("acme", "invoice", "GBP", 2, 0, 0, 3, 0, 240.0),
            ("acme", "credit_note", "GBP", 1, 1, 0, 2, 0, 85.43),
            ("acme", "invoice", "GBP", 0, 1, 1, 1, 0, float("nan")),  # only a failure
            ("acme", None, None, 3, 0, 0, 3, 3, float("nan")),  # before migration 0007
            ("bolt", "receipt", "EUR", 2, 0, 0, 2, 1, 50.0),
        ]
    )

    table = by_document(totals)

    assert list(table.columns) == DOCUMENT_COLUMNS
    rows = {(r.business, r.document_type): r for r in table.itertuples()}
    assert set(rows) == {
        ("acme", "credit_note"),
        ("acme", "invoice"),
        ("acme", NOT_RECORDED),
        ("bolt", "receipt"),
    }
    assert (rows["acme", "invoice"].published, rows["acme", "invoice"].base_total) == (2, 240.0)
    old = rows["acme", NOT_RECORDED]
    assert (old.base_currency, old.published, old.without_base_total) == (NOT_RECORDED, 3, 3)
    assert math.isnan(old.base_total)  # not 0
    assert (rows["bolt", "receipt"].base_total, rows["bolt", "receipt"].without_base_total) == (
        50.0,
        1,
    )
    eur, gbp, unknown = base_currency_totals(table)
    assert (eur, gbp) == (("EUR", 50.0, 1), ("GBP", 325.43, 0))
    assert (unknown[0], unknown[2]) == (NOT_RECORDED, 3)
    assert math.isnan(unknown[1])


def test_business_totals_are_in_its_base_currency_or_say_why_not() -> None:
    documents = by_document(
        _totals(
            [
                ("acme", "invoice", "GBP", 2, 0, 0, 2, 0, 240.0),
                ("bolt", "invoice", "GBP", 1, 0, 0, 1, 0, 10.0),
                ("bolt", "invoice", "EUR", 1, 0, 0, 1, 0, 20.0),  # base currency changed
                ("cleo", None, None, 4, 0, 0, 4, 4, float("nan")),
            ]
        )
    )
    per_business = pd.DataFrame(
        {
            "business": pd.Series(["acme", "bolt", "cleo", "dune"], dtype="string"),
            "published": [2, 2, 4, 0],
            "failed": [0, 0, 0, 0],
        }
    )

    out = with_base_totals(per_business, documents).set_index("business")

    assert list(out.columns[:3]) == ["published", "base_currency", "base_total"]
    assert (out.loc["acme", "base_currency"], out.loc["acme", "base_total"]) == ("GBP", 240.0)
    assert out.loc["bolt", "base_currency"] == "mixed"
    assert math.isnan(out.loc["bolt", "base_total"])
    assert out.loc["cleo", "base_currency"] == NOT_RECORDED
    assert math.isnan(out.loc["cleo", "base_total"])
    assert pd.isna(out.loc["dune", "base_currency"])  # nothing published


def test_an_unknown_base_total_reads_not_recorded_and_money_has_two_decimals() -> None:
    assert format_value("base_total", float("nan")) == "not recorded"
    assert format_value("base_total", None) == "not recorded"
    assert format_value("base_total", 1234.5) == "1,234.50"
    assert format_value("base_total", 0.0) == "0.00"


@pytest.fixture
def history(engine: Engine) -> None:
    """acme: an invoice in GBP, a credit note from EUR, one attempt from before 0007; bolt: a
    EUR-based organisation's receipt whose base total Nomi did not give."""
    with Session(engine, expire_on_commit=False) as s:
        acme = make_business(s, slug="acme")
        bolt = make_business(s, slug="bolt")
        at = NOW - timedelta(hours=1)
        documents: list[tuple[Any, dict[str, Any]]] = [
            (acme, {"document_type": "invoice", "currency": "GBP", "total": Decimal("120.00")}),
            (
                acme,
                {"document_type": "credit_note", "currency": "EUR", "total": Decimal("100.00")},
            ),
            (acme, {}),  # recorded before migration 0007
            (bolt, {"document_type": "receipt", "currency": "USD", "total": Decimal("10.00")}),
        ]
        base = {
            "invoice": ("GBP", Decimal("120.00")),
            "credit_note": ("GBP", Decimal("85.43")),
            "receipt": ("EUR", None),
        }
        for business, doc in documents:
            item = make_item(s, business=business)
            currency, total = base.get(doc.get("document_type", ""), (None, None))
            record_attempt(
                s,
                run_id=uuid.uuid4(),
                item_id=item.id,
                business_id=business.id,
                step="expense",
                outcome="published",
                at=at,
                **doc,
                **({"base_currency": currency, "base_total": total} if doc else {}),
            )
            record_attempt(  # a contact call: not a published record, never counted
                s,
                run_id=uuid.uuid4(),
                item_id=item.id,
                business_id=business.id,
                step="contact",
                outcome="published",
                at=at,
                **doc,
            )
        s.commit()


@pytest.mark.usefixtures("history")
def test_the_report_shows_base_currency_totals_by_business_and_document_type(
    engine: Engine,
) -> None:
    report = build_report(engine, WINDOW, now=NOW)

    docs = {(r.business, r.document_type): r for r in report.documents.itertuples()}
    assert (docs["acme", "invoice"].published, docs["acme", "invoice"].base_total) == (1, 120.0)
    assert docs["acme", "credit_note"].base_total == 85.43
    assert docs["acme", NOT_RECORDED].published == 1
    assert math.isnan(docs["acme", NOT_RECORDED].base_total)
    assert docs["bolt", "receipt"].base_currency == "EUR"
    assert docs["bolt", "receipt"].without_base_total == 1
    by_business = report.by_business.set_index("business")
    assert by_business.loc["acme", "published"] == 3  # the old attempt still counts
    assert (by_business.loc["acme", "base_currency"], by_business.loc["acme", "base_total"]) == (
        "GBP",
        205.43,
    )
    assert by_business.loc["bolt", "base_currency"] == "EUR"
    assert math.isnan(by_business.loc["bolt", "base_total"])
    assert report.totals["published"] == 4
    assert base_total_text(report.documents) == (
        "EUR not recorded (1 without a base total); GBP 205.43; "
        "1 published without a recorded currency"
    )

    page = render_html(report, charts={})
    assert "By document type (totals in base currency)" in page
    assert "credit_note" in page
    assert "not recorded" in page
    assert "GBP 205.43" in page
    assert "history-documents" in TABLES
    assert "GBP 205.43" in summary_markdown(report, charts={})
