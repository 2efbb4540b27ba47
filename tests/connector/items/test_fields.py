"""Row fields: the fast one-pass character check agrees with ``connector.text_guard``."""

from __future__ import annotations


def test_the_one_pass_character_check_refuses_exactly_what_the_text_guard_refuses() -> None:
    """The fast check of a whole row must agree with ``connector.text_guard`` on every
    character of the Basic Multilingual Plane (and a few beyond), in one-line and free text."""
    from connector.items.rows import values as row_values
    from connector.text_guard import character_refusal

    for code in [*range(0x10000), 0x1F9B7, 0xE0001, 0x10FFFF]:
        char = chr(code)
        for multiline, pattern in (
            (False, row_values.REFUSED),
            (True, row_values.REFUSED_IN_FREE_TEXT),
        ):
            assert (pattern.search(char) is not None) == (
                character_refusal(char, multiline=multiline) is not None
            ), (hex(code), multiline)
