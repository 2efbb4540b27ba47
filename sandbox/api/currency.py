"""Currencies of the sandbox: the ISO 4217 codes it knows and its daily exchange rates.

Nomi keeps daily rates for GBP, EUR, USD, CHF and SEK. A rate is in base-currency units per one
document unit, six decimals; it moves a little from day to day (deterministically, so a date always
gives the same rate) around a fixed mid-market value against GBP.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

#: Active ISO 4217 currency codes (funds and precious metals left out).
_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217 = frozenset(_CODES.split())
#: GBP per one unit of each currency with a daily rate (the middle the daily rate moves around).
GBP_PER_UNIT = {
    "GBP": Decimal("1"),
    "EUR": Decimal("0.8550"),
    "USD": Decimal("0.7900"),
    "CHF": Decimal("0.8950"),
    "SEK": Decimal("0.0745"),
}
RATE_PLACES = Decimal("0.000001")
CENT = Decimal("0.01")


def known(code: str) -> bool:
    """True for an ISO 4217 code the sandbox accepts."""
    return code in ISO_4217


def _wiggle(code: str, day: date) -> Decimal:
    """A deterministic day-to-day movement of at most ±1% (none for GBP)."""
    if code == "GBP":
        return Decimal(1)
    digest = hashlib.sha256(f"{code}:{day.isoformat()}".encode()).digest()
    return Decimal(1) + (Decimal(int.from_bytes(digest[:2], "big")) / 65535 - Decimal("0.5")) / 50


def daily_rate(currency: str, base: str, day: date) -> Decimal | None:
    """Nomi's rate for ``day``: ``base`` units per one ``currency`` unit, or None without one."""
    if currency == base:
        return Decimal(1).quantize(RATE_PLACES)
    if currency not in GBP_PER_UNIT or base not in GBP_PER_UNIT:
        return None
    mine = GBP_PER_UNIT[currency] * _wiggle(currency, day)
    theirs = GBP_PER_UNIT[base] * _wiggle(base, day)
    return (mine / theirs).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def base_amount(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount`` in the base currency at ``rate``, to the penny (half up)."""
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def rate_text(rate: Decimal) -> str:
    """A rate as sent in responses: six decimals."""
    return str(rate.quantize(RATE_PLACES))
