"""Bad values in intake files: each hostile or impossible value is refused by line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlmodel import Session, select

from connector.store.models import Business, Item
from tests.reliability.bad_input.conftest import (
    CORPUS,
    PNG,
    Import,
    stored_images,
)


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
        (6, "total"): "total must be more than 0 (got -12.00): a credit is imported as a credit "
        "note (document_type credit_note) with a positive total",
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
        (6, "total"): "total must be more than 0 (got -1.00): a credit is imported as a credit "
        "note (document_type credit_note) with a positive total",
    }
    # Only the good row's image was stored; the refused row with the same image stored nothing
    # extra, and no temporary file was left behind.
    assert [p.read_bytes() for p in stored_images(images)] == [PNG + b"good"]


def test_impossible_lines_credits_and_exchange_rates_are_refused_by_line_and_field(
    run_import: Import,
) -> None:
    """Issue 20: a line's amounts are checked as an item's, and the lines must add up."""
    outcome = run_import(CORPUS / "documents.csv")

    assert outcome.imported == set()
    assert outcome.errors == {
        (2, "line_net"): "dl-01 line 1: '1e30' is not a number (digits and one '.' only)",
        (3, "line_description"): "dl-02 line 1: contains the bidirectional control U+202E, "
        "which can disguise text; refused",
        (4, "line_net"): "dl-03 line 1: 99999999999999.00 is too large to be stored exactly: at "
        "most 13 digits before the point",
        (5, "line_net"): "dl-04 line 1: 'NaN' is not a finite amount",
        (6, "total"): "the lines add up to 11.99, not the total 12.00",
        (7, "total"): "total must be more than 0 (got -12.00): a credit is imported as a credit "
        "note (document_type credit_note) with a positive total",
        (8, "exchange_rate"): "'NaN' is not a finite rate",
        (9, "exchange_rate"): "an exchange rate must be more than 0 (got -0.5)",
        (10, "total"): "the lines add up to 10000000.01, implausibly large (limit 10000000.00)",
    }
