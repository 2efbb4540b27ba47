"""The report's units: one per measure, wherever it is shown (tables, headline, charts, artifacts).

Durations in seconds with three decimals (columns ``*_s``), rates in percent with one decimal
(``*_pct``), waiting and ages in hours with one decimal (``*_hours``); ``rounded`` and
``format_value`` apply them.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd

#: Decimals of each unit, by column suffix.
UNIT_DECIMALS = {"_s": 3, "_pct": 1, "_hours": 1}


def decimals_of(column: str) -> int | None:
    """The decimals a column's unit is shown with (None: not a measured quantity)."""
    for suffix, decimals in UNIT_DECIMALS.items():
        if column.endswith(suffix):
            return decimals
    return None


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every unit column (``*_s``, ``*_pct``, ``*_hours``) rounded to its unit."""
    out = frame.copy()
    for column in out.columns:
        decimals = decimals_of(str(column))
        if decimals is not None:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
            out[column] = out[column].round(decimals)
    return out


def format_value(column: str, value: object) -> str:
    """A cell as shown: unit columns with their fixed decimals and unit, others as they are.

    Money (``*base_total``) has two decimals and reads ``not recorded`` when unknown, never 0.
    """
    missing = value is None or value is pd.NA or value is pd.NaT
    if missing or (isinstance(value, float) and math.isnan(value)):
        if column.endswith("base_total"):
            return "not recorded"
        return "n/a" if decimals_of(column) is not None else ""
    if column.endswith("base_total") and isinstance(value, int | float | Decimal):
        return f"{float(value):,.2f}"
    decimals = decimals_of(column)
    if decimals is None:
        return str(value)
    text = f"{float(value):,.{decimals}f}"  # type: ignore[arg-type]
    if column.endswith("_pct"):
        return text + "%"
    return text + (" s" if column.endswith("_s") else " h")
