"""normalise_name: the ASCII fast path gives exactly what the full Unicode path gives."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from connector.names import normalise_name


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_names_normalise_as_the_unicode_path_would(name: str) -> None:
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    assert normalise_name(name) == normalise_name(folded)


def test_examples_read_as_expected() -> None:
    assert normalise_name("Acme & Sons Ltd.") == "acme and sons"
    assert normalise_name("CAFÉ NÉRO LIMITED") == "cafe nero"
    assert normalise_name("Café Nero") == normalise_name("CAFE NERO")
