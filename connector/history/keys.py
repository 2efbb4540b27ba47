"""Artifact keys: the one slugifier every Prefect artifact key of a business is built with.

Prefect allows lowercase letters, digits and dashes in artifact keys; a business slug, a report
stem or a resource id is reduced to those (runs of anything else become one dash).
"""

from __future__ import annotations

import re


def artifact_slug(text: str, *, fallback: str = "business") -> str:
    """``text`` as artifact keys allow it (``fallback`` when nothing is left)."""
    slug = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")
    return slug or fallback


def artifact_key(stem: str, business: str | None = None) -> str:
    """``stem`` or ``stem-<business slug>``, e.g. ``artifact_key("sync", "Bright_Smile")``."""
    return f"{stem}-{artifact_slug(business)}" if business else artifact_slug(stem)
