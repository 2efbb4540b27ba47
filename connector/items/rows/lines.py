"""The lines of one intake item: each line's cells checked, and the lines adding up to the total."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connector.items.rows.values import (
    MAX_TOTAL,
    FieldError,
    RowError,
    as_text,
    checked,
    money,
    tax_amount,
)

#: The JSON Lines key holding an item's lines (a list of objects with ``LINE_KEYS``).
LINES = "lines"
#: Key of a line object (JSON Lines) -> key of the stored line (``Item.lines``).
LINE_KEYS: dict[str, str] = {
    "description": "description",
    "net": "net",
    "tax": "tax",
    "category": "category_edit",
    "tax_rate": "tax_rate_edit",
}
#: CSV column of a line row -> key of a line object (rows sharing an ``external_id``).
LINE_COLUMNS: dict[str, str] = {f"line_{key}": key for key in LINE_KEYS}
#: Lines one item may have.
MAX_LINES = 500
_LINE_LIMITS = {"description": 2000, "category": 64, "tax_rate": 64}


def parse_lines(
    raw: Any, line: int, external_id: str, errors: list[RowError]
) -> list[dict[str, Any]] | None:
    """The item's lines as ``Item.lines`` stores them (money as decimal strings), or None when
    any is refused (each problem names the item, the line's number and its field).

    ``raw`` is a JSON list of objects, or from a CSV the ``(file line, cells)`` of each line row.
    """
    if not isinstance(raw, list):
        errors.append(
            RowError(
                line,
                LINES,
                "must be a list of line objects (description, net, tax, category, tax_rate)",
            )
        )
        return None
    if len(raw) > MAX_LINES:
        errors.append(RowError(line, LINES, f"{len(raw)} lines: at most {MAX_LINES} per item"))
        return None
    before = len(errors)
    stored: list[dict[str, Any]] = []
    for number, entry in enumerate(raw, start=1):
        at, cells, csv_row = (*entry, True) if isinstance(entry, tuple) else (line, entry, False)
        where = f"{external_id} line {number}" if external_id else f"line {number}"

        def name(key: str, number: int = number, csv_row: bool = csv_row) -> str:
            return f"line_{key}" if csv_row else f"{LINES}[{number}].{key}"

        if not isinstance(cells, dict):
            errors.append(
                RowError(
                    at,
                    f"{LINES}[{number}]",
                    f"{where}: must be an object with net, tax, description, category and tax_rate",
                )
            )
            continue
        for key in cells:
            if key not in LINE_KEYS:
                errors.append(RowError(at, name(key), f"{where}: unknown field"))
        kept: dict[str, Any] = {}
        for key, target in LINE_KEYS.items():
            try:
                kept[target] = _line_value(key, cells.get(key))
            except FieldError as exc:
                errors.append(RowError(at, name(key), f"{where}: {exc}"))
        net, tax = kept.get("net"), kept.get("tax")
        if net is not None and net + (tax or 0) == 0:
            errors.append(RowError(at, name("net"), f"{where}: a line of 0.00: leave it out"))
        stored.append(kept)
    if len(errors) > before:
        return None
    return [
        kept | {"net": str(kept["net"]), "tax": None if kept["tax"] is None else str(kept["tax"])}
        for kept in stored
    ]


def _line_value(key: str, value: Any) -> Any:
    """One cell of a line, checked as the item's own cells are (text, amounts)."""
    text = as_text(value)
    if text is not None:
        text = checked(text, _LINE_LIMITS.get(key), multiline=key == "description")
    if key == "net":
        amount = money(text)
        if amount is None:
            raise FieldError("required: the line's amount before tax")
        if amount < 0:
            raise FieldError(f"cannot be negative (got {amount})")
        return amount
    if key == "tax":
        return tax_amount(text)
    return text


def check_line_sums(
    values: dict[str, Any], lines: list[dict[str, Any]], line: int, errors: list[RowError]
) -> None:
    """The lines must add up to the total (and their tax to the tax) to the penny; a total or
    tax left out is the lines' sum."""
    gross = sum((Decimal(x["net"]) + Decimal(x["tax"] or 0) for x in lines), Decimal("0.00"))
    taxes = [Decimal(x["tax"]) for x in lines if x["tax"] is not None]
    failed = {e.field for e in errors}
    total = values.get("total")
    if "total" in failed:
        pass
    elif total is None:
        if gross > MAX_TOTAL:
            errors.append(
                RowError(
                    line,
                    "total",
                    f"the lines add up to {gross}, implausibly large (limit {MAX_TOTAL})",
                )
            )
        else:
            values["total"] = gross
    elif total != gross:
        errors.append(
            RowError(line, "total", f"the lines add up to {gross}, not the total {total}")
        )
    tax = values.get("tax_amount")
    if "tax_amount" in failed:
        return
    if tax is None:
        if taxes:
            values["tax_amount"] = sum(taxes, Decimal("0.00"))
    elif tax != sum(taxes, Decimal("0.00")):
        errors.append(
            RowError(
                line,
                "tax_amount",
                f"the lines' tax adds up to {sum(taxes, Decimal('0.00'))}, not the tax {tax}",
            )
        )
