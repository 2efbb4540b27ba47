"""Document images: sniff the type from the bytes, check the size, store by sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_IMAGE_BYTES = 10 * 1024 * 1024
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


class ImageError(ValueError):
    """The image is missing, too large, or not a PDF/PNG/JPEG/HEIC."""


@dataclass(frozen=True)
class DocumentImage:
    """An image read and checked, not yet stored."""

    content: bytes
    content_type: str
    sha256: str


def sniff_content_type(head: bytes) -> str | None:
    """The MIME type from the first bytes (PDF, PNG, JPEG, HEIC), or None if none of them."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return "image/heic"
    return None


def read_image(path: Path, *, max_bytes: int = MAX_IMAGE_BYTES) -> DocumentImage:
    """Read and check a document image.

    Args:
        path: The file.
        max_bytes: Largest accepted size (Nomi's limit, 10 MB).

    Returns:
        The bytes, the sniffed content type and the sha256.

    Raises:
        ImageError: Missing, not a file, empty, too large, or an unsupported type.
    """
    if not path.is_file():
        raise ImageError(f"image file not found: {path.name}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"image {path.name} is {size} bytes; the limit is {max_bytes} (10 MB)")
    if size == 0:
        raise ImageError(f"image {path.name} is empty")
    with path.open("rb") as handle:
        content = handle.read(max_bytes + 1)  # the file may have grown since stat()
    if len(content) > max_bytes:
        raise ImageError(f"image {path.name} is larger than {max_bytes} bytes (10 MB)")
    content_type = sniff_content_type(content[:16])
    if content_type is None:
        raise ImageError(f"image {path.name} is not a PDF, PNG, JPEG or HEIC file (by content)")
    return DocumentImage(content, content_type, hashlib.sha256(content).hexdigest())


def store_image(image: DocumentImage, images_dir: Path) -> tuple[Path, bool]:
    """Store the image as ``<images_dir>/<sha256>`` (atomic; an existing copy is kept).

    Returns:
        The stored path and whether this call created it.
    """
    images_dir.mkdir(parents=True, exist_ok=True)
    target = images_dir / image.sha256
    if target.exists():
        return target, False
    fd, tmp = tempfile.mkstemp(dir=images_dir, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(image.content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target, True
