"""Broken intake files: a whole-file problem writes nothing; records end at line ends only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.items.intake import IntakeError
from connector.store.models import Business, Item
from tests.reliability.bad_input.conftest import (
    CLERK,
    CORPUS,
    Import,
    count_rows,
    external_ids,
    stored_images,
)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("extra-column.csv", "extra-column.csv: unknown column(s) approved_by"),
        ("duplicate-column.csv", "column(s) named more than once: total"),
        ("invalid-utf8-truncated.csv", "cannot read invalid-utf8-truncated.csv as UTF-8 text"),
        ("latin1.csv", "cannot read latin1.csv as UTF-8 text"),
    ],
)
def test_whole_file_problems_stop_the_import_before_anything_is_written(
    run_import: Import, db: Session, business: Business, images: Path, name: str, message: str
) -> None:
    with pytest.raises(IntakeError) as refused:
        run_import(CORPUS / name)

    assert message in str(refused.value)
    assert external_ids(db, business.id) == set()
    assert stored_images(images) == []


def test_a_cell_larger_than_the_csv_field_limit_is_a_clear_file_error(
    run_import: Import, db: Session, business: Business, tmp_path: Path
) -> None:
    source = tmp_path / "giant-cell.csv"
    source.write_text(
        "external_id,kind,contact_name,total\n"
        "ok-1,cost,Staples UK,12.00\n"
        f'big-1,cost,"{"x" * 200_000}",12.00\n'
    )
    with pytest.raises(IntakeError, match="not a readable CSV file at line 3: field larger"):
        run_import(source)
    assert external_ids(db, business.id) == set()  # not even the good row before it


# --- issue 17: records end at line ends only -----------------------------------------------------


@pytest.mark.parametrize(
    ("separator", "why"),
    [
        ("\x1c", "the control character U+001C"),
        ("\x1e", "the control character U+001E"),
        ("\x85", "the control character U+0085"),
        ("\u2028", "the line separator U+2028"),
        ("\u2029", "the line separator U+2029"),
    ],
)
def test_a_separator_inside_a_csv_line_keeps_it_one_refused_row(
    cli: Callable[..., tuple[int, str]],
    database_url: str,
    tmp_path: Path,
    separator: str,
    why: str,
) -> None:
    """`str.splitlines()` split one physical line in two and imported an injected item."""
    source = tmp_path / "injected.csv"
    source.write_text(
        f"external_id,kind,contact_name,total\ne1,cost,Acme{separator}e2,cost,Injected Ltd,99.00\n",
        encoding="utf-8",
    )
    code, output = cli(
        "items", "import", str(source), "--business", "bright-smile", "--actor", CLERK
    )

    assert code == 1, output
    assert "imported 0, already present 0, refused 1 of 1 rows" in output
    assert f"line 2, contact_name: contains {why}" in output
    assert "line 2, (record): more cells than the header has columns" in output
    assert count_rows(database_url, Item) == 0


def test_a_raw_line_separator_in_a_json_string_is_no_line_end_and_lines_are_counted_right(
    run_import: Import, db: Session, business: Business, tmp_path: Path
) -> None:
    source = tmp_path / "separators.jsonl"
    source.write_text(
        '{"external_id": "ls-1", "kind": "cost", "contact_name": "Staples UK", '
        '"description": "first\u2028second\u2029third"}\n'
        '{"external_id": "ls-2", "kind": "nope", "contact_name": "Staples UK"}\n'
        '{"external_id": "ls-3", "kind": "cost", "contact_name": "Acme\u2028Ltd"}\n',
        encoding="utf-8",
    )
    outcome = run_import(source)

    assert outcome.imported == {"ls-1"}
    assert outcome.errors == {
        (2, "kind"): "unknown kind 'nope': use cost, sales or expense_claim",
        (3, "contact_name"): "contains the line separator U+2028; refused (write it on one line)",
    }
    [item] = db.exec(select(Item).where(Item.business_id == business.id)).all()
    assert item.description == "first\nsecond\nthird"  # stored as the text guard stores breaks


def test_csv_error_lines_are_the_physical_lines(run_import: Import, tmp_path: Path) -> None:
    """A 3-line file: the errors are on lines 2 and 3 (main said "line 4")."""
    source = tmp_path / "three-lines.csv"
    source.write_text(
        "external_id,kind,contact_name,description,total\n"
        'cl-1,cost,Staples UK,"two\x85parts",12.00\n'
        "cl-2,nope,Staples UK,fine,12.00\n",
        encoding="utf-8",
    )
    outcome = run_import(source)

    assert outcome.imported == set()
    assert outcome.errors == {
        (2, "description"): "contains the control character U+0085; refused",
        (3, "kind"): "unknown kind 'nope': use cost, sales or expense_claim",
    }


def test_a_jsonl_line_longer_than_the_limit_refuses_the_file(
    run_import: Import, db: Session, business: Business, tmp_path: Path
) -> None:
    source = tmp_path / "long-line.jsonl"
    source.write_text(
        '{"external_id": "ll-1", "kind": "cost", "contact_name": "Staples UK"}\n'
        + '{"external_id": "ll-2", "description": "'
        + "x" * (1024 * 1024)
        + '"}\n',
        encoding="utf-8",
    )
    with pytest.raises(IntakeError, match="line 2 is longer than 1048576 bytes"):
        run_import(source)
    assert external_ids(db, business.id) == set()
