"""Checking one intake row: each field parsed, impossible values refused with line and field.

Text is NFC-normalised first (a name typed as "café" with a combining accent is the same name as
the precomposed one), then checked for control, line-break and bidirectional characters, formula
prefixes and the column's length. Amounts must be storable exactly on every supported database,
dates must be ``YYYY-MM-DD``. The checks run once per row of a file that may hold hundreds of
thousands, so they are regular expressions and table look-ups rather than per-character loops.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.rules.vocabulary import CREDITABLE_KINDS, DocumentType, ItemKind
from connector.text_guard import (
    BIDI_CONTROLS,
    FORMULA_PREFIXES,
    LINE_SEPARATORS,
    character_refusal,
    formula_refusal,
    strip_spaces,
)

MAX_TOTAL = Decimal("10000000.00")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# An amount: ASCII digits, optional thousands commas, optional decimals (no exponent, no "_").
_AMOUNT = re.compile(r"^[+-]?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)?(?:\.[0-9]+)?$")
_NOT_FINITE = {"nan", "snan", "inf", "infinity"}
# Digits before the point an amount may have. The amount columns are NUMERIC(18, 2), but SQLite
# stores NUMERIC as a double, which holds 15 significant digits exactly: 13 before the point and
# the 2 decimals. A longer amount would be stored rounded there, so it is refused on every database.
MAX_AMOUNT_DIGITS = 13
# What ``connector.text_guard`` refuses, as one pattern (control characters, unpaired surrogates,
# bidirectional controls, and line separators outside free text), so that a plain row is checked
# in one search; a match is then explained by the guard itself, character by character.
_CONTROLS = "\x00-\x1f\x7f-\x9f"
_BIDI = "".join(sorted(BIDI_CONTROLS))
_REFUSED = re.compile(f"[{_CONTROLS}\ud800-\udfff{_BIDI}{''.join(sorted(LINE_SEPARATORS))}]")
_REFUSED_IN_FREE_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_SEPARATORS_TO_NEWLINE = {ord(sep): "\n" for sep in LINE_SEPARATORS}
_KINDS = frozenset(k.value for k in ItemKind)
_DOCUMENT_TYPES = frozenset(d.value for d in DocumentType)
_CENT = Decimal("0.01")
_RATE_STEP = Decimal("0.000001")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Line breaks and tabs are allowed inside free text only.
_FREE_TEXT = frozenset({"description"})

# Active ISO 4217 currency codes.
_ISO_4217_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES
VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())

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
#: Exchange rates: digits before the point (an exact double on SQLite, as for amounts) and after.
MAX_RATE_DIGITS = 9
RATE_DECIMALS = 6
_LINE_LIMITS = {"description": 2000, "category": 64, "tax_rate": 64}
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
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}
_STRUCTURED = "\x00structured"  # a JSON object or list where a plain value belongs


@dataclass(frozen=True)
class RowError:
    """One problem in one row: where it is and what is wrong."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


class _FieldError(ValueError):
    """A value that cannot be accepted (the message names why)."""


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
            text = _text(value)
        elif value.isascii():
            text = value.strip(" \t\n\r")  # strip_spaces, inlined for ASCII (the hot path)
        else:
            text = strip_spaces(value)
        if text:
            texts[name] = text
    # Most rows are plain ASCII with nothing to refuse: one check for all their cells at once
    # (a space joins them, which no check refuses); any other row is checked cell by cell.
    joined = " ".join(texts.values())
    plain = joined.isascii() and _REFUSED.search(joined) is None
    values: dict[str, Any] = {}
    for name, attribute, parser, limit, multiline in _PLAN:
        text = texts.get(name)
        try:
            if text is not None:
                if not plain:
                    text = _checked(text, limit, multiline=multiline)
                elif limit is not None and (text[0] in FORMULA_PREFIXES or len(text) > limit):
                    _check_text(text, limit)
            if parser is None:
                values[attribute] = text
            elif parser is _payment_method:
                values[attribute] = _payment_method(text, payment_methods)
            else:
                values[attribute] = parser(text)
        except _FieldError as exc:
            errors.append(RowError(line, name, str(exc)))
    raw_lines = get(LINES)
    if raw_lines is not None and raw_lines != "" and raw_lines != []:
        external_id = str(values.get("external_id") or "")
        found = _lines(raw_lines, line, external_id, errors)
        if found is not None:
            values["lines"] = found
            _line_sums(values, found, line, errors)
    failed = {e.field for e in errors}
    errors.extend(e for e in _cross_checks(values, line) if e.field not in failed)
    if values.get("currency") is None:
        values.pop("currency", None)
    if values.get("document_type") is None:
        values.pop("document_type", None)
    return values, errors


def _lines(
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
            except _FieldError as exc:
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
    text = _text(value)
    if text is not None:
        text = _checked(text, _LINE_LIMITS.get(key), multiline=key == "description")
    if key == "net":
        amount = _money(text)
        if amount is None:
            raise _FieldError("required: the line's amount before tax")
        if amount < 0:
            raise _FieldError(f"cannot be negative (got {amount})")
        return amount
    if key == "tax":
        return _tax(text)
    return text


def _line_sums(
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


def method_key(name: str) -> str:
    """How a payment method's name is looked up: NFC-normalised and casefolded."""
    return unicodedata.normalize("NFC", name).casefold()


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


def _text(value: Any) -> str | None:
    """A raw value as stripped text; empty means absent."""
    if value is None:
        return None
    if type(value) is str:
        return strip_spaces(value) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, (dict, list)):
        return _STRUCTURED
    stripped = strip_spaces(str(value))
    return stripped or None


def _checked(value: str, limit: int | None, *, multiline: bool) -> str:
    """The value as ``connector.text_guard.guard_text`` stores it (NFC; line separators as
    ``\\n`` in free text), once it holds no refused character and, for a text column of ``limit``
    characters, no formula prefix and no more than ``limit`` characters."""
    if value == _STRUCTURED:
        raise _FieldError("must be a plain value, not a JSON object or list")
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
        if multiline:
            value = value.translate(_SEPARATORS_TO_NEWLINE)
    if (_REFUSED_IN_FREE_TEXT if multiline else _REFUSED).search(value) is not None:
        raise _FieldError(character_refusal(value, multiline=multiline) or "refused")
    if limit is not None:
        _check_text(value, limit)
    return value


def _check_text(value: str, limit: int) -> None:
    """Refuse a spreadsheet formula (``connector.text_guard``) and text over ``limit``."""
    reason = formula_refusal(value)
    if reason is not None:
        raise _FieldError(reason)
    if len(value) > limit:
        raise _FieldError(f"longer than {limit} characters")


def _kind(value: str | None) -> str:
    if value is None:
        raise _FieldError("required: cost, sales or expense_claim")
    lowered = value.lower()
    if lowered not in _KINDS:
        raise _FieldError(f"unknown kind {value!r}: use cost, sales or expense_claim")
    return lowered


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    if not _DATE.match(value):  # fromisoformat also takes 20260302 and week dates (2026-W09-1)
        raise _FieldError(f"{value!r} is not a date in YYYY-MM-DD form")
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"{value!r} is not a date in YYYY-MM-DD form") from None
    if not 1990 <= parsed.year <= 2100:
        raise _FieldError(f"{value!r} is not a plausible YYYY-MM-DD date")
    return parsed


def _money(value: str | None) -> Decimal | None:
    if value is None:
        return None
    if not _AMOUNT.match(value) or value in ("+", "-"):  # the only matches without a digit
        if value.lower().lstrip("+-") in _NOT_FINITE:
            raise _FieldError(f"{value!r} is not a finite amount")
        raise _FieldError(f"{_clip(value)!r} is not a number (digits and one '.' only)")
    try:
        amount = Decimal(value.replace(",", "") if "," in value else value)
    except InvalidOperation:
        raise _FieldError(f"{_clip(value)!r} is not a number") from None
    if amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise _FieldError(
            f"{_clip(value)} is too large to be stored exactly: at most {MAX_AMOUNT_DIGITS} "
            "digits before the point"
        )
    cents = amount.quantize(_CENT)
    if amount != cents:
        raise _FieldError(f"{value} has more than two decimal places")
    return cents


def _clip(value: str, limit: int = 40) -> str:
    """A value shortened for a message."""
    return value if len(value) <= limit else value[:limit] + "..."


def _total(value: str | None) -> Decimal | None:
    amount = _money(value)
    if amount is not None and amount <= 0:
        raise _FieldError(
            f"total must be more than 0 (got {amount}): a credit is imported as a credit note "
            "(document_type credit_note) with a positive total"
        )
    if amount is not None and amount > MAX_TOTAL:
        raise _FieldError(f"total {amount} is implausibly large (limit {MAX_TOTAL})")
    return amount


def _tax(value: str | None) -> Decimal | None:
    amount = _money(value)
    if amount is not None and amount < 0:
        raise _FieldError(f"tax cannot be negative (got {amount})")
    return amount


def _document_type(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in _DOCUMENT_TYPES:
        raise _FieldError(f"unknown document type {value!r}: use invoice, receipt or credit_note")
    return lowered


def _exchange_rate(value: str | None) -> Decimal | None:
    """Base-currency units per one unit of the item's currency: > 0, at most 6 decimals."""
    if value is None:
        return None
    if "," in value or not _AMOUNT.match(value) or value in ("+", "-"):
        if value.lower().lstrip("+-") in _NOT_FINITE:
            raise _FieldError(f"{value!r} is not a finite rate")
        raise _FieldError(f"{_clip(value)!r} is not a number (digits and one '.' only)")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise _FieldError(f"{_clip(value)!r} is not a number") from None
    if rate <= 0:
        raise _FieldError(f"an exchange rate must be more than 0 (got {_clip(value)})")
    if rate.adjusted() >= MAX_RATE_DIGITS:
        raise _FieldError(
            f"{_clip(value)} is implausibly large: at most {MAX_RATE_DIGITS} digits before the "
            "point"
        )
    if rate != rate.quantize(_RATE_STEP):
        raise _FieldError(f"{_clip(value)} has more than {RATE_DECIMALS} decimal places")
    return rate.quantize(_RATE_STEP)


def _bool(value: str | None) -> bool:
    lowered = (value or "").lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _FieldError(f"{value!r} is not true/false")


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if code not in ISO_4217:
        raise _FieldError(f"{value!r} is not an ISO 4217 currency code")
    return code


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise _FieldError(f"{value!r} is not an email address")
    return value.lower() if value else None


def _payment_method(value: str | None, methods: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    if value is None:
        return None
    found = methods.get(method_key(value))
    if found is None:
        raise _FieldError(f"no payment method named {value!r} in this business")
    return found


_PARSERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "due_date": _date,
    "total": _total,
    "tax_amount": _tax,
    "paid": _bool,
    "currency": _currency,
    "kind": _kind,
    "claimant_email": _email,
    "payment_method": _payment_method,
    "document_type": _document_type,
    "exchange_rate": _exchange_rate,
}
# (column, Item attribute, parser, text limit, free text) for each column, in column order.
_PLAN: tuple[tuple[str, str, Callable[..., Any] | None, int | None, bool], ...] = tuple(
    (name, attribute, _PARSERS.get(name), TEXT_LIMITS.get(name), name in _FREE_TEXT)
    for name, attribute in FIELDS.items()
)
_KNOWN_KEYS = frozenset(FIELDS) | {LINES, "__extra__", "__invalid__", "__conflicts__"}
