"""The one text guard (connector.text_guard): what free text may be stored, and how it is shown."""

from __future__ import annotations

import unicodedata

import pytest

from connector.text_guard import (
    TextRefusedError,
    guard_email,
    guard_slug,
    guard_text,
    printable,
    shown,
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('=HYPERLINK("http://evil.example/x","Click")', "formula"),
        ("+44 cmd", "formula"),
        ("-2+3", "formula"),
        ("@SUM(A1)", "formula"),
        ("\u200b=1+1", "formula"),  # an invisible prefix does not hide it
        ("Acme\x00Ltd", "U+0000"),
        ("Acme\x1b]0;pwned\x07", "U+001B"),
        ("Acme\x7f", "U+007F"),
        ("Acme\x85", "U+0085"),  # C1 (next line), not stripped away as whitespace
        ("\x1cAcme", "U+001C"),
        ("Acme\x1cLtd", "U+001C"),
        ("Acme\nLtd", "U+000A"),  # one-line text has no line breaks
        ("Acme\u2028Ltd", "U+2028"),
        ("Acme\u2029Ltd", "U+2029"),
        ("txt.exe\u202egpj", "U+202E"),
        ("Acme\u2066Ltd", "U+2066"),
        ("Acme\u200fLtd", "U+200F"),
        ("Acme\u061cLtd", "U+061C"),
        ("Acme\ud800", "U+D800"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_one_line_text_is_refused_naming_the_field_and_the_character(
    value: str, reason: str
) -> None:
    with pytest.raises(TextRefusedError) as refused:
        guard_text(value, field="business name", limit=255)
    message = str(refused.value)
    assert message.startswith("business name: ")
    assert reason in message
    assert refused.value.field == "business name"
    assert all(unicodedata.category(c) != "Cc" for c in message)  # nothing raw in the message


def test_text_is_nfc_stripped_and_blank_is_absent() -> None:
    decomposed = "Cafe\u0301 Noir"
    assert guard_text(f"  {decomposed} ", field="name", limit=255) == "Caf\u00e9 Noir"
    assert guard_text("\u3000Acme\u00a0\t\n", field="name", limit=255) == "Acme"
    assert guard_text("   ", field="name", limit=255) is None
    assert guard_text(None, field="name", limit=255) is None
    with pytest.raises(TextRefusedError, match="name: required"):
        guard_text(" ", field="name", limit=255, required=True)


def test_the_limit_counts_characters_after_nfc() -> None:
    # 255 precomposed characters written decomposed (510 code points) fit a 255 column
    assert guard_text("e\u0301" * 255, field="name", limit=255) == "\u00e9" * 255
    assert guard_text("\u6771" * 255, field="name", limit=255) == "\u6771" * 255


def test_multiline_text_keeps_line_breaks_and_tabs_and_reads_separators_as_line_breaks() -> None:
    text = guard_text(
        "Line one\r\n\tLine two\u2028Line three", field="d", limit=100, multiline=True
    )
    assert text == "Line one\r\n\tLine two\nLine three"
    with pytest.raises(TextRefusedError, match="U\\+001B"):
        guard_text("a\x1b[2Jb", field="d", limit=100, multiline=True)
    with pytest.raises(TextRefusedError, match="formula"):
        guard_text("\n=1+1", field="d", limit=100, multiline=True)


def test_names_in_any_script_and_emoji_pass() -> None:
    for name in [
        "東京デンタル",
        "مكتبة النور",
        "Ελληνικά",
        "Café 👩\u200d🔬 Lab",
        "O'Brien & Sons",
    ]:
        assert guard_text(name, field="name", limit=255) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("slug", ["ab", "bright-smile", "a1", "x" * 63, "2026-books"])
def test_good_slugs_pass(slug: str) -> None:
    assert guard_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    ["bad_slug", "../../etc", "=1+1", "x" * 3000, "x" * 64, "a", "Bright", "-ab", "ab-", "a b", ""],
)
def test_bad_slugs_are_refused_saying_what_a_slug_is(slug: str) -> None:
    with pytest.raises(TextRefusedError) as refused:
        guard_slug(slug)
    message = str(refused.value)
    assert message.startswith("business slug: ")
    assert "lowercase letters, digits and hyphens" in message
    assert len(message) < 300  # a 3000-character slug is not echoed whole


def test_emails_are_checked_and_lowercased() -> None:
    assert guard_email(" Owner@Bright.Example ") == "owner@bright.example"
    for bad in ["not-an-email", "=cmd@x.example", "a\x00@x.example", "a@b"]:
        with pytest.raises(TextRefusedError, match=r"^email: "):
            guard_email(bad)


def test_printable_escapes_what_would_reach_a_terminal_raw() -> None:
    assert printable("Acme\x1b]0;pwned\x07") == "Acme\\x1b]0;pwned\\x07"
    assert printable("a\tb\nc\x00") == "a\\x09b\\x0ac\\x00"
    assert printable("x\u202ey\u2028z\x9b") == "x\\u202ey\\u2028z\\x9b"
    assert printable("東京 Café 👩\u200d🔬") == "東京 Café 👩\u200d🔬"
    assert shown("a" * 100) == "'" + "a" * 40 + "...'"


def test_intake_rows_go_through_the_same_guard() -> None:
    """One definition: the bidi marks added to the guard are refused in item fields too."""
    from connector.items.rows.fields import parse_row

    row = {"external_id": "e1", "kind": "cost", "total": "12.00", "contact_name": "Acme"}
    for field, value, reason in [
        ("contact_name", "Acme\u200fLtd", "U+200F"),
        ("reference", "INV\u061c1", "U+061C"),
        ("contact_name", '=HYPERLINK("x")', "formula"),
        ("description", "ok\x1b[2J", "U+001B"),
    ]:
        _, errors = parse_row({**row, field: value}, line=2, payment_methods={})
        assert [(e.field, reason in e.message) for e in errors] == [(field, True)], errors
    negative = {**row, "contact_name": "Acme", "total": "-5"}
    _, errors = parse_row(negative, line=2, payment_methods={})
    assert [e.field for e in errors] == ["total"]  # an amount is not refused as a formula
    assert "more than 0" in errors[0].message
