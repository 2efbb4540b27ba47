"""Intake's check pass: bad rows refused by line and field, good rows kept, images stored once."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session

from connector.items.intake import IntakeError, import_items
from connector.store.models import Business
from tests.connector.factories import (
    make_payment_method,
)
from tests.connector.items.conftest import CLERK, EXAMPLES, HEADER, items_of, write_rows


def test_every_kind_of_impossible_row_is_refused_with_its_line_and_field(
    db: Session, business: Business, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    report = import_items(
        db,
        EXAMPLES / "bad-items.csv",
        business_id=business.id,
        actor_email=CLERK,
        images_dir=images,
    )

    found = {(e.line, e.field) for e in report.errors}
    assert found == {
        (2, "tax_amount"),
        (3, "tax_amount"),
        (4, "total"),
        (5, "total"),
        (6, "currency"),
        (7, "date"),
        (8, "contact_name"),
        (9, "kind"),
        (10, "image"),
        (11, "contact_name"),
    }
    messages = {(e.line, e.field): e.message for e in report.errors}
    assert "negative" in messages[(2, "tax_amount")]
    assert "more than the total" in messages[(3, "tax_amount")]
    assert "XYZ" in messages[(6, "currency")]
    assert "formula" in messages[(11, "contact_name")]
    assert "line 9, kind" in str(next(e for e in report.errors if e.line == 9))
    assert report.imported == []
    assert items_of(db, business) == []
    assert not images.exists() or list(images.iterdir()) == []


def test_good_rows_import_while_bad_rows_beside_them_are_not_written(
    db: Session, business: Business, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES / "images", tmp_path / "images")
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024))
    (tmp_path / "fake.png").write_text("this is not an image")
    source = tmp_path / "mixed.csv"
    source.write_text(
        HEADER
        + "ok-1,cost,Staples UK,A1,2026-03-01,,GBP,12.00,2.00,ok,,,no,,,,images/receipt-taxi.png\n"
        + "bad-big,cost,Staples UK,A2,2026-03-01,,GBP,12.00,,too big,,,no,,,,big.png\n"
        + "bad-fake,cost,Staples UK,A3,2026-03-01,,GBP,12.00,,fake,,,no,,,,fake.png\n"
        + "ok-1,cost,Staples UK,A4,2026-03-01,,GBP,12.00,,dup,,,no,,,,\n"
        + "bad-pm,cost,Staples UK,A5,2026-03-01,,gbp,12.001,,pm,,,maybe,Barter,,,\n"
        + "bad-claim,expense_claim,Taxi,A6,2026-03-01,2026-02-01,GBP,5.00,,,,,,,not-an-email,,\n"
    )
    stored = tmp_path / "stored"

    report = import_items(db, source, business_id=business.id, actor_email=CLERK, images_dir=stored)

    assert [i.external_id for i in items_of(db, business)] == ["ok-1"]
    errors = {(e.line, e.field): e.message for e in report.errors}
    assert "10 MB" in errors[(3, "image")]
    assert "not a PDF, PNG, JPEG or HEIC" in errors[(4, "image")]
    assert "duplicate of line 2" in errors[(5, "external_id")]
    assert "two decimal places" in errors[(6, "total")]
    assert "true/false" in errors[(6, "paid")]
    assert "Barter" in errors[(6, "payment_method")]
    assert "not an email" in errors[(7, "claimant_email")]
    assert "before the date" in errors[(7, "due_date")]
    assert len(list(stored.iterdir())) == 1


def test_an_image_named_by_many_rows_is_read_and_stored_once(
    db: Session, business: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 rows naming one image: one read (not a copy per row), one stored file."""
    import connector.items.images

    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100_000)
    reads: list[Path] = []
    real = connector.items.images.read_image

    def counting(path: Path, **kwargs: object) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(connector.items.images, "read_image", counting)
    monkeypatch.setattr("connector.items.check.read_image", counting, raising=False)
    source = write_rows(tmp_path / "same-image.csv", 150, image="scan.png")

    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    assert len(report.imported) == 150
    assert len(reads) == 1
    assert len(list((tmp_path / "i").iterdir())) == 1
    assert len({i.image_sha256 for i in items_of(db, business)}) == 1


def test_a_file_error_after_the_first_chunk_still_writes_nothing(
    db: Session, business: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 50)
    shutil.copy(EXAMPLES / "images" / "receipt-taxi.png", tmp_path / "taxi.png")
    source = write_rows(tmp_path / "broken-at-the-end.csv", 400, image="taxi.png")
    with source.open("ab") as handle:
        handle.write(b"late-1,cost,Caf\xe9 Latin-1,R,2026-03-02,,GBP,1.00,,,,,no,,,,\n")

    with pytest.raises(IntakeError, match=r"cannot read broken-at-the-end\.csv as UTF-8"):
        import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )

    assert items_of(db, business) == []
    stored = tmp_path / "i"
    assert not stored.exists() or list(stored.iterdir()) == []  # its stored image is removed


@pytest.mark.parametrize(
    ("tax", "stored"),
    [
        ("9999999999999.99", Decimal("9999999999999.99")),
        ("1234567890123.45", Decimal("1234567890123.45")),
        ("999999999999999.99", None),
        ("10000000000000.00", None),
    ],
)
def test_amounts_are_stored_exactly_or_refused_never_rounded(
    db: Session, business: Business, tmp_path: Path, tax: str, stored: Decimal | None
) -> None:
    source = tmp_path / "tax.csv"
    source.write_text(f"external_id,kind,contact_name,tax_amount\nt-1,cost,Staples UK,{tax}\n")

    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    items = items_of(db, business)
    if stored is None:
        assert [(e.line, e.field) for e in report.errors] == [(2, "tax_amount")]
        assert "at most 13 digits before the point" in report.errors[0].message
        assert items == []
    else:
        db.expire_all()
        assert [i.tax_amount for i in items_of(db, business)] == [stored]


@pytest.mark.parametrize(
    "value", ["2026-W09-1", "2026-W09", "2026-061", "20260302", "\uff12\uff10\uff12\uff16-03-02"]
)
def test_dates_are_year_month_day_only(
    db: Session, business: Business, tmp_path: Path, value: str
) -> None:
    source = tmp_path / "dates.csv"
    source.write_text(
        "external_id,kind,contact_name,date\n"
        f"d-1,cost,Staples UK,{value}\n"
        "d-2,cost,Staples UK,2026-03-02\n",
        encoding="utf-8",
    )
    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    assert [(e.line, e.field) for e in report.errors] == [(2, "date")]
    assert "is not a date in YYYY-MM-DD form" in report.errors[0].message
    assert [i.external_id for i in items_of(db, business)] == ["d-2"]


def test_a_name_in_nfc_and_in_nfd_is_one_name(
    db: Session, business: Business, tmp_path: Path
) -> None:
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "Café Nero"), unicodedata.normalize("NFD", "Café Nero")
    assert nfc != nfd
    make_payment_method(
        db, business=business, name=unicodedata.normalize("NFD", "Carte bancaire é")
    )
    db.commit()
    source = tmp_path / "names.jsonl"
    source.write_text(
        f'{{"external_id": "n-1", "kind": "cost", "contact_name": "{nfc}"}}\n'
        f'{{"external_id": "n-2", "kind": "cost", "contact_name": "{nfd}", '
        f'"payment_method": "{unicodedata.normalize("NFC", "carte bancaire é")}"}}\n',
        encoding="utf-8",
    )
    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    assert report.errors == []
    names = {i.contact_name for i in items_of(db, business)}
    assert names == {nfc}
    assert all(
        i.payment_method_id is not None for i in items_of(db, business) if i.external_id == "n-2"
    )
