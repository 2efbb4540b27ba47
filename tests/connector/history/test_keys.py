"""The one slugifier of artifact keys (``connector.history.keys``)."""

from __future__ import annotations

import pytest

from connector.history.keys import artifact_key, artifact_slug


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("bright-smile", "bright-smile"),
        ("Bright_Smile Ltd", "bright-smile-ltd"),
        ("  --Café & Co--  ", "caf-co"),
        ("a---b", "a-b"),
        ("___", "business"),
        ("", "business"),
    ],
)
def test_artifact_slug_keeps_lowercase_letters_digits_and_single_dashes(
    text: str, slug: str
) -> None:
    assert artifact_slug(text) == slug


def test_the_fallback_names_what_was_empty() -> None:
    assert artifact_slug("nomi.connection.", fallback="unknown") == "nomi-connection"
    assert artifact_slug("!!", fallback="unknown") == "unknown"


def test_artifact_keys_join_the_stem_and_the_business_slug() -> None:
    assert artifact_key("sync", "Bright_Smile Ltd") == "sync-bright-smile-ltd"
    assert artifact_key("publish-summary", "business-7") == "publish-summary-business-7"
    assert artifact_key("history-summary", None) == "history-summary"
    assert artifact_key("History Summary") == "history-summary"
