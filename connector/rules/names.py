"""Normalising supplier and customer names so rules and mirrored lists match reliably.

The matching key works for names in any script: letters and digits of every script are kept, and
what folds together (compatibility forms, case, Latin and Greek accents, Arabic and Hebrew points,
``&``/"and", punctuation, legal suffixes) and what stays apart is written down in docs/rules.md,
"Name matching".
"""

from __future__ import annotations

import re
import unicodedata

_LEGAL_SUFFIXES = ("limited", "ltd", "plc", "llp", "llc", "inc", "co")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_TATWEEL = "\u0640"


class UnmatchableNameError(ValueError):
    """A contact name with no letter or digit left to match on (emoji or punctuation only)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the name {name.strip()!r} has no letters or digits to match on: "
            "write the supplier or customer name with at least one letter or digit"
        )
        self.name = name


def _is_optional_mark(mark: str, base: str) -> bool:
    """Whether a combining ``mark`` after ``base`` is an accent or vowel point the key drops."""
    code = ord(mark)
    if 0x0591 <= code <= 0x05C7 or 0x064B <= code <= 0x065F or code == 0x0670:
        return True  # Hebrew points and cantillation, Arabic harakat and superscript alef
    if not base:
        return False
    try:
        script = unicodedata.name(base).split(" ", 1)[0]
    except ValueError:  # an unnamed code point
        return False
    return script in ("LATIN", "GREEK")


def _fold_unicode(name: str) -> str:
    """Compatibility forms, case, then accents (see the module docstring) of a non-ASCII name."""
    text = unicodedata.normalize("NFKC", name).casefold()
    out: list[str] = []
    base = ""
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.category(ch).startswith("M"):
            if not _is_optional_mark(ch, base):
                out.append(ch)
            continue
        base = ch
        if ch != _TATWEEL:
            out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _words(text: str) -> list[str]:
    """Split on every character that is not a letter, digit or combining mark of any script."""
    kept = [ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text]
    return "".join(kept).split()


def normalise_name(name: str) -> str:
    """Fold a contact name for matching: case, accents, punctuation, ``&``, legal suffixes.

    Args:
        name: A supplier or customer name as written (``"Acme & Sons Ltd."``, ``"مكتبة النور"``).

    Returns:
        The matching key (``"acme and sons"``, ``"مكتبة النور"``); empty only when the name has no
        letter or digit of any script (blank, emoji or punctuation only): such a name matches
        nothing (see ``matching_key``).
    """
    if name.isascii():  # the common case: no accents to strip, and casefold is lower
        text = name.lower()
        if not _NON_WORD.sub("", text):
            return ""  # nothing to match on ("&" alone is not the name "and")
        words = _NON_WORD.sub(" ", text.replace("&", " and ")).split()
    else:
        text = _fold_unicode(name)
        if not _words(text):
            return ""
        words = _words(text.replace("&", " and "))
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def matching_key(name: str) -> str:
    """The matching key of a name that must have one (a rule, a new contact).

    Raises:
        UnmatchableNameError: When nothing is left of the name (``normalise_name`` is empty).
    """
    key = normalise_name(name)
    if not key:
        raise UnmatchableNameError(name)
    return key


#: The longest matching key a column holds (``items.supplier_key``, ``name_normalised``).
KEY_MAX = 255


def contact_key(name: str | None) -> str | None:
    """The stored matching key of an item's contact name (``items.supplier_key``).

    ``None`` when there is no name or nothing to match on: such an item is never a possible
    duplicate by supplier (docs/rules.md, "Possible duplicates").
    """
    key = normalise_name(name or "")[:KEY_MAX]
    return key or None
