"""Document images: their type is recognised from their content."""

from __future__ import annotations

import pytest

from connector.items.images import sniff_content_type


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
        (b"GIF89a", None),
        (b"<html>", None),
    ],
)
def test_image_types_are_recognised_by_content(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected
