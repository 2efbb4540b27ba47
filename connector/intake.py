"""Item intake: import cost items, sales items and expense claims from CSV or JSON Lines.

The format is documented in ``docs/intake.md``. Every row is checked before anything is written;
each problem is reported with its line number and field. Good rows are imported, bad rows are not
written at all (their images are not copied). ``external_id`` makes re-import idempotent: a row
whose ``external_id`` the business already has is skipped. Imported items start in ``review``
with reason ``not yet assessed`` and are then assessed by ``connector.review.reassess``.

Spreadsheet formulas: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is refused (never evaluated, never stored), so exported data cannot carry a formula.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from connector.db import begin_write
from connector.images import DocumentImage, ImageError, read_image, store_image
from connector.intake_fields import FIELDS, RowError, parse_row
from connector.models import Business, Item, ItemStatus, PaymentMethod
from connector.review import NoConnectionError, reassess

NOT_ASSESSED = "not yet assessed"


class IntakeError(Exception):
    """The file as a whole cannot be read (missing, unknown format, no header)."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        imported: Ids of the items created.
        duplicates: External ids skipped because the business already has them.
        errors: One entry per problem found (line, field, message); those rows were not written.
        rows: Data rows read.
    """

    imported: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        """True when every row was imported or already present."""
        return not self.errors


def import_items(
    session: Session,
    path: Path | str,
    *,
    business_id: uuid.UUID,
    images_dir: Path | None = None,
) -> ImportReport:
    """Import the items of a CSV (``.csv``) or JSON Lines (``.jsonl``/``.ndjson``) file.

    Args:
        session: A session on the connector database; the good rows are committed.
        path: The file. Image paths in it are relative to its folder.
        business_id: The business the items belong to.
        images_dir: Where images are stored (default ``ConnectorSettings().images_dir``).

    Returns:
        An ``ImportReport``: imported ids, skipped duplicates and the errors of refused rows.

    Raises:
        IntakeError: The file is missing or unreadable, its format unknown, or the business unknown.
    """
    source = Path(path)
    if session.get(Business, business_id) is None:
        raise IntakeError(f"unknown business {business_id}")
    if images_dir is None:
        from connector.settings import ConnectorSettings

        images_dir = ConnectorSettings().images_dir
    methods = {
        m.name.casefold(): m.id
        for m in session.exec(select(PaymentMethod).where(PaymentMethod.business_id == business_id))
    }
    report = ImportReport()
    seen: dict[str, int] = {}
    parsed: list[tuple[str, dict[str, Any], DocumentImage | None]] = []
    for line, raw in _records(source):
        report.rows += 1
        values, errors = parse_row(raw, line=line, payment_methods=methods)
        image = _image(source, values, line, errors)
        external_id = str(values.get("external_id") or "")
        if external_id and external_id in seen:
            errors.append(
                RowError(line, "external_id", f"duplicate of line {seen[external_id]} in this file")
            )
        if errors:
            report.errors.extend(errors)
            continue
        seen[external_id] = line
        parsed.append((external_id, values, image))
    # Parsed without holding a lock. The duplicate check and the insert share one write
    # transaction (publishing may commit meanwhile: a read snapshot could not become a writer).
    begin_write(session)
    existing = set(
        session.exec(select(Item.external_id).where(Item.business_id == business_id)).all()
    )
    accepted: list[tuple[dict[str, Any], DocumentImage | None]] = []
    for external_id, values, image in parsed:
        if external_id in existing:
            report.duplicates.append(external_id)
        else:
            accepted.append((values, image))
    report.imported = _write(session, business_id, accepted, images_dir)
    begin_write(session)
    assess(session, business_id, report.imported)
    return report


def _records(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, raw record) from a CSV or JSON Lines file."""
    if not source.is_file():
        raise IntakeError(f"file not found: {source}")
    suffix = source.suffix.lower()
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntakeError(f"cannot read {source.name} as UTF-8 text: {exc}") from exc
    if suffix == ".csv":
        yield from _csv_records(text, source.name)
    elif suffix in {".jsonl", ".ndjson"}:
        yield from _jsonl_records(text)
    else:
        raise IntakeError(f"unknown file type {suffix or '(none)'}: use .csv or .jsonl")


def _csv_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows keyed by the header (first line), with the line each row starts on."""
    reader = csv.DictReader(text.splitlines(keepends=True), restkey="__extra__")
    start = 1
    try:
        if not reader.fieldnames:
            raise IntakeError(f"{name} is empty: the first line must name the columns")
        columns = [c.strip() for c in reader.fieldnames]
        unknown = [c for c in reader.fieldnames if c.strip() not in FIELDS]
        if unknown:
            raise IntakeError(f"{name}: unknown column(s) {', '.join(unknown)}")
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise IntakeError(f"{name}: column(s) named more than once: {', '.join(twice)}")
        start = reader.line_num + 1
        for row in reader:
            record = {k.strip(): v for k, v in row.items() if k is not None and k != "__extra__"}
            if "__extra__" in row:
                record["__extra__"] = row["__extra__"]
            if any(v not in (None, "") for v in record.values()):
                yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise IntakeError(f"{name}: not a readable CSV file at line {start}: {exc}") from exc


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per non-blank line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            yield number, {"__invalid__": f"not valid JSON: {exc.msg}"}
            continue
        except RecursionError:
            yield number, {"__invalid__": "not valid JSON: nested too deeply"}
            continue
        except ValueError as exc:  # a huge integer literal, or a key given twice
            yield number, {"__invalid__": f"not valid JSON: {str(exc)[:120]}"}
            continue
        if not isinstance(record, dict):
            yield number, {"__invalid__": "each line must be a JSON object"}
            continue
        yield number, record


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (which value would win is not obvious)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key(s) given more than once: {', '.join(twice)}")
    return dict(pairs)


def _image(
    source: Path, values: dict[str, Any], line: int, errors: list[RowError]
) -> DocumentImage | None:
    """Read the row's image (relative to the file's folder); record a problem as a row error."""
    relative = values.get("image")
    if not relative:
        return None
    folder = source.parent.resolve()
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder):
        errors.append(RowError(line, "image", "must be a path inside the import file's folder"))
        return None
    try:
        return read_image(target)
    except ImageError as exc:
        errors.append(RowError(line, "image", str(exc)))
        return None


def _write(
    session: Session,
    business_id: uuid.UUID,
    accepted: list[tuple[dict[str, Any], DocumentImage | None]],
    images_dir: Path,
) -> list[uuid.UUID]:
    """Store the images, then insert the items in one transaction; undo new images on failure."""
    created: list[Path] = []
    try:
        items = []
        for values, image in accepted:
            fields = {k: v for k, v in values.items() if k != "image"}
            if image is not None:
                stored, new = store_image(image, images_dir)
                if new:
                    created.append(stored)
                fields |= {
                    "image_path": str(stored),
                    "image_content_type": image.content_type,
                    "image_sha256": image.sha256,
                }
            items.append(
                Item(
                    business_id=business_id,
                    status=ItemStatus.REVIEW,
                    review_reasons=[NOT_ASSESSED],
                    **fields,
                )
            )
        session.add_all(items)
        session.commit()
    except BaseException:
        session.rollback()
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return [item.id for item in items]


def assess(session: Session, business_id: uuid.UUID, item_ids: list[uuid.UUID] | None) -> None:
    """Run ``connector.review.reassess`` and commit, when the business has a connection.

    ``item_ids=None`` assesses every review/ready item of the business; an empty list does nothing.
    Items of a business never connected stay as imported until its first reference-data sync
    assesses them.
    """
    if item_ids is not None and not item_ids:
        return
    try:
        reassess(session, business_id=business_id, item_ids=item_ids)
        session.commit()
    except NoConnectionError:
        session.rollback()
