"""One guard for free text that can reach Nomi, a terminal or a spreadsheet.

``guard_text`` normalises (NFC, surrounding space) and refuses controls, disguising bidirectional
characters, spreadsheet formulas and over-long text with a ``TextRefusedError`` that names the
field; ``printable`` escapes what a CLI prints of stored text. The rules: docs/intake.md.
"""

from __future__ import annotations

import re
import unicodedata

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters a spreadsheet treats as the start of a formula (OWASP CSV injection)."""

BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
    "\u200e\u200f\u061c"  # left-to-right, right-to-left and Arabic letter marks
)
"""Characters that reorder how text is displayed, so it reads differently from what it is."""

LINE_SEPARATORS = frozenset("\u2028\u2029")
"""Unicode line and paragraph separators (category Zl, Zp)."""

MULTILINE_WHITESPACE = frozenset("\n\r\t")
"""Control characters allowed inside multi-line text (descriptions)."""

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])")
"""A business slug: 2 to 63 lowercase letters, digits and hyphens, starting and ending with a
letter or digit (fits a URL path segment, a file name and a Prefect artifact key)."""

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
"""The shape of an email address (no spaces, one ``@``, a dot in the domain)."""

SHOWN_CHARS = 40
"""Characters of a refused value a message shows (then ``...``)."""


class TextRefusedError(ValueError):
    """A text that cannot be stored; ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def guard_text(
    value: str | None,
    *,
    field: str,
    limit: int,
    multiline: bool = False,
    required: bool = False,
) -> str | None:
    """Check and normalise one free text before it is stored.

    Args:
        value: The text as given (``None`` means absent).
        field: What it is, for the message (``"business name"``, ``"--description"``).
        limit: The most characters its column holds.
        multiline: The text may hold line breaks and tabs (descriptions).
        required: An absent or blank text is refused.

    Returns:
        The text in NFC, stripped, with line separators as ``\\n`` in multi-line text; ``None``
        when absent or blank (and not required).

    Raises:
        TextRefusedError: The text breaks one of the rules in the module docstring.
    """
    if value is None:
        if required:
            raise TextRefusedError(field, "required")
        return None
    text = unicodedata.normalize("NFC", value)
    if multiline:
        text = text.translate(_SEPARATORS_TO_NEWLINE)
    text = strip_spaces(text)
    if not text:
        if required:
            raise TextRefusedError(field, "required")
        return None
    reason = refusal(text, multiline=multiline)
    if reason is None and len(text) > limit:
        reason = f"longer than {limit} characters ({len(text)})"
    if reason is not None:
        raise TextRefusedError(field, reason)
    return text


def guard_required(value: str, *, field: str, limit: int, multiline: bool = False) -> str:
    """``guard_text`` for a text that must be given (a name): never ``None``.

    Raises:
        TextRefusedError: Blank, or the text breaks a rule of ``guard_text``.
    """
    text = guard_text(value, field=field, limit=limit, multiline=multiline)
    if text is None:
        raise TextRefusedError(field, "required")
    return text


def refusal(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` cannot be stored (its characters, then a formula prefix), or ``None``."""
    return character_refusal(text, multiline=multiline) or formula_refusal(text)


def character_refusal(text: str, *, multiline: bool = False) -> str | None:
    """Why a character of ``text`` cannot be stored, or ``None``.

    ``multiline``: tabs, line breaks and line or paragraph separators are allowed.
    """
    for char in text:
        if multiline and (char in MULTILINE_WHITESPACE or char in LINE_SEPARATORS):
            continue
        code = f"U+{ord(char):04X}"
        category = unicodedata.category(char)
        if category == "Cc":
            return f"contains the control character {code}; refused"
        if category == "Cs":
            return f"contains an unpaired surrogate {code}; refused"
        if char in BIDI_CONTROLS:
            return f"contains the bidirectional control {code}, which can disguise text; refused"
        if char in LINE_SEPARATORS:
            return f"contains the line separator {code}; refused (write it on one line)"
    return None


def formula_refusal(text: str) -> str | None:
    """Why ``text`` would be read as a spreadsheet formula, or ``None``.

    For text fields only: an amount such as ``-5`` is refused by its own parser instead.
    """
    visible = text
    while visible and (unicodedata.category(visible[0]) == "Cf" or visible[0].isspace()):
        visible = visible[1:]  # an invisible prefix must not hide a formula
    if visible.startswith(FORMULA_PREFIXES):
        return f"starts with {visible[0]!r}, which looks like a spreadsheet formula; refused"
    return None


def guard_slug(value: str, *, field: str = "business slug") -> str:
    """A business slug as given, if it has the ``SLUG`` shape.

    Raises:
        TextRefusedError: It does not (the message says what a slug may hold).
    """
    if not SLUG.fullmatch(value):
        raise TextRefusedError(
            field,
            f"{shown(value)} is not a slug: use 2 to 63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit (e.g. bright-smile)",
        )
    return value


def guard_email(value: str, *, field: str = "email", limit: int = 320) -> str:
    """An email address, checked as text, lowercased and of the ``EMAIL`` shape.

    Raises:
        TextRefusedError: Not storable text, or not an email address.
    """
    text = guard_required(value, field=field, limit=limit)
    if not EMAIL.fullmatch(text):
        raise TextRefusedError(field, f"{shown(text)} is not an email address")
    return text.lower()


def printable(text: str) -> str:
    """``text`` with every control, separator and bidirectional control as an escape.

    For terminal output: ``"a\\x1b]0;x\\x07"`` prints as ``a\\x1b]0;x\\x07`` (the backslash
    forms, not the bytes); tabs and newlines are escaped too, so a value cannot break the
    tab-separated columns of a list. Everything else (letters of any script, emoji) is kept.
    """
    if text.isprintable() and text.isascii():
        return text  # the common case, nothing to escape
    return "".join(_escape(char) for char in text)


def shown(value: str) -> str:
    """A value for a message: quoted, escaped (``printable``) and cut to ``SHOWN_CHARS``."""
    cut = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "..."
    return f"'{printable(cut)}'"


def _escape(char: str) -> str:
    category = unicodedata.category(char)
    if category not in ("Cc", "Cs", "Zl", "Zp") and char not in BIDI_CONTROLS:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def strip_spaces(text: str) -> str:
    """``text`` without surrounding spaces (any Zs), tabs, CR and LF (``str.strip`` would also
    drop controls such as U+001C and U+0085 unseen)."""
    if text.isascii():  # the common case: the only ASCII spaces are these four
        return text.strip(" \t\n\r")
    return _SURROUNDING_SPACE.sub("", text)


_SPACE = "[ \t\n\r\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"  # Zs, tab, CR, LF
_SURROUNDING_SPACE = re.compile(f"^{_SPACE}+|{_SPACE}+$")
_SEPARATORS_TO_NEWLINE = {ord(sep): "\n" for sep in LINE_SEPARATORS}
