"""Checking one intake row: each field parsed, impossible values refused with line and field."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.models import ItemKind
from connector.text_guard import character_refusal, formula_refusal

MAX_TOTAL = Decimal("10000000.00")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# An amount: ASCII digits, optional thousands commas, optional decimals (no exponent, no "_").
_AMOUNT = re.compile(r"^[+-]?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)?(?:\.[0-9]+)?$")
_NOT_FINITE = {"nan", "snan", "inf", "infinity"}
MAX_AMOUNT_DIGITS = 15
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
        payment_methods: The business's payment methods, casefolded name -> id.

    Returns:
        The Item attributes (plus ``image``, the relative path) and the problems found; the
        attributes are only meaningful when there are no problems.
    """
    errors: list[RowError] = []
    if "__invalid__" in raw:
        return {}, [RowError(line, "(record)", str(raw["__invalid__"]))]
    if "__extra__" in raw:
        errors.append(RowError(line, "(record)", "more cells than the header has columns"))
    for name in raw:
        if name not in FIELDS and not name.startswith("__"):
            errors.append(RowError(line, name, "unknown field"))
    values: dict[str, Any] = {}
    text = {name: _text(raw.get(name)) for name in FIELDS}
    parsers: dict[str, Callable[[str | None], Any]] = {
        "date": _date,
        "due_date": _date,
        "total": _total,
        "tax_amount": _tax,
        "paid": _bool,
        "currency": _currency,
        "kind": _kind,
        "claimant_email": _email,
        "payment_method": lambda v: _payment_method(v, payment_methods),
    }
    for name, attribute in FIELDS.items():
        value = text[name]
        try:
            if value == _STRUCTURED:
                raise _FieldError("must be a plain value, not a JSON object or list")
            _check_characters(value, multiline=name in _FREE_TEXT)
            if name in TEXT_LIMITS:
                _check_text(value, TEXT_LIMITS[name])
            values[attribute] = parsers[name](value) if name in parsers else value
        except _FieldError as exc:
            errors.append(RowError(line, name, str(exc)))
    failed = {e.field for e in errors}
    errors.extend(e for e in _cross_checks(values, line) if e.field not in failed)
    if values.get("currency") is None:
        values.pop("currency", None)
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
    return errors


def _text(value: Any) -> str | None:
    """A raw value as stripped text; empty means absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, (dict, list)):
        return _STRUCTURED
    stripped = str(value).strip()
    return stripped or None


def _check_characters(value: str | None, *, multiline: bool) -> None:
    """Refuse control characters, unpaired surrogates and bidirectional controls
    (``connector.text_guard``, the one definition for every text we store)."""
    reason = character_refusal(value, multiline=multiline) if value is not None else None
    if reason is not None:
        raise _FieldError(reason)


def _check_text(value: str | None, limit: int) -> None:
    """Refuse a spreadsheet formula and text longer than ``limit`` (``connector.text_guard``)."""
    if value is None:
        return
    reason = formula_refusal(value)
    if reason is not None:
        raise _FieldError(reason)
    if len(value) > limit:
        raise _FieldError(f"longer than {limit} characters")


def _kind(value: str | None) -> str:
    if value is None:
        raise _FieldError("required: cost, sales or expense_claim")
    kinds = {k.value for k in ItemKind}
    if value.lower() not in kinds:
        raise _FieldError(f"unknown kind {value!r}: use cost, sales or expense_claim")
    return value.lower()


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"{value!r} is not a date in YYYY-MM-DD form") from None
    if not 1990 <= parsed.year <= 2100 or len(value) != 10:
        raise _FieldError(f"{value!r} is not a plausible YYYY-MM-DD date")
    return parsed


def _money(value: str | None) -> Decimal | None:
    if value is None:
        return None
    if value.lower().lstrip("+-") in _NOT_FINITE:
        raise _FieldError(f"{value!r} is not a finite amount")
    if not _AMOUNT.match(value) or not any(c.isdigit() for c in value):
        raise _FieldError(f"{_clip(value)!r} is not a number (digits and one '.' only)")
    try:
        amount = Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise _FieldError(f"{_clip(value)!r} is not a number") from None
    if amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise _FieldError(f"{_clip(value)} is implausibly large (more than 15 digits)")
    if amount != amount.quantize(Decimal("0.01")):
        raise _FieldError(f"{value} has more than two decimal places")
    return amount.quantize(Decimal("0.01"))


def _clip(value: str, limit: int = 40) -> str:
    """A value shortened for a message."""
    return value if len(value) <= limit else value[:limit] + "..."


def _total(value: str | None) -> Decimal | None:
    amount = _money(value)
    if amount is not None and amount <= 0:
        raise _FieldError(f"total must be more than 0 (got {amount})")
    if amount is not None and amount > MAX_TOTAL:
        raise _FieldError(f"total {amount} is implausibly large (limit {MAX_TOTAL})")
    return amount


def _tax(value: str | None) -> Decimal | None:
    amount = _money(value)
    if amount is not None and amount < 0:
        raise _FieldError(f"tax cannot be negative (got {amount})")
    return amount


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
    found = methods.get(value.casefold())
    if found is None:
        raise _FieldError(f"no payment method named {value!r} in this business")
    return found
