"""Checking one intake row: each field parsed, impossible values refused with line and field.

The values are checked by `connector.items.rows.values`, an item's lines by
`connector.items.rows.lines`; this module walks a row's columns and checks what needs more than
one field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from connector.items.rows.lines import LINES, check_line_sums, parse_lines
from connector.items.rows.values import (
    PARSERS,
    REFUSED,
    FieldError,
    RowError,
    as_text,
    check_text,
    checked,
    payment_method,
)
from connector.rules.vocabulary import CREDITABLE_KINDS, DocumentType, ItemKind
from connector.text_guard import FORMULA_PREFIXES, strip_spaces

# Column -> Item attribute (``image`` is handled by intake; the rest map one to one).
FIELDS: dict[str, str] = {
    "external_id": "external_id",
    "kind": "kind",
    "contact_name": "contact_name",
    "reference": "reference",
    "date": "date",
    "due_date": "due_date",
    "currency": "currency",
    "total": "total",
    "tax_amount": "tax_amount",
    "description": "description",
    "category": "category_edit",
    "tax_rate": "tax_rate_edit",
    "paid": "paid",
    "payment_method": "payment_method_id",
    "claimant_email": "claimant_email",
    "claimant_nomi_user_id": "claimant_nomi_user_id",
    "image": "image",
    "document_type": "document_type",
    "credits_external_id": "credits_external_id",
    "exchange_rate": "exchange_rate",
}
TEXT_LIMITS = {
    "external_id": 255,
    "contact_name": 255,
    "reference": 255,
    "description": 2000,
    "category": 64,
    "tax_rate": 64,
    "claimant_email": 320,
    "claimant_nomi_user_id": 64,
    "image": 1000,
    "payment_method": 255,
    "credits_external_id": 255,
}
# Line breaks and tabs are allowed inside free text only.
_FREE_TEXT = frozenset({"description"})


def parse_row(
    raw: Mapping[str, Any], *, line: int, payment_methods: Mapping[str, uuid.UUID]
) -> tuple[dict[str, Any], list[RowError]]:
    """Check one raw record and turn it into Item attributes.

    Args:
        raw: Column -> value (strings from CSV; strings, numbers, booleans or null from JSON).
        line: The line the record starts on (for messages).
        payment_methods: The business's payment methods, ``method_key(name)`` -> id.

    Returns:
        The Item attributes (plus ``image``, the relative path) and the problems found; the
        attributes are only meaningful when there are no problems. Text values are NFC-normalised.
    """
    if "__invalid__" in raw:
        return {}, [RowError(line, "(record)", str(raw["__invalid__"]))]
    errors: list[RowError] = []
    if "__extra__" in raw:
        errors.append(RowError(line, "(record)", "more cells than the header has columns"))
    conflicts = raw.get("__conflicts__")  # the CSV reader's tuples (JSON never makes one)
    if isinstance(conflicts, list):
        errors.extend(RowError(*c) for c in conflicts if isinstance(c, tuple) and len(c) == 3)
    if not _KNOWN_KEYS.issuperset(raw):
        for name in raw:
            if name not in _KNOWN_KEYS and not name.startswith("__"):
                errors.append(RowError(line, name, "unknown field"))
    texts: dict[str, str] = {}
    get = raw.get
    for name in FIELDS:
        value = get(name)
        if value is None or value == "":
            continue
        if value.__class__ is not str:
            text = as_text(value)
        elif value.isascii():
            text = value.strip(" \t\n\r")  # strip_spaces, inlined for ASCII (the hot path)
        else:
            text = strip_spaces(value)
        if text:
            texts[name] = text
    # Most rows are plain ASCII with nothing to refuse: one check for all their cells at once
    # (a space joins them, which no check refuses); any other row is checked cell by cell.
    joined = " ".join(texts.values())
    plain = joined.isascii() and REFUSED.search(joined) is None
    values: dict[str, Any] = {}
    for name, attribute, parser, limit, multiline in _PLAN:
        text = texts.get(name)
        try:
            if text is not None:
                if not plain:
                    text = checked(text, limit, multiline=multiline)
                elif limit is not None and (text[0] in FORMULA_PREFIXES or len(text) > limit):
                    check_text(text, limit)
            if parser is None:
                values[attribute] = text
            elif parser is payment_method:
                values[attribute] = payment_method(text, payment_methods)
            else:
                values[attribute] = parser(text)
        except FieldError as exc:
            errors.append(RowError(line, name, str(exc)))
    raw_lines = get(LINES)
    if raw_lines is not None and raw_lines != "" and raw_lines != []:
        external_id = str(values.get("external_id") or "")
        found = parse_lines(raw_lines, line, external_id, errors)
        if found is not None:
            values["lines"] = found
            check_line_sums(values, found, line, errors)
    failed = {e.field for e in errors}
    errors.extend(e for e in _cross_checks(values, line) if e.field not in failed)
    if values.get("currency") is None:
        values.pop("currency", None)
    if values.get("document_type") is None:
        values.pop("document_type", None)
    return values, errors


def _cross_checks(values: Mapping[str, Any], line: int) -> list[RowError]:
    """Checks that need more than one field."""
    errors: list[RowError] = []
    kind = values.get("kind")
    if not values.get("external_id"):
        errors.append(RowError(line, "external_id", "required (it makes re-import safe)"))
    if kind and not values.get("contact_name"):
        who = "customer" if kind == ItemKind.SALES else "supplier"
        errors.append(RowError(line, "contact_name", f"the {who} name is required"))
    total, tax = values.get("total"), values.get("tax_amount")
    if total is not None and tax is not None and tax > total:
        errors.append(RowError(line, "tax_amount", f"tax {tax} is more than the total {total}"))
    date, due = values.get("date"), values.get("due_date")
    if date is not None and due is not None and due < date:
        errors.append(RowError(line, "due_date", f"due date {due} is before the date {date}"))
    if kind == ItemKind.EXPENSE_CLAIM and not (
        values.get("claimant_email") or values.get("claimant_nomi_user_id")
    ):
        errors.append(RowError(line, "claimant_email", "an expense claim needs its claimant"))
    credit = values.get("document_type") == DocumentType.CREDIT_NOTE
    if credit and kind and kind not in CREDITABLE_KINDS:
        errors.append(
            RowError(
                line,
                "document_type",
                "an expense claim cannot be a credit note: import "
                "the credit as a cost item with document_type credit_note",
            )
        )
    credits = values.get("credits_external_id")
    if credits and not credit:
        errors.append(
            RowError(
                line,
                "credits_external_id",
                "only a credit note credits another item (set document_type to credit_note)",
            )
        )
    elif credits and credits == values.get("external_id"):
        errors.append(RowError(line, "credits_external_id", "a credit note cannot credit itself"))
    return errors


# (column, Item attribute, parser, text limit, free text) for each column, in column order.
_PLAN: tuple[tuple[str, str, Callable[..., Any] | None, int | None, bool], ...] = tuple(
    (name, attribute, PARSERS.get(name), TEXT_LIMITS.get(name), name in _FREE_TEXT)
    for name, attribute in FIELDS.items()
)
_KNOWN_KEYS = frozenset(FIELDS) | {LINES, "__extra__", "__invalid__", "__conflicts__"}
