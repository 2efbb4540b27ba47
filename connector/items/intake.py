"""Item intake: import cost items, sales items and expense claims from CSV or JSON Lines.

The format and the limits are documented in ``docs/intake.md``. An import is done by a member of
the business (``actor_email``) and audited as ``items.import`` with its counts.

It runs in two streaming passes, so memory stays flat whatever the file's size:

1. **Check.** The file is read record by record (CSV through the ``csv`` module over the open file,
   JSON Lines split on ``\\n`` only) and every row is checked; each problem is reported with its
   line and field. Good rows go to a private staging file (a temporary SQLite database, which also
   finds an ``external_id`` given twice in the file); the image a good row names is read, checked
   and stored once per distinct file (``connector.items.images.ImageStore``). Nothing is written to
   the
   connector database in this pass: a whole-file problem found anywhere, even on the last line,
   stops the import with nothing written (and the images it stored removed again).
2. **Write.** The staged rows are inserted in chunks of ``CHUNK_ROWS``, each chunk in a write
   transaction of its own (``BEGIN IMMEDIATE`` on SQLite) that also skips the ``external_id`` the
   business already has, then assessed in chunks of ``ASSESS_ROWS`` (when the business has a
   connection). No transaction lasts long, so other writers (the CLI, publishing, recovery) get in
   between. ``INSERT ... ON CONFLICT DO NOTHING`` makes two imports of one file at the same time
   safe on PostgreSQL too: a row the other import inserted first is reported as already present.

Bad rows are not written at all (their images are not stored); the good rows beside them are.
An import interrupted while writing leaves whole items only, and importing the file again adds
the rest (``external_id`` makes re-import idempotent). Imported items start in ``review`` with
reason ``not yet assessed`` and are then assessed by ``connector.items.context.reassess``.

Spreadsheet formulas: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is refused (never evaluated, never stored), so exported data cannot carry a formula.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import marshal
import operator
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Session, select

from connector.history.records import record_audit
from connector.items.context import NoConnectionError, reassess
from connector.items.fields import FIELDS, RowError, method_key, parse_row
from connector.items.images import ImageError, ImageStore, StoredImage
from connector.publishing.queue import require_member
from connector.rules.vocabulary import ItemStatus
from connector.store.base import table_of, utcnow
from connector.store.db import begin_write, is_busy_error, is_sqlite
from connector.store.models import Business, Item, PaymentMethod

NOT_ASSESSED = "not yet assessed"
ACTION = "items.import"
#: Rows inserted per write transaction, and items assessed per write transaction.
CHUNK_ROWS = 2000
ASSESS_ROWS = 500
#: Problems listed in the report (all are counted; the rest are summed up in ``unlisted``).
MAX_LISTED_ERRORS = 1000
#: Longest JSON Lines line accepted (a longer one refuses the file, as a CSV cell over 128 KB).
MAX_JSONL_LINE = 1024 * 1024

#: Item columns a staged row carries, in this order (``image`` becomes the three image columns).
_ROW_COLUMNS = (
    *(a for a in FIELDS.values() if a != "image"),
    "image_path",
    "image_content_type",
    "image_sha256",
)
_EXTERNAL_ID = _ROW_COLUMNS.index("external_id")
_IMAGE_SHA = _ROW_COLUMNS.index("image_sha256")


class IntakeError(Exception):
    """The file as a whole cannot be read (missing, unknown format, no header)."""


class IntakeInterruptedError(IntakeError):
    """The import stopped while writing, after some chunks were committed (say how many)."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        imported: Ids of the items created.
        duplicates: External ids skipped because the business already has them.
        errors: The problems found (line, field, message), at most ``MAX_LISTED_ERRORS``; those
            rows were not written.
        rows: Data rows read.
        refused: Rows refused (each has at least one problem).
        unlisted: Problems found beyond the ``MAX_LISTED_ERRORS`` listed.
        longest_write_seconds: The longest write transaction the import held.
    """

    imported: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    refused: int = 0
    unlisted: int = 0
    longest_write_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every row was imported or already present."""
        return not self.refused

    def _refuse(self, problems: list[RowError]) -> None:
        self.refused += 1
        room = MAX_LISTED_ERRORS - len(self.errors)
        self.errors.extend(problems[: max(room, 0)])
        self.unlisted += max(len(problems) - max(room, 0), 0)


def import_items(
    session: Session,
    path: Path | str,
    *,
    business_id: uuid.UUID,
    actor_email: str,
    images_dir: Path | None = None,
) -> ImportReport:
    """Import the items of a CSV (``.csv``) or JSON Lines (``.jsonl``/``.ndjson``) file.

    Args:
        session: A session on the connector database (not inside a write transaction); the
            import commits its own short transactions.
        path: The file. Image paths in it are relative to its folder.
        business_id: The business the items belong to.
        actor_email: The member of the business importing (any role); audited.
        images_dir: Where images are stored (default ``ConnectorSettings().images_dir``).

    Returns:
        An ``ImportReport``: imported ids, skipped duplicates and the errors of refused rows.

    Raises:
        IntakeError: The file is missing or unreadable, its format unknown, or the business unknown
            (nothing written); ``IntakeInterruptedError`` when writing stopped after some chunks
            were committed (the same import again adds the rest).
        PermissionDeniedError: The actor is not a member of the business (refusal audited).
    """
    source = Path(path)
    if session.get(Business, business_id) is None:
        raise IntakeError(f"unknown business {business_id}")
    user = require_member(session, business_id=business_id, email=actor_email, action=ACTION)
    if images_dir is None:
        from connector.settings import ConnectorSettings

        images_dir = ConnectorSettings().images_dir
    methods = {
        method_key(m.name): m.id
        for m in session.exec(select(PaymentMethod).where(PaymentMethod.business_id == business_id))
    }
    session.commit()  # hold no read snapshot while the file is checked
    report = ImportReport()
    images = ImageStore(images_dir)
    inserter = _Inserter(session.get_bind().dialect, business_id)
    used: set[str] = set()
    with _Staging(CHUNK_ROWS) as staging:
        try:
            _check(source, methods, report, staging, images, inserter)
            _write(session, business_id, staging, inserter, report, used)
        except BaseException as exc:
            session.rollback()
            with contextlib.suppress(Exception):
                _remove_unused_images(session, images, used)
            if not report.imported:
                raise  # nothing was written
            with contextlib.suppress(Exception):
                _audit(session, business_id, user.id, source, report, interrupted=True)
            if not isinstance(exc, Exception):
                raise
            why = "the database stayed busy" if is_busy_error(exc) else type(exc).__name__
            raise IntakeInterruptedError(
                f"the import of {source.name} stopped ({why}) after {len(report.imported)} "
                "item(s) were imported: import the same file again to add the rest"
            ) from exc
    _remove_unused_images(session, images, used)
    _audit(session, business_id, user.id, source, report, interrupted=False)
    report.errors.sort(key=lambda e: e.line)
    return report


# --- pass 1: check ------------------------------------------------------------------------------


def _check(
    source: Path,
    methods: dict[str, uuid.UUID],
    report: ImportReport,
    staging: _Staging,
    images: ImageStore,
    inserter: _Inserter,
) -> None:
    """Read and check every record; stage the good rows (as the database will take their
    values), store their images."""
    folder = source.parent.resolve()
    targets: dict[str, Path | None] = {}  # image cell -> resolved path inside the folder, or None
    for line, raw in _records(source):
        report.rows += 1
        values, errors = parse_row(raw, line=line, payment_methods=methods)
        external_id = str(values.get("external_id") or "")
        first = staging.pending_line(external_id) if external_id else None
        if first is not None:
            errors.append(RowError(line, "external_id", f"duplicate of line {first} in this file"))
        image = _image(folder, targets, values, line, errors, images)
        if errors:
            report._refuse(errors)
            continue
        if image is not None:
            values |= {
                "image_path": str(image.path),
                "image_content_type": image.content_type,
                "image_sha256": image.sha256,
            }
        values.setdefault("currency", "GBP")
        staged = inserter.stage(tuple(map(values.get, _ROW_COLUMNS)))
        for problem in staging.add(line, external_id, staged):
            report._refuse([problem])
    for problem in staging.flush():
        report._refuse([problem])


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


class _Staging:
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

    def __enter__(self) -> _Staging:
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


# --- reading the file ---------------------------------------------------------------------------


def _records(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, raw record) from a CSV or JSON Lines file, streaming."""
    if not source.is_file():
        raise IntakeError(f"file not found: {source}")
    suffix = source.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        raise IntakeError(f"unknown file type {suffix or '(none)'}: use .csv or .jsonl")
    try:
        if suffix == ".csv":
            with source.open(newline="", encoding="utf-8-sig") as handle:
                yield from _csv_records(handle, source.name)
        else:
            with source.open("rb") as binary:
                yield from _jsonl_records(binary, source.name)
    except UnicodeDecodeError as exc:
        raise IntakeError(f"cannot read {source.name} as UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise IntakeError(f"cannot read {source.name}: {exc.strerror or exc}") from exc


def _csv_records(handle: IO[str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows keyed by the header (first line), with the physical line each row starts on.

    The ``csv`` module reads the open file (``newline=""``): only ``\\r`` and ``\\n`` end a
    record, so a separator such as U+001C, U+0085 or U+2028 stays inside its cell, where the
    character check refuses it.
    """
    reader = csv.reader(handle)
    start = 1
    try:
        header = next(reader, None)
        if not header:
            raise IntakeError(f"{name} is empty: the first line must name the columns")
        columns = [c.strip() for c in header]
        unknown = [c for c in header if c.strip() not in FIELDS]
        if unknown:
            raise IntakeError(f"{name}: unknown column(s) {', '.join(unknown)}")
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise IntakeError(f"{name}: column(s) named more than once: {', '.join(twice)}")
        width = len(columns)
        start = reader.line_num + 1
        for row in reader:
            if any(row):
                record: dict[str, Any] = dict(zip(columns, row, strict=False))
                if len(row) > width:
                    record["__extra__"] = row[width:]
                yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise IntakeError(f"{name}: not a readable CSV file at line {start}: {exc}") from exc


def _jsonl_records(binary: IO[bytes], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per non-blank line; lines end at ``\\n`` only (a raw U+2028 inside a
    JSON string is text, as JSON says)."""
    number = 0
    while True:
        chunk = binary.readline(MAX_JSONL_LINE + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_JSONL_LINE:
            raise IntakeError(f"{name}: line {number} is longer than {MAX_JSONL_LINE} bytes")
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        line = chunk.decode("utf-8")
        if not line.strip():
            continue
        yield number, _json_record(line)


def _json_record(line: str) -> dict[str, Any]:
    """One line's record, or ``{"__invalid__": why}``."""
    try:
        record = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return {"__invalid__": f"not valid JSON: {exc.msg}"}
    except RecursionError:
        return {"__invalid__": "not valid JSON: nested too deeply"}
    except ValueError as exc:  # a huge integer literal, or a key given twice
        return {"__invalid__": f"not valid JSON: {str(exc)[:120]}"}
    if not isinstance(record, dict):
        return {"__invalid__": "each line must be a JSON object"}
    return record


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (which value would win is not obvious)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key(s) given more than once: {', '.join(twice)}")
    return dict(pairs)


# --- pass 2: write ------------------------------------------------------------------------------


def _write(
    session: Session,
    business_id: uuid.UUID,
    staging: _Staging,
    inserter: _Inserter,
    report: ImportReport,
    used: set[str],
) -> None:
    """Insert the staged rows chunk by chunk, each chunk assessed after it is committed."""
    turns = _Turns(session, report)
    assessing = True
    for staged in staging.chunks():
        # In external-id order: two imports inserting the same ids take their row locks in the
        # same order (PostgreSQL), so neither can deadlock the other.
        rows = sorted(staged, key=operator.itemgetter(_EXTERNAL_ID))
        ids, params = inserter.prepare(rows)  # before the transaction: it stays short
        with turns.write() as connection:
            present = _present(connection, business_id, [r[_EXTERNAL_ID] for r in rows])
            fresh = [n for n, r in enumerate(rows) if r[_EXTERNAL_ID] not in present]
            inserted = inserter.insert(
                connection, [ids[n] for n in fresh], [params[n] for n in fresh]
            )
        report.duplicates.extend(r[_EXTERNAL_ID] for r in rows if r[_EXTERNAL_ID] in present)
        new: list[uuid.UUID] = []
        for n, item_id in zip(fresh, inserted, strict=True):
            if item_id is None:  # another import inserted it meanwhile
                report.duplicates.append(rows[n][_EXTERNAL_ID])
                continue
            new.append(item_id)
            if rows[n][_IMAGE_SHA]:
                used.add(rows[n][_IMAGE_SHA])
        report.imported.extend(new)
        if assessing:
            assessing = _assess_chunks(turns, business_id, new)


class _Turns:
    """The import's write transactions: timed, and on SQLite spaced so other writers get in.

    Another process waiting for SQLite's lock polls for it (every 100 ms once it has waited a
    while), so back-to-back short transactions could still starve it: after every
    ``PAUSE_AFTER`` seconds of holding the lock the import pauses ``PAUSE`` seconds, longer than
    one poll. Writers in this process queue on the writer gate and get in between any two.
    """

    PAUSE_AFTER = 0.5
    PAUSE = 0.11

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.held = 0.0
        self.pacing = is_sqlite(session.get_bind())

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction, committed when the block ends (rolled back on an error)."""
        started = time.perf_counter()
        try:
            yield begin_write(self.session)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        finally:
            took = time.perf_counter() - started
            self.report.longest_write_seconds = max(self.report.longest_write_seconds, took)
            self.held += took
        if self.pacing and self.held >= self.PAUSE_AFTER:
            time.sleep(self.PAUSE)
            self.held = 0.0


def _present(
    connection: sa.Connection, business_id: uuid.UUID, external_ids: list[str]
) -> set[str]:
    """The ``external_ids`` the business already has."""
    table = table_of(Item)
    return set(
        connection.execute(
            sa.select(table.c.external_id).where(
                table.c.business_id == business_id, table.c.external_id.in_(external_ids)
            )
        ).scalars()
    )


# Faster equivalents of SQLAlchemy's bind processors, used only where they give the very same
# values for these samples (SQLite: dates as ISO text, uuids as 32 hex digits, booleans as 0/1).
_FAST_PROCESSORS: dict[type, Callable[[Any], Any]] = {
    dt.date: dt.date.isoformat,
    uuid.UUID: operator.attrgetter("hex"),
    bool: int,
}
_SAMPLES: dict[type, list[Any]] = {
    dt.date: [dt.date(1990, 1, 1), dt.date(2026, 3, 2), dt.date(2100, 12, 31)],
    uuid.UUID: [uuid.UUID(int=0), uuid.UUID("01a23788-6618-70e5-91fa-afc763ae6521"), uuid.uuid4()],
    bool: [True, False],
}


class _Inserter:
    """Inserts staged rows with one ``executemany`` per chunk, straight through the driver.

    ``stage`` turns a row's values into what the driver is given: each column's own SQLAlchemy
    bind processor (so values are stored as an ORM insert stores them), then plain text for the
    few values a SQLite staging file cannot hold as they are (dates, decimals and uuids on
    PostgreSQL, which casts the text back). The per-row work of the ORM is skipped. A row whose
    ``(business_id, external_id)`` exists by the time it is inserted is skipped
    (``ON CONFLICT DO NOTHING``, SQLite and PostgreSQL alike).
    """

    _CONSTANT = (
        "business_id",
        "status",
        "review_reasons",
        "contact_confirmed",
        "resolved_sources",
        "publish_generation",
        "image_published",
        "payment_recorded",
        "created_at",
        "updated_at",
    )

    def __init__(self, dialect: Dialect, business_id: uuid.UUID) -> None:
        self.table = table_of(Item)
        self.dialect = dialect
        self.business_id = business_id
        names = ("id", *_ROW_COLUMNS, *self._CONSTANT)
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.sql = (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
            f"VALUES ({', '.join(mark for _ in names)}) "
            "ON CONFLICT (business_id, external_id) DO NOTHING"
        )
        self._id = self._processor("id")
        self._row = [
            (i, p) for i, p in ((i, self._processor(c)) for i, c in enumerate(_ROW_COLUMNS)) if p
        ]
        self._texts = dialect.name != "sqlite"

    def _processor(self, column: str) -> Callable[[Any], Any] | None:
        """The column's bind processor, or a faster function that gives the same values."""
        type_ = self.table.c[column].type
        processor = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
        if processor is None:
            return None
        python_type = type_.python_type
        fast = _FAST_PROCESSORS.get(python_type)
        if fast is not None and all(
            type(fast(v)) is type(processor(v)) and fast(v) == processor(v)
            for v in _SAMPLES[python_type]
        ):
            return fast
        return processor

    def _wire(self, column: str, value: Any) -> Any:
        processor = self._processor(column)
        return processor(value) if processor is not None else value

    def stage(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The row (in ``_ROW_COLUMNS`` order) as the driver will be given it."""
        values = list(row)
        for index, processor in self._row:
            if values[index] is not None:
                values[index] = processor(values[index])
        if self._texts:
            for index, value in enumerate(values):
                if isinstance(value, bool):
                    values[index] = "true" if value else "false"
                elif isinstance(value, (Decimal, dt.date, uuid.UUID)):
                    values[index] = str(value)
        return tuple(values)

    def _constants(self) -> tuple[Any, ...]:
        now = utcnow()
        values = {
            "business_id": self.business_id,
            "status": ItemStatus.REVIEW.value,
            "review_reasons": [NOT_ASSESSED],
            "contact_confirmed": False,
            "resolved_sources": {},
            "publish_generation": 1,
            "image_published": False,
            "payment_recorded": False,
            "created_at": now,
            "updated_at": now,
        }
        return tuple(self._wire(name, values[name]) for name in self._CONSTANT)

    def prepare(
        self, rows: Sequence[tuple[Any, ...]]
    ) -> tuple[list[uuid.UUID], list[tuple[Any, ...]]]:
        """New item ids for staged ``rows`` and the parameters to insert them with."""
        constants = self._constants()
        ids = ordered_ids(len(rows))
        wire = self._id
        params = [
            (wire(i) if wire else i, *row, *constants) for i, row in zip(ids, rows, strict=True)
        ]
        return ids, params

    def insert(
        self, connection: sa.Connection, ids: list[uuid.UUID], params: list[tuple[Any, ...]]
    ) -> list[uuid.UUID | None]:
        """Insert prepared rows; the id of each, or None where it was skipped (present)."""
        if not params:
            return []
        inserted = connection.exec_driver_sql(self.sql, params).rowcount
        if inserted == len(params):
            return list(ids)
        table = self.table
        found = set(connection.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars())
        return [i if i in found else None for i in ids]


def ordered_ids(count: int) -> list[uuid.UUID]:
    """``count`` new ids, each larger than any made before in this process (UUID version 7: the
    milliseconds, then a sequence that starts at random bits), so a chunk's rows land at the end
    of the primary-key index instead of all over it: far fewer pages written per transaction."""
    global _last_id
    with _ids_lock:
        start = (time.time_ns() // 1_000_000) << 74 | int.from_bytes(os.urandom(9), "big") >> 1
        start = max(start, _last_id + 1)
        _last_id = start + count - 1
    found = []
    for raw in range(start, start + count):
        millis, sequence = raw >> 74, raw & _SEQUENCE
        value = (millis << 80) | (0x7 << 76) | ((sequence >> 62) << 64) | (0b10 << 62)
        found.append(uuid.UUID(int=value | (sequence & _LOW_62)))
    return found


_SEQUENCE, _LOW_62 = (1 << 74) - 1, (1 << 62) - 1
_last_id = 0
_ids_lock = threading.Lock()


def _assess_chunks(turns: _Turns, business_id: uuid.UUID, item_ids: list[uuid.UUID]) -> bool:
    """Assess ``item_ids`` ``ASSESS_ROWS`` at a time; False when the business has no connection."""
    try:
        for start in range(0, len(item_ids), ASSESS_ROWS):
            with turns.write():
                chunk = item_ids[start : start + ASSESS_ROWS]
                reassess(turns.session, business_id=business_id, item_ids=chunk)
    except NoConnectionError:
        return False
    return True


def assess(session: Session, business_id: uuid.UUID, item_ids: list[uuid.UUID] | None) -> None:
    """Run ``connector.items.context.reassess`` and commit, when the business has a connection.

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


# --- after -------------------------------------------------------------------------------------


def _remove_unused_images(session: Session, images: ImageStore, used: set[str]) -> None:
    """Remove the images this import stored that no item uses (rows already present, a file
    refused as a whole); an item of another import naming the same image keeps it."""
    unused = [sha for sha in images.created if sha not in used]
    if not unused:
        return
    table = table_of(Item)
    referenced = set(
        session.connection()
        .execute(sa.select(table.c.image_sha256).where(table.c.image_sha256.in_(unused)))
        .scalars()
    )
    session.rollback()
    images.remove_unused(used, {str(s) for s in referenced})


def _audit(
    session: Session,
    business_id: uuid.UUID,
    user_id: uuid.UUID,
    source: Path,
    report: ImportReport,
    *,
    interrupted: bool,
) -> None:
    """Record the import (``items.import``) with its counts, in a short transaction."""
    begin_write(session)
    detail: dict[str, Any] = {
        "file": source.name,
        "rows": report.rows,
        "imported": len(report.imported),
        "already_present": len(report.duplicates),
        "refused": report.refused,
    }
    if interrupted:
        detail["interrupted"] = True
    record_audit(
        session,
        action=ACTION,
        allowed=True,
        business_id=business_id,
        user_id=user_id,
        detail=detail,
    )
    session.commit()
