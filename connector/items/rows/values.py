"""The values of one intake row, each checked: text, amounts, dates, rates, codes and choices.

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

from connector.rules.vocabulary import DocumentType, ItemKind
from connector.text_guard import (
    BIDI_CONTROLS,
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
REFUSED = re.compile(f"[{_CONTROLS}\ud800-\udfff{_BIDI}{''.join(sorted(LINE_SEPARATORS))}]")
REFUSED_IN_FREE_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_SEPARATORS_TO_NEWLINE = {ord(sep): "\n" for sep in LINE_SEPARATORS}
_KINDS = frozenset(k.value for k in ItemKind)
_DOCUMENT_TYPES = frozenset(d.value for d in DocumentType)
_CENT = Decimal("0.01")
_RATE_STEP = Decimal("0.000001")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
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

#: Exchange rates: digits before the point (an exact double on SQLite, as for amounts) and after.
MAX_RATE_DIGITS = 9
RATE_DECIMALS = 6
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}
STRUCTURED_VALUE = "\x00structured"  # a JSON object or list where a plain value belongs


@dataclass(frozen=True)
class RowError:
    """One problem in one row: where it is and what is wrong."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


class FieldError(ValueError):
    """A value that cannot be accepted (the message names why)."""


def method_key(name: str) -> str:
    """How a payment method's name is looked up: NFC-normalised and casefolded."""
    return unicodedata.normalize("NFC", name).casefold()


def as_text(value: Any) -> str | None:
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
        return STRUCTURED_VALUE
    stripped = strip_spaces(str(value))
    return stripped or None


def checked(value: str, limit: int | None, *, multiline: bool) -> str:
    """The value as ``connector.text_guard.guard_text`` stores it (NFC; line separators as
    ``\\n`` in free text), once it holds no refused character and, for a text column of ``limit``
    characters, no formula prefix and no more than ``limit`` characters."""
    if value == STRUCTURED_VALUE:
        raise FieldError("must be a plain value, not a JSON object or list")
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
        if multiline:
            value = value.translate(_SEPARATORS_TO_NEWLINE)
    if (REFUSED_IN_FREE_TEXT if multiline else REFUSED).search(value) is not None:
        raise FieldError(character_refusal(value, multiline=multiline) or "refused")
    if limit is not None:
        check_text(value, limit)
    return value


def check_text(value: str, limit: int) -> None:
    """Refuse a spreadsheet formula (``connector.text_guard``) and text over ``limit``."""
    reason = formula_refusal(value)
    if reason is not None:
        raise FieldError(reason)
    if len(value) > limit:
        raise FieldError(f"longer than {limit} characters")


def _kind(value: str | None) -> str:
    if value is None:
        raise FieldError("required: cost, sales or expense_claim")
    lowered = value.lower()
    if lowered not in _KINDS:
        raise FieldError(f"unknown kind {value!r}: use cost, sales or expense_claim")
    return lowered


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    if not _DATE.match(value):  # fromisoformat also takes 20260302 and week dates (2026-W09-1)
        raise FieldError(f"{value!r} is not a date in YYYY-MM-DD form")
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise FieldError(f"{value!r} is not a date in YYYY-MM-DD form") from None
    if not 1990 <= parsed.year <= 2100:
        raise FieldError(f"{value!r} is not a plausible YYYY-MM-DD date")
    return parsed


def money(value: str | None) -> Decimal | None:
    if value is None:
        return None
    if not _AMOUNT.match(value) or value in ("+", "-"):  # the only matches without a digit
        if value.lower().lstrip("+-") in _NOT_FINITE:
            raise FieldError(f"{value!r} is not a finite amount")
        raise FieldError(f"{_clip(value)!r} is not a number (digits and one '.' only)")
    try:
        amount = Decimal(value.replace(",", "") if "," in value else value)
    except InvalidOperation:
        raise FieldError(f"{_clip(value)!r} is not a number") from None
    if amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise FieldError(
            f"{_clip(value)} is too large to be stored exactly: at most {MAX_AMOUNT_DIGITS} "
            "digits before the point"
        )
    cents = amount.quantize(_CENT)
    if amount != cents:
        raise FieldError(f"{value} has more than two decimal places")
    return cents


def _clip(value: str, limit: int = 40) -> str:
    """A value shortened for a message."""
    return value if len(value) <= limit else value[:limit] + "..."


def _total(value: str | None) -> Decimal | None:
    amount = money(value)
    if amount is not None and amount <= 0:
        raise FieldError(
            f"total must be more than 0 (got {amount}): a credit is imported as a credit note "
            "(document_type credit_note) with a positive total"
        )
    if amount is not None and amount > MAX_TOTAL:
        raise FieldError(f"total {amount} is implausibly large (limit {MAX_TOTAL})")
    return amount


def tax_amount(value: str | None) -> Decimal | None:
    amount = money(value)
    if amount is not None and amount < 0:
        raise FieldError(f"tax cannot be negative (got {amount})")
    return amount


def _document_type(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in _DOCUMENT_TYPES:
        raise FieldError(f"unknown document type {value!r}: use invoice, receipt or credit_note")
    return lowered


def _exchange_rate(value: str | None) -> Decimal | None:
    """Base-currency units per one unit of the item's currency: > 0, at most 6 decimals."""
    if value is None:
        return None
    if "," in value or not _AMOUNT.match(value) or value in ("+", "-"):
        if value.lower().lstrip("+-") in _NOT_FINITE:
            raise FieldError(f"{value!r} is not a finite rate")
        raise FieldError(f"{_clip(value)!r} is not a number (digits and one '.' only)")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise FieldError(f"{_clip(value)!r} is not a number") from None
    if rate <= 0:
        raise FieldError(f"an exchange rate must be more than 0 (got {_clip(value)})")
    if rate.adjusted() >= MAX_RATE_DIGITS:
        raise FieldError(
            f"{_clip(value)} is implausibly large: at most {MAX_RATE_DIGITS} digits before the "
            "point"
        )
    if rate != rate.quantize(_RATE_STEP):
        raise FieldError(f"{_clip(value)} has more than {RATE_DECIMALS} decimal places")
    return rate.quantize(_RATE_STEP)


def _bool(value: str | None) -> bool:
    lowered = (value or "").lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(f"{value!r} is not true/false")


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if code not in ISO_4217:
        raise FieldError(f"{value!r} is not an ISO 4217 currency code")
    return code


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise FieldError(f"{value!r} is not an email address")
    return value.lower() if value else None


def payment_method(value: str | None, methods: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    if value is None:
        return None
    found = methods.get(method_key(value))
    if found is None:
        raise FieldError(f"no payment method named {value!r} in this business")
    return found


PARSERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "due_date": _date,
    "total": _total,
    "tax_amount": tax_amount,
    "paid": _bool,
    "currency": _currency,
    "kind": _kind,
    "claimant_email": _email,
    "payment_method": payment_method,
    "document_type": _document_type,
    "exchange_rate": _exchange_rate,
}
