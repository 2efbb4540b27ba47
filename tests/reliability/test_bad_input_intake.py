"""Bad input to intake: each broken file or hostile value is refused by name, none half-written.

The corpus (``tests/reliability/corpus``) holds small broken files; large ones (a 50 MB image, a
200 KB cell, a 5,000-digit number, JSON nested 100,000 deep) are generated in a temporary folder.
Each file is imported through the library on SQLite and PostgreSQL, and through the
``nomi-connector`` CLI; the tests assert the message of every refusal, that refused rows left no
item and no stored image, and that a whole-file refusal wrote nothing at all.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from connector.admin.cli import app
from connector.items.intake import IntakeError, import_items
from connector.rules.vocabulary import Role
from connector.store.db import make_engine, migrate
from connector.store.history_tables import AuditLog
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
        before = _external_ids(db, business.id)
        report = import_items(
            db, path, business_id=business.id, actor_email=CLERK, images_dir=images
        )
        errors = {(e.line, e.field): e.message for e in report.errors}
        assert len(errors) == len(report.errors), "one message per (line, field)"
        return ImportOutcome(errors, _external_ids(db, business.id) - before)

    return run


def _external_ids(db: Session, business_id: uuid.UUID) -> set[str]:
    return set(db.exec(select(Item.external_id).where(Item.business_id == business_id)))


def _stored(images: Path) -> list[Path]:
    return sorted(images.iterdir()) if images.exists() else []


def test_impossible_amounts_are_refused_by_line_with_the_reason(
    run_import: Import, images: Path
) -> None:
    outcome = run_import(CORPUS / "bad-amounts.csv")

    assert outcome.imported == set()
    assert outcome.errors == {
        (2, "total"): "'1e30' is not a number (digits and one '.' only)",
        (3, "total"): "9999999999999999999999999999999999999999... is too large to be stored "
        "exactly: at most 13 digits before the point",
        (4, "total"): "'NaN' is not a finite amount",
        (5, "total"): "'Infinity' is not a finite amount",
        (6, "total"): "total must be more than 0 (got -12.00)",
        (7, "total"): "12.345 has more than two decimal places",
        (8, "total"): "'1_000' is not a number (digits and one '.' only)",
        (9, "tax_amount"): "tax 12.01 is more than the total 12.00",
        (10, "tax_amount"): "tax cannot be negative (got -0.01)",
        (11, "total"): "'£12.00' is not a number (digits and one '.' only)",
        (12, "total"): "total 10000000.01 is implausibly large (limit 10000000.00)",
        (13, "tax_amount"): "'-Infinity' is not a finite amount",
    }


def test_impossible_dates_unknown_currencies_and_bad_switches_are_refused(
    run_import: Import,
) -> None:
    outcome = run_import(CORPUS / "dates-and-currencies.csv")

    assert outcome.imported == set()
    assert outcome.errors == {
        (2, "date"): "'2026-02-30' is not a date in YYYY-MM-DD form",
        (3, "date"): "'2026-13-01' is not a date in YYYY-MM-DD form",
        (4, "date"): "'01/03/2026' is not a date in YYYY-MM-DD form",
        (5, "date"): "'1899-12-31' is not a plausible YYYY-MM-DD date",
        (6, "due_date"): "due date 2026-02-28 is before the date 2026-03-01",
        (7, "currency"): "'XXX' is not an ISO 4217 currency code",
        (8, "currency"): "'GBPX' is not an ISO 4217 currency code",
        (9, "currency"): "'£' is not an ISO 4217 currency code",
        (10, "paid"): "'maybe' is not true/false",
    }


def test_formulas_are_refused_in_every_text_column_even_behind_invisible_characters(
    run_import: Import,
) -> None:
    csv_outcome = run_import(CORPUS / "formulas.csv")
    jsonl_outcome = run_import(CORPUS / "hostile-names.jsonl")

    assert csv_outcome.imported == set()
    formula = "starts with {!r}, which looks like a spreadsheet formula; refused"
    assert csv_outcome.errors == {
        (2, "contact_name"): formula.format("="),
        (3, "contact_name"): formula.format("+"),
        (4, "contact_name"): formula.format("@"),
        (5, "reference"): formula.format("-"),
        (6, "description"): formula.format("="),
        (7, "contact_name"): formula.format("="),  # a leading tab is stripped, then "="
    }
    assert jsonl_outcome.errors[(4, "contact_name")] == formula.format("=")  # zero-width space
    assert jsonl_outcome.errors[(5, "contact_name")] == formula.format("=")  # byte-order mark


def test_control_characters_bidi_overrides_and_lone_surrogates_are_refused(
    run_import: Import,
) -> None:
    outcome = run_import(CORPUS / "hostile-names.jsonl")

    assert outcome.imported == set()
    control = "contains the control character U+{}; refused"
    bidi = "contains the bidirectional control U+{}, which can disguise text; refused"
    assert outcome.errors == {
        (1, "contact_name"): control.format("0000"),
        (2, "contact_name"): control.format("001B"),
        (3, "contact_name"): bidi.format("202E"),
        (4, "contact_name"): "starts with '=', which looks like a spreadsheet formula; refused",
        (5, "contact_name"): "starts with '=', which looks like a spreadsheet formula; refused",
        (6, "contact_name"): "contains an unpaired surrogate U+D800; refused",
        (7, "contact_name"): control.format("000A"),
        (8, "external_id"): control.format("0007"),
        (9, "description"): control.format("0000"),
        (10, "reference"): bidi.format("2066"),
    }


def test_unicode_names_and_multiline_descriptions_survive_the_database_exactly(
    run_import: Import, db: Session, business: Business
) -> None:
    outcome = run_import(CORPUS / "unicode-names.jsonl")

    assert outcome.errors == {}
    stored = {
        i.external_id: (i.contact_name, i.description)
        for i in db.exec(select(Item).where(Item.business_id == business.id))
    }
    assert stored == {
        "un-01": ("Café Ünïcode & Søn", None),
        "un-02": ("北京烤鸭有限公司", None),
        "un-03": ("Smile 🦷 Clinic (داندان)", "two\nlines\tand a tab"),
        "un-04": ("Zoë's Café \u200d👩\u200d⚕️", None),
    }


def test_json_lines_with_non_objects_bad_json_and_repeated_keys_are_refused_by_line(
    run_import: Import,
) -> None:
    outcome = run_import(CORPUS / "non-objects.jsonl")

    assert outcome.imported == {"nj-01"}
    not_object = "each line must be a JSON object"
    assert outcome.errors == {
        (2, "(record)"): not_object,
        (3, "(record)"): not_object,
        (4, "(record)"): not_object,
        (5, "(record)"): not_object,
        (6, "(record)"): "not valid JSON: Expecting ',' delimiter",
        (7, "(record)"): "not valid JSON: key(s) given more than once: total",
    }


def test_json_values_of_the_wrong_type_are_refused_by_field(run_import: Import) -> None:
    outcome = run_import(CORPUS / "wrong-types.jsonl")

    assert outcome.imported == {"wt-10"}  # 12.5e3 is a JSON number: 12500.00
    plain = "must be a plain value, not a JSON object or list"
    assert outcome.errors == {
        (1, "total"): "'twelve' is not a number (digits and one '.' only)",
        (2, "total"): "'true' is not a number (digits and one '.' only)",
        (3, "total"): plain,
        (4, "kind"): "unknown kind '7': use cost, sales or expense_claim",
        (5, "date"): "'20260301' is not a date in YYYY-MM-DD form",
        (6, "paid"): "'maybe' is not true/false",
        (7, "total"): "'inf' is not a finite amount",
        (8, "total"): "'nan' is not a finite amount",
        (9, "date"): plain,
    }


def test_huge_generated_values_are_refused_without_crashing(
    run_import: Import, tmp_path: Path
) -> None:
    source = tmp_path / "huge.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    source.write_text(
        '{"external_id": "hg-01", "kind": "cost", "contact_name": "A", "total": '
        + "9" * 5000
        + "}\n"
        + deep
        + "\n"
        + '{"external_id": "hg-03", "kind": "cost", "contact_name": "'
        + "A" * 100_000
        + '", "total": 12}\n'
        + '{"external_id": "hg-04", "kind": "cost", "contact_name": "A", "total": "'
        + "1" * 5000
        + '"}\n'
    )
    outcome = run_import(source)

    assert outcome.imported == set()
    assert outcome.errors[(1, "(record)")].startswith("not valid JSON: Exceeds the limit")
    assert outcome.errors[(2, "(record)")] == "not valid JSON: nested too deeply"
    assert outcome.errors[(3, "contact_name")] == "longer than 255 characters"
    assert outcome.errors[(4, "total")].endswith("at most 13 digits before the point")


def test_duplicate_external_ids_in_one_file_keep_the_first_and_refuse_the_rest(
    run_import: Import,
) -> None:
    outcome = run_import(CORPUS / "duplicate-ids.csv")

    assert outcome.imported == {"dup-01", "dup-02"}
    assert outcome.errors == {
        (4, "external_id"): "duplicate of line 2 in this file",
        (5, "external_id"): "duplicate of line 3 in this file",
    }


def test_missing_columns_and_extra_cells_are_named_per_row(run_import: Import) -> None:
    missing = run_import(CORPUS / "missing-columns.csv")
    extra = run_import(CORPUS / "extra-cells.csv")

    assert missing.imported == set()
    assert missing.errors == {
        (2, "kind"): "required: cost, sales or expense_claim",
        (3, "kind"): "required: cost, sales or expense_claim",
    }
    assert extra.imported == {"xs-02"}  # a short row is fine: the missing cells are empty
    assert extra.errors == {(2, "(record)"): "more cells than the header has columns"}


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
    assert _external_ids(db, business.id) == set()
    assert _stored(images) == []


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
    assert _external_ids(db, business.id) == set()  # not even the good row before it


def test_images_too_large_fake_or_outside_the_import_folder_are_refused_and_not_stored(
    run_import: Import, tmp_path: Path, images: Path
) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    shutil.copy(CORPUS / "path-escape.csv", folder / "path-escape.csv")
    (tmp_path / "outside.png").write_bytes(PNG + b"outside")
    escape = run_import(folder / "path-escape.csv")

    big = folder / "scan.png"
    with big.open("wb") as handle:  # 50 MB, sparse: written in no time, removed with tmp_path
        handle.write(PNG)
        handle.truncate(50 * 1024 * 1024)
    (folder / "fake.pdf").write_text("%PFD not really a PDF")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "good.png").write_bytes(PNG + b"good")
    (folder / "images.csv").write_text(
        "external_id,kind,contact_name,total,image\n"
        "im-01,cost,Staples UK,12.00,scan.png\n"
        "im-02,cost,Staples UK,12.00,fake.pdf\n"
        "im-03,cost,Staples UK,12.00,empty.jpg\n"
        "im-04,cost,Staples UK,12.00,good.png\n"
        "im-05,cost,Staples UK,-1,good.png\n"
    )
    sized = run_import(folder / "images.csv")

    inside = "must be a path inside the import file's folder"
    assert escape.imported == set()
    assert escape.errors == {(2, "image"): inside, (3, "image"): inside, (4, "image"): inside}
    assert sized.imported == {"im-04"}
    assert sized.errors == {
        (2, "image"): "image scan.png is 52428800 bytes; the limit is 10485760 (10 MB)",
        (3, "image"): "image fake.pdf is not a PDF, PNG, JPEG or HEIC file (by content)",
        (4, "image"): "image empty.jpg is empty",
        (6, "total"): "total must be more than 0 (got -1.00)",
    }
    # Only the good row's image was stored; the refused row with the same image stored nothing
    # extra, and no temporary file was left behind.
    assert [p.read_bytes() for p in _stored(images)] == [PNG + b"good"]


# --- the same refusals through the nomi-connector CLI ------------------------------------------


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


def _count(database_url: str, model: type) -> int:
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            return int(s.exec(select(func.count()).select_from(model)).one())
    finally:
        engine.dispose()


CLI_REFUSALS = [
    ("bad-amounts.csv", "line 12, total: total 10000000.01 is implausibly large"),
    ("hostile-names.jsonl", "line 1, contact_name: contains the control character U+0000"),
    ("non-objects.jsonl", "line 7, (record): not valid JSON: key(s) given more than once"),
    ("dates-and-currencies.csv", "line 8, currency: 'GBPX' is not an ISO 4217 currency code"),
    ("latin1.csv", "error: cannot read latin1.csv as UTF-8 text"),
    ("duplicate-column.csv", "error: duplicate-column.csv: column(s) named more than once"),
    ("nowhere.csv", "error: file not found"),
]


def test_the_cli_names_each_problem_exits_1_and_writes_no_refused_row(
    cli: Callable[..., tuple[int, str]], database_url: str, tmp_path: Path
) -> None:
    for name, shown in CLI_REFUSALS:
        before = _count(database_url, Item)
        code, output = cli(
            "items", "import", str(CORPUS / name), "--business", "bright-smile", "--actor", CLERK
        )

        assert code == 1, name
        assert shown in output, output
        assert "Traceback" not in output
        good_rows = 1 if name == "non-objects.jsonl" else 0  # its first line is a good item
        assert _count(database_url, Item) == before + good_rows, name
    assert not (tmp_path / "home" / "images").exists()


def test_the_cli_refuses_an_unknown_business_and_bad_settings_without_writing(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    audits = _count(database_url, AuditLog)
    code, output = cli(
        "items", "import", str(CORPUS / "unicode-names.jsonl"), "--business", "no-such",
        "--actor", CLERK,
    )  # fmt: skip
    assert (code, "no-such" in output) == (1, True)

    for changes, message in [
        (["auto_publish=maybe"], "auto_publish takes true or false, not 'maybe'"),
        (["colour=blue"], "unknown setting 'colour'"),
        (["auto_publish"], "expected KEY=VALUE, got 'auto_publish'"),
        (["default_tax_costs=" + "x" * 100], "default_tax_costs takes a Nomi tax-rate id"),
        (["default_tax_sales==HYPERLINK(1)"], "not '=HYPERLINK(1)'"),
        (["default_zero_tax_code_sales=tax\x1b[2J"], "default_zero_tax_code_sales takes a"),
    ]:
        code, output = cli(
            "settings", "set", *changes, "--business", "bright-smile",
            "--actor", "owner@bright.example",
        )  # fmt: skip
        assert code == 1, output
        assert message in output
    assert _count(database_url, Item) == 0
    assert _count(database_url, AuditLog) == audits  # refused before the permission check


def test_a_standard_member_changing_settings_is_refused_audited_and_changes_nothing(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    code, output = cli(
        "settings", "set", "auto_publish=true", "--business", "bright-smile",
        "--actor", "clerk@bright.example",
    )  # fmt: skip

    assert code == 1
    assert (
        "user clerk@bright.example may not perform 'settings.set' on business 'bright-smile': "
        "their role there is 'standard'; only admins and accountants may"
    ) in output
    code, shown = cli("settings", "show", "--business", "bright-smile")
    assert "auto_publish = false" in shown
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            [refusal] = s.exec(select(AuditLog).where(AuditLog.action == "settings.set")).all()
    finally:
        engine.dispose()
    assert refusal.allowed is False


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
    assert _count(database_url, Item) == 0


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
    assert _external_ids(db, business.id) == set()


def test_the_cli_import_needs_a_member_as_actor_and_audits_the_import(
    cli: Callable[..., tuple[int, str]], database_url: str
) -> None:
    example = str(CORPUS / "unicode-names.jsonl")
    code, output = cli("items", "import", example, "--business", "bright-smile")
    assert code == 2
    assert "--actor" in output

    assert cli("user", "add", "someone@else.example", "--name", "Someone")[0] == 0
    code, output = cli(
        "items", "import", example, "--business", "bright-smile", "--actor", "someone@else.example"
    )
    assert code == 1
    assert output.strip() == (
        "error: user someone@else.example may not perform 'items.import': they are not a member "
        "of this business"
    )
    assert _count(database_url, Item) == 0

    code, output = cli("items", "import", example, "--business", "bright-smile", "--actor", CLERK)
    assert code == 0, output
    assert "imported 4, already present 0, refused 0 of 4 rows" in output
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            audits = s.exec(select(AuditLog).where(AuditLog.action == "items.import")).all()
    finally:
        engine.dispose()
    assert sorted((a.allowed, a.detail.get("imported")) for a in audits) == [
        (False, None),
        (True, 4),
    ]
