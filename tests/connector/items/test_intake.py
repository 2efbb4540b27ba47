"""Item intake from CSV and JSON Lines: good rows import, bad rows are refused by line and field."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.items.images import sniff_content_type
from connector.items.intake import NOT_ASSESSED, IntakeError, import_items
from connector.rules.vocabulary import ItemKind, ItemStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Business, Item
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.factories import (
    make_business,
    make_category,
    make_connection,
    make_contact_rule,
    make_membership,
    make_payment_method,
    make_user,
)

CLERK = "clerk@bright.example"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
HEADER = (
    "external_id,kind,contact_name,reference,date,due_date,currency,total,tax_amount,description,"
    "category,tax_rate,paid,payment_method,claimant_email,claimant_nomi_user_id,image\n"
)


@pytest.fixture
def business(db: Session) -> Business:
    business = make_business(db, slug="bright-smile")
    make_membership(db, user=make_user(db, email=CLERK), business=business, role=Role.STANDARD)
    make_payment_method(db, business=business, name="Company credit card")
    make_payment_method(db, business=business, name="Business current account")
    db.commit()
    return business


def _items(db: Session, business: Business) -> list[Item]:
    return list(db.exec(select(Item).where(Item.business_id == business.id)))


def test_the_example_files_import_completely_and_a_second_import_adds_nothing(
    db: Session, business: Business, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    first_csv = import_items(
        db, EXAMPLES / "items.csv", business_id=business.id, actor_email=CLERK, images_dir=images
    )
    first_jsonl = import_items(
        db, EXAMPLES / "items.jsonl", business_id=business.id, actor_email=CLERK, images_dir=images
    )
    assert first_csv.errors == []
    assert first_jsonl.errors == []
    assert (len(first_csv.imported), len(first_jsonl.imported)) == (10, 5)

    again = import_items(
        db, EXAMPLES / "items.csv", business_id=business.id, actor_email=CLERK, images_dir=images
    )
    assert again.imported == []
    assert len(again.duplicates) == 10
    items = _items(db, business)
    assert len(items) == 15
    kinds = {i.external_id: i.kind for i in items}
    assert kinds["bs-0007"] == ItemKind.SALES
    assert kinds["bs-0009"] == ItemKind.EXPENSE_CLAIM
    claim = next(i for i in items if i.external_id == "bs-0009")
    assert claim.claimant_email == "priya@brightsmile.example"
    assert claim.paid is True
    assert claim.image_content_type == "image/png"
    assert claim.image_path is not None
    stored = Path(claim.image_path)
    assert stored.parent == images
    assert stored.name == hashlib.sha256(stored.read_bytes()).hexdigest() == claim.image_sha256
    paid = next(i for i in items if i.external_id == "bs-0101")
    assert paid.payment_method_id is not None
    assert paid.total == Decimal("312.00")
    assert all(i.status in (ItemStatus.REVIEW, ItemStatus.READY) for i in items)


def test_items_of_an_unconnected_business_wait_in_review_as_not_yet_assessed(
    db: Session, business: Business, tmp_path: Path
) -> None:
    report = import_items(
        db,
        EXAMPLES / "items.csv",
        business_id=business.id,
        actor_email=CLERK,
        images_dir=tmp_path / "images",
    )
    assert report.ok
    items = _items(db, business)
    assert {i.status for i in items} == {ItemStatus.REVIEW}
    assert all(i.review_reasons == [NOT_ASSESSED] for i in items)


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
    assert _items(db, business) == []
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

    assert [i.external_id for i in _items(db, business)] == ["ok-1"]
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


def test_json_lines_report_bad_json_and_wrong_types_by_line(
    db: Session, business: Business, tmp_path: Path
) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text(
        '{"external_id": "j-1", "kind": "sales", "contact_name": "NHS England", "total": 10}\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"external_id": "j-2", "kind": "cost", "contact_name": {"x": 1}, "colour": "red"}\n'
    )
    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    assert len(report.imported) == 1
    assert {(e.line, e.field) for e in report.errors} == {
        (3, "(record)"),
        (4, "(record)"),
        (5, "contact_name"),
        (5, "colour"),
    }


def test_whole_file_problems_raise_a_clear_intake_error(
    db: Session, business: Business, tmp_path: Path
) -> None:
    with pytest.raises(IntakeError, match="not found"):
        import_items(db, tmp_path / "missing.csv", business_id=business.id, actor_email=CLERK)
    (tmp_path / "items.xlsx").write_text("x")
    with pytest.raises(IntakeError, match=r"\.csv or \.jsonl"):
        import_items(db, tmp_path / "items.xlsx", business_id=business.id, actor_email=CLERK)
    (tmp_path / "cols.csv").write_text("external_id,kind,amount\n1,cost,3\n")
    with pytest.raises(IntakeError, match="amount"):
        import_items(db, tmp_path / "cols.csv", business_id=business.id, actor_email=CLERK)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
        (b"GIF89a", None),
        (b"<html>", None),
    ],
)
def test_image_types_are_recognised_by_content(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


def test_items_of_a_connected_business_are_assessed_after_import(
    db: Session, business: Business, tmp_path: Path
) -> None:
    connection = make_connection(db, business=business)
    make_category(db, connection=connection, nomi_id="cat-453", name="Office Expenses")
    make_contact_rule(db, connection=connection, name="Staples UK", category_nomi_id="cat-453")
    db.commit()

    report = import_items(
        db,
        EXAMPLES / "items.csv",
        business_id=business.id,
        actor_email=CLERK,
        images_dir=tmp_path / "images",
    )

    assert report.ok
    items = {i.external_id: i for i in _items(db, business)}
    assert all(NOT_ASSESSED not in i.review_reasons for i in items.values())
    assert items["bs-0004"].resolved_category_nomi_id == "cat-453"


def test_an_import_waits_its_turn_while_another_connection_commits(
    engine: Engine, business: Business, db: Session, tmp_path: Path
) -> None:
    """Publishing commits all the time: the duplicate check and the insert must share a write
    transaction, or on SQLite the insert fails at once with "database is locked"."""
    db.commit()
    with commit_elsewhere_before_first_write(engine) as errors, Session(engine) as session:
        report = import_items(
            session,
            EXAMPLES / "items.csv",
            business_id=business.id,
            actor_email=CLERK,
            images_dir=tmp_path / "i",
        )
    assert errors == []
    assert report.ok
    assert report.imported
    assert len(_items(db, business)) == len(report.imported)


# --- issue 17: streaming, short write transactions, actor, concurrency, precise values ----------

ROW = "{n},cost,Staples UK,R{n},2026-03-02,,GBP,12.00,2.00,paper,,,no,,,,{image}\n"


def _write_rows(path: Path, count: int, *, image: str = "", start: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for n in range(start, start + count):
            handle.write(ROW.format(n=f"big-{n:06d}", image=image))
    return path


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
    monkeypatch.setattr("connector.items.intake.read_image", counting, raising=False)
    source = _write_rows(tmp_path / "same-image.csv", 150, image="scan.png")

    report = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )

    assert len(report.imported) == 150
    assert len(reads) == 1
    assert len(list((tmp_path / "i").iterdir())) == 1
    assert len({i.image_sha256 for i in _items(db, business)}) == 1


def test_the_memory_an_import_uses_does_not_grow_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python allocations stay flat in the file's size (main kept the whole text and every row
    parsed). The import's own memory: measured on SQLite only."""
    import tracemalloc

    from connector.store.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path}/memory.db")
    migrate(engine)
    db = Session(engine, expire_on_commit=False)
    business = make_business(db)
    make_membership(db, user=make_user(db, email=CLERK), business=business, role=Role.STANDARD)
    db.commit()
    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 100)
    small = _write_rows(tmp_path / "small.csv", 500)
    large = _write_rows(tmp_path / "large.csv", 3000, start=500)
    peaks = []
    for source in (small, large):
        tracemalloc.start()
        report = import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert report.ok
    assert len(_items(db, business)) == 3500
    # Beyond a chunk, a row costs only its id in the report (main: about 20 KB a row).
    assert (peaks[1] - peaks[0]) / 2500 < 500, peaks
    assert peaks[1] < 5 * 1024 * 1024, peaks
    db.close()
    engine.dispose()


def test_a_file_error_after_the_first_chunk_still_writes_nothing(
    db: Session, business: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 50)
    shutil.copy(EXAMPLES / "images" / "receipt-taxi.png", tmp_path / "taxi.png")
    source = _write_rows(tmp_path / "broken-at-the-end.csv", 400, image="taxi.png")
    with source.open("ab") as handle:
        handle.write(b"late-1,cost,Caf\xe9 Latin-1,R,2026-03-02,,GBP,1.00,,,,,no,,,,\n")

    with pytest.raises(IntakeError, match=r"cannot read broken-at-the-end\.csv as UTF-8"):
        import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )

    assert _items(db, business) == []
    stored = tmp_path / "i"
    assert not stored.exists() or list(stored.iterdir()) == []  # its stored image is removed


def test_a_big_import_commits_in_chunks_and_other_writers_get_in_between(
    engine: Engine, business: Business, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2: no single write transaction holds the lock for the whole file."""
    import sqlalchemy as sa
    from sqlalchemy import event

    from connector.store.db import make_engine

    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 100)
    source = _write_rows(tmp_path / "many.csv", 650)
    other = make_engine(str(engine.url))
    seen_between: list[int] = []

    def write_elsewhere(_session: Session) -> None:
        with other.begin() as conn:  # another writer, as `settings set` would be
            conn.execute(sa.text("UPDATE businesses SET name = name || '.'"))
            seen_between.append(conn.execute(sa.text("SELECT count(*) FROM items")).scalar_one())

    with Session(engine) as session:
        event.listen(session, "after_commit", write_elsewhere)
        report = import_items(
            session, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
    other.dispose()

    assert len(report.imported) == 650
    assert sorted({n for n in seen_between if 0 < n < 650}) == [100, 200, 300, 400, 500, 600]
    assert report.longest_write_seconds < 1.0


def test_an_import_needs_a_member_of_the_business_and_is_audited_with_its_counts(
    db: Session, business: Business, tmp_path: Path
) -> None:
    from connector.access import PermissionDeniedError

    outsider = make_user(db, email="someone@else.example")
    db.commit()
    with pytest.raises(
        PermissionDeniedError, match=r"someone@else\.example may not perform 'items\.import'"
    ):
        import_items(
            db,
            EXAMPLES / "items.csv",
            business_id=business.id,
            actor_email=outsider.email,
            images_dir=tmp_path / "i",
        )
    assert _items(db, business) == []

    report = import_items(
        db,
        EXAMPLES / "bad-items.csv",
        business_id=business.id,
        actor_email=CLERK,
        images_dir=tmp_path / "i",
    )
    again = import_items(
        db,
        EXAMPLES / "items.csv",
        business_id=business.id,
        actor_email=CLERK,
        images_dir=tmp_path / "i",
    )
    assert report.refused == 10
    assert len(again.imported) == 10

    audits = db.exec(
        select(AuditLog).where(AuditLog.action == "items.import").order_by(AuditLog.at)  # type: ignore[arg-type]
    ).all()
    assert [(a.allowed, a.actor_user_id == outsider.id) for a in audits] == [
        (False, True),
        (True, False),
        (True, False),
    ]
    assert audits[1].detail == {
        "file": "bad-items.csv",
        "rows": 10,
        "imported": 0,
        "already_present": 0,
        "refused": 10,
    }
    assert audits[2].detail["imported"] == 10


def test_two_imports_of_one_file_at_once_import_it_once_and_report_the_rest_present(
    engine: Engine, business: Business, tmp_path: Path
) -> None:
    """Finding 7: both imports check before either inserts; no raw UniqueViolation."""
    import threading

    from sqlalchemy import event

    from connector.store.db import make_engine

    source = _write_rows(tmp_path / "twice.csv", 40)
    barrier = threading.Barrier(2, timeout=1.5)
    reports: list[object] = []

    def before_insert(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ITEMS"):
            # both have looked for present rows (on SQLite the other waits for the lock)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    def run_import() -> None:
        own = make_engine(str(engine.url))  # as a second process would
        event.listen(own, "before_cursor_execute", before_insert)
        try:
            with Session(own) as session:
                reports.append(
                    import_items(
                        session,
                        source,
                        business_id=business.id,
                        actor_email=CLERK,
                        images_dir=tmp_path / "i",
                    )
                )
        except Exception as exc:  # reported below
            reports.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(not isinstance(r, Exception) for r in reports), reports
    counts = sorted((len(r.imported), len(r.duplicates)) for r in reports)  # type: ignore[attr-defined]
    assert counts == [(0, 40), (40, 0)]
    with Session(engine) as session:
        assert len(_items(session, business)) == 40


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

    items = _items(db, business)
    if stored is None:
        assert [(e.line, e.field) for e in report.errors] == [(2, "tax_amount")]
        assert "at most 13 digits before the point" in report.errors[0].message
        assert items == []
    else:
        db.expire_all()
        assert [i.tax_amount for i in _items(db, business)] == [stored]


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
    assert [i.external_id for i in _items(db, business)] == ["d-2"]


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
    names = {i.contact_name for i in _items(db, business)}
    assert names == {nfc}
    assert all(
        i.payment_method_id is not None for i in _items(db, business) if i.external_id == "n-2"
    )


def test_an_import_stopped_while_writing_says_so_and_the_same_import_adds_the_rest(
    db: Session, business: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    import connector.items.intake
    from connector.items.intake import IntakeInterruptedError

    monkeypatch.setattr("connector.items.intake.CHUNK_ROWS", 100)
    source = _write_rows(tmp_path / "busy.csv", 450)
    real = connector.items.intake._Inserter.insert
    calls: list[int] = []

    def busy_on_the_third(
        self: object, connection: object, ids: object, params: list[object]
    ) -> object:
        calls.append(len(params))
        if len(calls) == 3:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(self, connection, ids, params)  # type: ignore[arg-type]

    monkeypatch.setattr(connector.items.intake._Inserter, "insert", busy_on_the_third)
    with pytest.raises(IntakeInterruptedError, match=r"database stayed busy.*after 200 item"):
        import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
    assert len(_items(db, business)) == 200
    [audit] = db.exec(select(AuditLog).where(AuditLog.action == "items.import")).all()
    assert audit.detail["interrupted"] is True
    assert audit.detail["imported"] == 200

    monkeypatch.setattr(connector.items.intake._Inserter, "insert", real)
    again = import_items(
        db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
    )
    assert (len(again.imported), len(again.duplicates)) == (250, 200)
    assert len(_items(db, business)) == 450


def test_the_one_pass_character_check_refuses_exactly_what_the_text_guard_refuses() -> None:
    """The fast check of a whole row must agree with ``connector.text_guard`` on every
    character of the Basic Multilingual Plane (and a few beyond), in one-line and free text."""
    from connector.items import fields as intake_fields
    from connector.text_guard import character_refusal

    for code in [*range(0x10000), 0x1F9B7, 0xE0001, 0x10FFFF]:
        char = chr(code)
        for multiline, pattern in (
            (False, intake_fields._REFUSED),
            (True, intake_fields._REFUSED_IN_FREE_TEXT),
        ):
            assert (pattern.search(char) is not None) == (
                character_refusal(char, multiline=multiline) is not None
            ), (hex(code), multiline)
