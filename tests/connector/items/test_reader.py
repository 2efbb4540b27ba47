"""Reading intake files: bad JSON Lines records by line, whole-file problems as ``IntakeError``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from connector.items.intake import IntakeError, import_items
from connector.store.models import Business
from tests.connector.items.conftest import CLERK


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
        import_items(
            db,
            tmp_path / "missing.csv",
            business_id=business.id,
            actor_email=CLERK,
            images_dir=tmp_path,
        )
    (tmp_path / "items.xlsx").write_text("x")
    with pytest.raises(IntakeError, match=r"\.csv or \.jsonl"):
        import_items(
            db,
            tmp_path / "items.xlsx",
            business_id=business.id,
            actor_email=CLERK,
            images_dir=tmp_path,
        )
    (tmp_path / "cols.csv").write_text("external_id,kind,amount\n1,cost,3\n")
    with pytest.raises(IntakeError, match="amount"):
        import_items(
            db,
            tmp_path / "cols.csv",
            business_id=business.id,
            actor_email=CLERK,
            images_dir=tmp_path,
        )
