"""What an intake import did (``ImportReport``) and how a whole import fails (``IntakeError``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from connector.items.rows.values import RowError

#: Problems listed in the report (all are counted; the rest are summed up in ``unlisted``).
MAX_LISTED_ERRORS = 1000


class IntakeError(Exception):
    """The file as a whole cannot be read (missing, unknown format, no header)."""


class IntakeInterruptedError(IntakeError):
    """The import stopped while writing, after some chunks were committed (say how many)."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        imported: Ids of the items created.
        duplicates: External ids skipped because the business already has them.
        errors: The problems found (line, field, message), at most ``MAX_LISTED_ERRORS``; those
            rows were not written.
        rows: Data rows read.
        refused: Rows refused (each has at least one problem).
        unlisted: Problems found beyond the ``MAX_LISTED_ERRORS`` listed.
        longest_write_seconds: The longest write transaction the import held.
        ready: Imported items the assessment found Ready (what auto-publish may take at once).
    """

    imported: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    refused: int = 0
    unlisted: int = 0
    longest_write_seconds: float = 0.0
    ready: int = 0

    @property
    def ok(self) -> bool:
        """True when every row was imported or already present."""
        return not self.refused

    def refuse(self, problems: list[RowError]) -> None:
        """Count one refused row and list its problems (at most ``MAX_LISTED_ERRORS`` in all)."""
        self.refused += 1
        room = MAX_LISTED_ERRORS - len(self.errors)
        self.errors.extend(problems[: max(room, 0)])
        self.unlisted += max(len(problems) - max(room, 0), 0)
