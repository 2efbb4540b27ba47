"""Item intake as a whole: the example files import, assessment follows, the actor is audited."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connector.items.intake import import_items
from connector.items.write import NOT_ASSESSED
from connector.rules.vocabulary import ItemKind, ItemStatus, Role
from connector.store.history_tables import AuditLog
from connector.store.models import Business
from tests.connector.conftest import commit_elsewhere_before_first_write
from tests.connector.factories import (
    make_business,
    make_category,
    make_connection,
    make_contact_rule,
    make_membership,
    make_user,
)
from tests.connector.items.conftest import CLERK, EXAMPLES, items_of, write_rows


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
    assert (len(first_csv.imported), len(first_jsonl.imported)) == (10, 8)

    again = import_items(
        db, EXAMPLES / "items.csv", business_id=business.id, actor_email=CLERK, images_dir=images
    )
    assert again.imported == []
    assert len(again.duplicates) == 10
    items = items_of(db, business)
    assert len(items) == 18
    kinds = {i.external_id: i.kind for i in items}
    documents = {
        i.external_id: (i.document_type, i.credits_external_id, len(i.lines)) for i in items
    }
    assert documents["bs-0106"] == ("credit_note", "bs-0002", 0)
    assert documents["bs-0107"] == ("invoice", None, 3)
    assert documents["bs-0108"][0] == "receipt"
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
    items = items_of(db, business)
    assert {i.status for i in items} == {ItemStatus.REVIEW}
    assert all(i.review_reasons == [NOT_ASSESSED] for i in items)


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
    items = {i.external_id: i for i in items_of(db, business)}
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
    assert len(items_of(db, business)) == len(report.imported)


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
    small = write_rows(tmp_path / "small.csv", 500)
    large = write_rows(tmp_path / "large.csv", 3000, start=500)
    peaks = []
    for source in (small, large):
        tracemalloc.start()
        report = import_items(
            db, source, business_id=business.id, actor_email=CLERK, images_dir=tmp_path / "i"
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert report.ok
    assert len(items_of(db, business)) == 3500
    # Beyond a chunk, a row costs only its id in the report (main: about 20 KB a row).
    assert (peaks[1] - peaks[0]) / 2500 < 500, peaks
    assert peaks[1] < 5 * 1024 * 1024, peaks
    db.close()
    engine.dispose()


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
    assert items_of(db, business) == []

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


def test_a_whole_file_import_writes_nothing_when_one_row_is_refused(
    db: Session, business: Business, tmp_path: Path
) -> None:
    good = (EXAMPLES / "items.csv").read_text(encoding="utf-8").splitlines()[:2]
    bad = (EXAMPLES / "bad-items.csv").read_text(encoding="utf-8").splitlines()[1]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([*good, bad]) + "\n", encoding="utf-8")
    shutil.copytree(EXAMPLES / "images", tmp_path / "images")
    stored = tmp_path / "stored"

    report = import_items(
        db, mixed, business_id=business.id, actor_email=CLERK, images_dir=stored, whole_file=True
    )

    assert (report.rows, report.refused, report.imported) == (2, 1, [])
    assert [str(e).split(":")[0] for e in report.errors] == ["line 3, tax_amount"]
    assert items_of(db, business) == []
    assert not any(stored.rglob("*.*"))  # the good row's image was not kept either
    kept = import_items(db, mixed, business_id=business.id, actor_email=CLERK, images_dir=stored)
    assert len(kept.imported) == 1  # the CLI's way: the good row goes in
