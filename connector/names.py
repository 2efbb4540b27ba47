"""Normalising supplier and customer names so rules and mirrored lists match reliably."""

from __future__ import annotations

import re
import unicodedata

_LEGAL_SUFFIXES = ("limited", "ltd", "plc", "llp", "llc", "inc", "co")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Fold a contact name for matching: case, accents, punctuation, ``&``, legal suffixes.

    Args:
        name: A supplier or customer name as written (``"Acme & Sons Ltd."``).

    Returns:
        The matching key (``"acme and sons"``); never empty for a non-blank name.
    """
    if name.isascii():  # the common case: no accents to strip, and casefold is lower
        text = name.lower()
    else:
        text = unicodedata.normalize("NFKD", name)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    words = _NON_WORD.sub(" ", text).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
