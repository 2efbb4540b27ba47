"""Document images: sniff the type from the bytes, check the size, store by sha256.

``ImageStore`` is what an import uses: each distinct image file is read, checked and stored once
(by its sha256), however many rows name it, and only its sha256 and type are kept in memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
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


def _checked_size(path: Path, max_bytes: int) -> None:
    """Refuse a missing, empty or too large file."""
    if not path.is_file():
        raise ImageError(f"image file not found: {path.name}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"image {path.name} is {size} bytes; the limit is {max_bytes} (10 MB)")
    if size == 0:
        raise ImageError(f"image {path.name} is empty")


def _checked_type(path: Path, head: bytes) -> str:
    content_type = sniff_content_type(head[:16])
    if content_type is None:
        raise ImageError(f"image {path.name} is not a PDF, PNG, JPEG or HEIC file (by content)")
    return content_type


def check_image(path: Path, *, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Check a document image without reading it whole (size and the first bytes).

    Returns:
        The sniffed content type.

    Raises:
        ImageError: As ``read_image``.
    """
    _checked_size(path, max_bytes)
    with path.open("rb") as handle:
        return _checked_type(path, handle.read(16))


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
    _checked_size(path, max_bytes)
    with path.open("rb") as handle:
        content = handle.read(max_bytes + 1)  # the file may have grown since stat()
    if len(content) > max_bytes:
        raise ImageError(f"image {path.name} is larger than {max_bytes} bytes (10 MB)")
    content_type = _checked_type(path, content)
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


@dataclass(frozen=True)
class StoredImage:
    """An image stored under ``images_dir`` (its bytes are not kept)."""

    path: Path
    content_type: str
    sha256: str


@dataclass
class ImageStore:
    """Reads, checks and stores the images one import names, each distinct file once.

    Attributes:
        images_dir: Where images are stored (``<images_dir>/<sha256>``).
        created: The files this store created (not there before), for ``remove_unused``.
    """

    images_dir: Path
    created: dict[str, Path] = field(default_factory=dict)
    _seen: dict[Path, StoredImage | str] = field(default_factory=dict)

    def store(self, path: Path) -> StoredImage:
        """The stored image of ``path`` (resolved), reading and storing it on first use only.

        Raises:
            ImageError: As ``read_image`` (the same error again for every row naming the file).
        """
        known = self._seen.get(path)
        if known is None:
            try:
                image = read_image(path)
            except ImageError as exc:
                known = str(exc)
            else:
                stored, new = store_image(image, self.images_dir)
                if new:
                    self.created[image.sha256] = stored
                known = StoredImage(stored, image.content_type, image.sha256)
                del image  # the bytes: at most one image is held at a time
            self._seen[path] = known
        if isinstance(known, str):
            raise ImageError(known)  # a new one: re-raising one instance grows its traceback
        return known

    def check(self, path: Path) -> None:
        """Check ``path`` as ``store`` would, without storing it (for a row refused anyway).

        Raises:
            ImageError: As ``check_image``.
        """
        known = self._seen.get(path)
        if isinstance(known, str):
            raise ImageError(known)
        if known is None:
            check_image(path)

    def remove_unused(self, used: set[str], still_referenced: set[str] | None = None) -> None:
        """Delete the files this store created whose sha256 is neither in ``used`` nor in
        ``still_referenced`` (an item elsewhere names it)."""
        keep = used | (still_referenced or set())
        for sha256, path in list(self.created.items()):
            if sha256 not in keep:
                path.unlink(missing_ok=True)
                del self.created[sha256]
