"""Intake's first pass: check every record and stage the good rows, touching no connector table.

Each row is parsed and checked (``connector.items.rows.fields.parse_row``), its image checked
and stored once per distinct file, and the good rows kept in ``Staging``, a private temporary
SQLite file that also finds an ``external_id`` given twice in the file.
Memory stays one batch whatever the size.
"""

from __future__ import annotations

import marshal
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connector.items.images import ImageError, ImageStore, StoredImage
from connector.items.import_report import ImportReport, IntakeError
from connector.items.reader import records
from connector.items.rows.fields import FIELDS, parse_row
from connector.items.rows.values import RowError
from connector.rules.names import contact_key
from connector.rules.vocabulary import DocumentType, ItemKind

#: Item columns a staged row carries, in this order (``image`` becomes the three image columns).
ROW_COLUMNS = (
    *(a for a in FIELDS.values() if a != "image"),
    "lines",
    "image_path",
    "image_content_type",
    "image_sha256",
    "supplier_key",
)


#: Looks up external ids among the business's items: external id -> (kind, document type).
Known = Callable[[list[str]], dict[str, tuple[str, str]]]


_EXTERNAL_ID = ROW_COLUMNS.index("external_id")


def check_rows(
    source: Path,
    methods: dict[str, uuid.UUID],
    report: ImportReport,
    staging: Staging,
    images: ImageStore,
    stage: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    known: Known | None = None,
) -> None:
    """Read and check every record; stage the good rows (as ``stage`` turns their values for the
    database), store their images. Then each credit note's ``credits_external_id`` must name a
    good row of the file or (``known``: external id -> kind and document type) an item the
    business has, of the same side and not itself a credit note."""
    folder = source.parent.resolve()
    targets: dict[str, Path | None] = {}  # image cell -> resolved path inside the folder, or None
    for line, raw in records(source):
        report.rows += 1
        values, errors = parse_row(raw, line=line, payment_methods=methods)
        external_id = str(values.get("external_id") or "")
        first = staging.pending_line(external_id) if external_id else None
        if first is not None:
            errors.append(RowError(line, "external_id", f"duplicate of line {first} in this file"))
        image = _image(folder, targets, values, line, errors, images)
        if errors:
            report.refuse(errors)
            continue
        if image is not None:
            values |= {
                "image_path": str(image.path),
                "image_content_type": image.content_type,
                "image_sha256": image.sha256,
            }
        values.setdefault("currency", "GBP")
        values.setdefault("document_type", DocumentType.INVOICE.value)
        values.setdefault("lines", [])
        values["supplier_key"] = contact_key(values.get("contact_name"))
        staged = stage(tuple(map(values.get, ROW_COLUMNS)))
        kind, document = str(values.get("kind")), str(values["document_type"])
        credits = values.get("credits_external_id")
        for problem in staging.add(line, external_id, staged, kind, document, credits):
            report.refuse([problem])
    for problem in staging.flush():
        report.refuse([problem])
    for problem in staging.check_credits(known or (lambda ids: {})):
        report.refuse([problem])


def _credit_problem(kind: str, target: tuple[str, str] | None, credited: str) -> str | None:
    """Why a credit note of ``kind`` cannot credit ``credited`` (kind and type ``target``)."""
    if target is None:
        return f"no item {credited!r} in this business or among the good rows of this file"
    target_kind, target_type = target
    if target_type == DocumentType.CREDIT_NOTE:
        return f"{credited!r} is itself a credit note: a credit note credits an invoice or receipt"
    sales = kind == ItemKind.SALES
    if sales != (target_kind == ItemKind.SALES):
        return (
            f"{credited!r} is a {target_kind.replace('_', ' ')} item: a "
            f"{'customer' if sales else 'supplier'} credit note credits a "
            f"{'sales' if sales else 'cost or expense claim'} item"
        )
    return None


def _image(
    folder: Path,
    targets: dict[str, Path | None],
    values: dict[str, Any],
    line: int,
    errors: list[RowError],
    images: ImageStore,
) -> StoredImage | None:
    """The row's stored image (relative to the file's folder), or None; a problem is recorded
    as a row error. The image of a row refused for another reason is checked, never stored."""
    relative = values.pop("image", None)
    if not relative:
        return None
    if relative not in targets:
        resolved = (folder / relative).resolve()
        targets[relative] = resolved if resolved.is_relative_to(folder) else None
    target = targets[relative]
    if target is None:
        errors.append(RowError(line, "image", "must be a path inside the import file's folder"))
        return None
    try:
        if errors:
            images.check(target)
            return None
        return images.store(target)
    except ImageError as exc:
        errors.append(RowError(line, "image", str(exc)))
        return None
    except OSError as exc:  # the images folder, not the row: the whole import stops
        why = exc.strerror or exc
        raise IntakeError(f"cannot store images in {images.images_dir}: {why}") from exc


class Staging:
    """The good rows of one import in a private temporary SQLite file, in line order.

    Rows are added in batches of ``size``; an ``external_id`` seen before in the file is refused
    as a duplicate of the line that gave it first (checked within the batch at once, and against
    the staged ids when the batch is written). Each batch is stored as one ``marshal`` blob (the
    rows hold only str, int, float, bool and None by then) and read back as one chunk to insert.
    Memory stays one batch whatever the file's size.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._folder = tempfile.TemporaryDirectory(prefix="nomi-intake-")
        self._db = sqlite3.connect(Path(self._folder.name) / "staging.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE ids (external_id TEXT PRIMARY KEY, line INTEGER NOT NULL,"
            " kind TEXT NOT NULL, document TEXT NOT NULL) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE credits (external_id TEXT PRIMARY KEY, line INTEGER NOT NULL,"
            " kind TEXT NOT NULL, credited TEXT NOT NULL) WITHOUT ROWID"
        )
        self._refused: set[str] = set()
        self._db.execute("CREATE TABLE batches (n INTEGER PRIMARY KEY, rows BLOB NOT NULL)")
        self._batch: dict[str, tuple[int, tuple[Any, ...], str, str, str | None]] = {}

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._db.close()
        self._folder.cleanup()

    def pending_line(self, external_id: str) -> int | None:
        """The line of the batch's row with this ``external_id``, if the batch has one."""
        found = self._batch.get(external_id)
        return found[0] if found else None

    def add(
        self,
        line: int,
        external_id: str,
        row: tuple[Any, ...],
        kind: str = "",
        document: str = "",
        credits: str | None = None,
    ) -> list[RowError]:
        """Stage a good row (of ``kind`` and ``document`` type, crediting ``credits``); returns
        the problems of rows refused when a full batch is written."""
        self._batch[external_id] = (line, row, kind, document, credits)
        return self.flush() if len(self._batch) >= self.size else []

    def flush(self) -> list[RowError]:
        """Write the batch; rows whose ``external_id`` an earlier batch staged are refused."""
        batch = self._batch
        if not batch:
            return []
        marks = ",".join("?" * len(batch))
        earlier = self._db.execute(
            f"SELECT external_id, line FROM ids WHERE external_id IN ({marks})",  # noqa: S608
            list(batch),
        ).fetchall()
        problems = [
            RowError(batch.pop(key)[0], "external_id", f"duplicate of line {line} in this file")
            for key, line in earlier
        ]
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO ids (external_id, line, kind, document) VALUES (?, ?, ?, ?)",
            ((key, line, kind, doc) for key, (line, _, kind, doc, _) in batch.items()),
        )
        self._db.executemany(
            "INSERT INTO credits (external_id, line, kind, credited) VALUES (?, ?, ?, ?)",
            (
                (key, line, kind, credits)
                for key, (line, _, kind, _, credits) in batch.items()
                if credits
            ),
        )
        rows = [row for _, row, *_ in batch.values()]
        self._db.execute("INSERT INTO batches (rows) VALUES (?)", (marshal.dumps(rows),))
        self._db.execute("COMMIT")
        batch.clear()
        return problems

    def check_credits(self, known: Known) -> list[RowError]:
        """Refuse the staged credit notes whose ``credits_external_id`` names no good row of
        the file nor (``known``) an item of the business of the same side, or a credit note.
        Call once every row is staged; ``chunks`` then leaves the refused rows out."""
        problems: list[RowError] = []
        after = ""
        while True:
            refs = self._db.execute(
                "SELECT c.external_id, c.line, c.kind, c.credited, i.kind, i.document"
                " FROM credits c LEFT JOIN ids i ON i.external_id = c.credited"
                " WHERE c.external_id > ? ORDER BY c.external_id LIMIT 1000",
                (after,),
            ).fetchall()
            if not refs:
                return sorted(problems, key=lambda p: p.line)
            after = refs[-1][0]
            outside = known(sorted({r[3] for r in refs if r[4] is None}))
            for external_id, line, kind, credited, target_kind, target_type in refs:
                target = (target_kind, target_type) if target_kind else outside.get(credited)
                why = _credit_problem(kind, target, credited)
                if why is not None:
                    self._refused.add(external_id)
                    problems.append(RowError(line, "credits_external_id", why))

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The staged rows in line order, one batch at a time (less any refused since)."""
        after = 0
        while True:
            found = self._db.execute(
                "SELECT n, rows FROM batches WHERE n > ? ORDER BY n LIMIT 1", (after,)
            ).fetchone()
            if found is None:
                return
            after = found[0]
            rows: list[tuple[Any, ...]] = marshal.loads(found[1])  # noqa: S302 (ours, private)
            if self._refused:
                rows = [r for r in rows if r[_EXTERNAL_ID] not in self._refused]
            yield rows
