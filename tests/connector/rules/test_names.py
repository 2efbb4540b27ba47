"""normalise_name: matching keys for names in every script (issue 15), and the ASCII fast path."""

from __future__ import annotations

import unicodedata
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.publishing.payloads import contact_key
from connector.rules.names import UnmatchableNameError, matching_key, normalise_name


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_names_normalise_as_the_unicode_path_would(name: str) -> None:
    # a leading no-break space only separates words, and sends the name down the Unicode path
    assert normalise_name(name) == normalise_name("\u00a0" + name)


@given(st.text())
def test_the_key_is_stable_under_normalising_again(name: str) -> None:
    key = normalise_name(name)
    assert normalise_name(key) == key
    assert normalise_name(unicodedata.normalize("NFC", name)) == key
    assert normalise_name(unicodedata.normalize("NFD", name)) == key


def test_examples_read_as_expected() -> None:
    assert normalise_name("Acme & Sons Ltd.") == "acme and sons"
    assert normalise_name("CAFÉ NÉRO LIMITED") == "cafe nero"
    assert normalise_name("Café Nero") == normalise_name("CAFE NERO")


# One realistic supplier or customer name per script; each must keep its own key.
SCRIPTS = {
    "arabic": "مكتبة النور",
    "arabic 2": "مطعم الشرق",
    "hebrew": 'שוקולד טוב בע"מ',
    "japanese": "東京デンタル",
    "japanese 2": "東京文具",
    "chinese": "北京牙科诊所",
    "chinese 2": "上海文具有限公司",
    "greek": "Αθηναϊκή Οδοντιατρική",
    "cyrillic": "Стоматология Улыбка",
    "devanagari": "दिल्ली डेंटल क्लिनिक",
    "thai": "ร้านกาแฟดอยช้าง",
    "korean": "서울 치과",
    "latin": "Bright Smile Dental",
}


@pytest.mark.parametrize("name", list(SCRIPTS.values()), ids=list(SCRIPTS))
def test_a_name_in_any_script_keeps_a_non_empty_key_of_its_own_letters(name: str) -> None:
    key = normalise_name(name)
    assert key, name  # issue 15: every one of these was '' before
    assert matching_key(name) == key
    assert any(unicodedata.category(ch).startswith("L") for ch in key)


def test_names_in_different_scripts_never_share_a_key() -> None:
    keys = {normalise_name(name) for name in SCRIPTS.values()}
    assert len(keys) == len(SCRIPTS)


def test_names_in_different_scripts_never_share_a_contact_idempotency_key() -> None:
    connection = uuid.uuid4()
    keys = {contact_key(connection, "supplier", name) for name in SCRIPTS.values()}
    assert len(keys) == len(SCRIPTS)
    assert contact_key(connection, "supplier", "東京デンタル") != contact_key(
        connection, "customer", "東京デンタル"
    )
    assert contact_key(connection, "supplier", "Acme Ltd") == contact_key(
        connection, "supplier", "ACME limited."
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Café Noir", "CAFE NOIR"),
        ("Café Noir", "Cafe\u0301 Noir"),  # the accent as a combining mark
        ("CAFÉ NOIR", "cafe\u0301  noir"),
        ("\uff21\uff23\uff2d\uff25 Ltd", "Acme"),  # full-width forms
        ("Straße", "STRASSE"),
        ("ΑΘΗΝΑ", "Αθηνά"),  # Greek accents and case
        ("ΟΔΟΣ", "οδος"),  # Greek final sigma
        ("مَكْتَبَة النُّور", "مكتبة النور"),  # Arabic vowel marks are optional in writing
        ("مكتـــبة النور", "مكتبة النور"),  # tatweel stretching
        ("ﾃﾞﾝﾀﾙ", "デンタル"),  # half-width katakana
        ("東京デンタル株式会社", "東京デンタル株式会社 "),
        ("Стоматология  «Улыбка»", "СТОМАТОЛОГИЯ УЛЫБКА"),
        ('שוקולד טוב בע"מ', "שוקולד טוב בע״מ"),  # quote vs gershayim
    ],
)
def test_look_alike_spellings_of_one_name_match(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("東京デンタル", "東京文具"),
        ("東京デンタル", "東京テンタル"),  # the voicing mark makes another kana
        ("Май", "Маи"),  # Cyrillic й is its own letter
        ("Acme", "\u0410cme"),  # Cyrillic A (U+0410) is not Latin A
        ("مطعم الشرق", "مكتبة النور"),
        ("दिल्ली डेंटल", "दल्ल डेंटल"),  # Devanagari vowel signs are kept
        ("ร้านกาแฟ", "รานกาแฟ"),  # Thai tone mark kept
        ("Café Noir", "Café Blanc"),
    ],
)
def test_different_names_that_look_alike_do_not_match(a: str, b: str) -> None:
    assert normalise_name(a) != normalise_name(b)


@pytest.mark.parametrize("name", ["🦷", "🦷🦷 😀", "☕ & 🍰", "!!!", "  ", "&", "—"])
def test_a_name_with_no_letter_or_digit_has_no_key_and_is_refused(name: str) -> None:
    assert normalise_name(name) == ""
    with pytest.raises(UnmatchableNameError, match="no letters or digits to match on"):
        matching_key(name)
    with pytest.raises(UnmatchableNameError):
        contact_key(uuid.uuid4(), "supplier", name)


def test_emoji_around_letters_are_separators() -> None:
    assert normalise_name("🦷 Bright Smile 🦷") == "bright smile"
    assert normalise_name("東京🦷デンタル") == "東京 デンタル"
