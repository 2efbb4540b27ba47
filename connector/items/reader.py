"""Reading an intake file: CSV or JSON Lines records, streamed, each with the line it starts on.

A whole-file problem (missing, unknown format, bad header, not UTF-8) raises ``IntakeError``; a
bad record is handed on as ``{"__invalid__": why}`` for the row check to refuse by line.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from connector.items.import_report import IntakeError
from connector.items.rows.fields import FIELDS
from connector.items.rows.lines import LINE_COLUMNS, MAX_LINES

#: Longest JSON Lines line accepted (a longer one refuses the file, as a CSV cell over 128 KB).
MAX_JSONL_LINE = 1024 * 1024


def records(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, raw record) from a CSV or JSON Lines file, streaming."""
    if not source.is_file():
        raise IntakeError(f"file not found: {source}")
    suffix = source.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        raise IntakeError(f"unknown file type {suffix or '(none)'}: use .csv or .jsonl")
    try:
        if suffix == ".csv":
            with source.open(newline="", encoding="utf-8-sig") as handle:
                yield from _csv_items(_csv_records(handle, source.name))
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
        unknown = [c for c in header if c.strip() not in _CSV_COLUMNS]
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


_CSV_COLUMNS = frozenset(FIELDS) | frozenset(LINE_COLUMNS)


class _Group:
    """The consecutive CSV rows of one item: its merged item cells and its line rows."""

    def __init__(self, line: int, record: dict[str, Any], cells: dict[str, str] | None) -> None:
        self.line = line
        self.record = record
        self.origin = {k: line for k, v in record.items() if _filled(v)}
        self.lines: list[tuple[int, dict[str, str]]] = [] if cells is None else [(line, cells)]
        self.extra_lines = 0
        self.conflicts: list[tuple[int, str, str]] = []
        self.external_id = _cell(record.get("external_id"))

    def add(self, line: int, record: dict[str, Any], cells: dict[str, str]) -> None:
        """Another line row of this item: its item cells must be blank or the same."""
        if len(self.lines) < MAX_LINES:
            self.lines.append((line, cells))
        else:  # memory stays bounded: the item is refused, its extra rows only counted
            self.extra_lines += 1
        if "__extra__" in record:
            self.conflicts.append((line, "(record)", "more cells than the header has columns"))
        for column, value in record.items():
            if column.startswith("__") or not _filled(value):
                continue
            if column not in self.origin:
                self.record[column] = value
                self.origin[column] = line
            elif _cell(value) != _cell(self.record[column]):
                self.conflicts.append(
                    (
                        line,
                        column,
                        f"{_cell(value)!r} differs from {_cell(self.record[column])!r} on line "
                        f"{self.origin[column]} of item {self.external_id}: leave it blank on "
                        "the item's other rows or repeat it exactly",
                    )
                )

    def item(self) -> dict[str, Any]:
        """The item's record: its cells, its lines (each with its file line) and conflicts."""
        record = self.record
        if self.extra_lines:
            count = len(self.lines) + self.extra_lines
            self.conflicts.append(
                (self.line, "lines", f"{count} lines: at most {MAX_LINES} per item")
            )
        elif self.lines:
            record["lines"] = self.lines
        if self.conflicts:
            record["__conflicts__"] = self.conflicts
        return record


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _cell(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _csv_items(rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows grouped into items: consecutive rows with the same ``external_id`` are one
    item's lines when each after the first has a ``line_*`` cell (the first may carry only the
    item's cells). A row with no ``line_*`` cell is an item of its own, as before lines."""
    first = next(rows, None)
    if first is None:
        return
    present = [c for c in first[1] if c in LINE_COLUMNS]
    if not present:  # no line columns: every row is an item, as before lines
        yield first
        yield from rows
        return
    group: _Group | None = None
    for line, record in itertools.chain((first,), rows):
        cells = {LINE_COLUMNS[c]: record.pop(c) for c in present if c in record}
        has_line = any(_filled(v) for v in cells.values())
        external_id = _cell(record.get("external_id"))
        if group is not None and has_line and external_id and external_id == group.external_id:
            group.add(line, record, cells)
            continue
        if group is not None:
            yield group.line, group.item()
        group = _Group(line, record, cells if has_line else None)
    if group is not None:
        yield group.line, group.item()


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
