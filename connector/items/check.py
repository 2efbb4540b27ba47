"""Intake's first pass: check every record and stage the good rows, touching no connector table.

Each row is parsed and checked (``connector.items.fields.parse_row``), its image checked and stored
once per distinct file, and the good rows kept in ``Staging``, a private temporary SQLite file that
also finds an ``external_id`` given twice in the file. Memory stays one batch whatever the size.
"""

from __future__ import annotations

import marshal
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connector.items.fields import FIELDS, RowError, parse_row
from connector.items.images import ImageError, ImageStore, StoredImage
from connector.items.import_report import ImportReport, IntakeError
from connector.items.reader import records

#: Item columns a staged row carries, in this order (``image`` becomes the three image columns).
ROW_COLUMNS = (
    *(a for a in FIELDS.values() if a != "image"),
    "image_path",
    "image_content_type",
    "image_sha256",
)


def check_rows(
    source: Path,
    methods: dict[str, uuid.UUID],
    report: ImportReport,
    staging: Staging,
    images: ImageStore,
    stage: Callable[[tuple[Any, ...]], tuple[Any, ...]],
) -> None:
    """Read and check every record; stage the good rows (as ``stage`` turns their values for the
    database), store their images."""
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
        staged = stage(tuple(map(values.get, ROW_COLUMNS)))
        for problem in staging.add(line, external_id, staged):
            report.refuse([problem])
    for problem in staging.flush():
        report.refuse([problem])


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
            "CREATE TABLE ids (external_id TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE batches (n INTEGER PRIMARY KEY, rows BLOB NOT NULL)")
        self._batch: dict[str, tuple[int, tuple[Any, ...]]] = {}

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._db.close()
        self._folder.cleanup()

    def pending_line(self, external_id: str) -> int | None:
        """The line of the batch's row with this ``external_id``, if the batch has one."""
        found = self._batch.get(external_id)
        return found[0] if found else None

    def add(self, line: int, external_id: str, row: tuple[Any, ...]) -> list[RowError]:
        """Stage a good row; returns the problems of rows refused when a full batch is written."""
        self._batch[external_id] = (line, row)
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
            "INSERT INTO ids (external_id, line) VALUES (?, ?)",
            ((key, line) for key, (line, _) in batch.items()),
        )
        rows = [row for _, row in batch.values()]
        self._db.execute("INSERT INTO batches (rows) VALUES (?)", (marshal.dumps(rows),))
        self._db.execute("COMMIT")
        batch.clear()
        return problems

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The staged rows in line order, one batch at a time."""
        after = 0
        while True:
            found = self._db.execute(
                "SELECT n, rows FROM batches WHERE n > ? ORDER BY n LIMIT 1", (after,)
            ).fetchone()
            if found is None:
                return
            after = found[0]
            rows: list[tuple[Any, ...]] = marshal.loads(found[1])  # noqa: S302 (ours, private)
            yield rows
