"""Item intake: import cost items, sales items and expense claims from a CSV or JSON Lines file.

Two streaming passes (``docs/intake.md`` has the format, the limits and the why): ``check`` reads
and checks every row and stages the good ones, writing nothing to the connector database; ``write``
inserts them in short transactions and assesses them. The import is audited as ``items.import``.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from connector.history.records import record_audit
from connector.items.check import Known, Staging, check_rows
from connector.items.choices import require_member
from connector.items.images import ImageStore
from connector.items.import_report import ImportReport, IntakeError, IntakeInterruptedError
from connector.items.rows.values import method_key
from connector.items.write import Inserter, write_rows
from connector.store.base import table_of
from connector.store.db import begin_write, is_busy_error
from connector.store.models import Business, Item, PaymentMethod

__all__ = ["ImportReport", "IntakeError", "IntakeInterruptedError", "import_items"]

ACTION = "items.import"
#: Rows staged per batch and inserted per write transaction.
CHUNK_ROWS = 2000


def import_items(
    session: Session,
    path: Path | str,
    *,
    business_id: uuid.UUID,
    actor_email: str,
    images_dir: Path,
    whole_file: bool = False,
) -> ImportReport:
    """Import the items of a CSV (``.csv``) or JSON Lines (``.jsonl``/``.ndjson``) file.

    Args:
        session: A session on the connector database (not inside a write transaction); the
            import commits its own short transactions.
        path: The file. Image paths in it are relative to its folder.
        business_id: The business the items belong to.
        actor_email: The member of the business importing (any role); audited.
        images_dir: Where images are stored (``ConnectorSettings.images_dir`` at the edge).
        whole_file: Write nothing when any row is refused (the ops form's default); otherwise
            the good rows are imported and the refused ones listed (the CLI's way).

    Returns:
        An ``ImportReport``: imported ids, skipped duplicates and the errors of refused rows.

    Raises:
        IntakeError: The file is missing or unreadable, its format unknown, or the business unknown
            (nothing written); ``IntakeInterruptedError`` when writing stopped after some chunks
            were committed (the same import again adds the rest).
        PermissionDeniedError: The actor is not a member of the business (refusal audited).
    """
    source = Path(path)
    if session.get(Business, business_id) is None:
        raise IntakeError(f"unknown business {business_id}")
    user = require_member(session, business_id=business_id, email=actor_email, action=ACTION)
    methods = {
        method_key(m.name): m.id
        for m in session.exec(select(PaymentMethod).where(PaymentMethod.business_id == business_id))
    }
    session.commit()  # hold no read snapshot while the file is checked
    report = ImportReport()
    images = ImageStore(images_dir)
    inserter = Inserter(session.get_bind().dialect, business_id)
    used: set[str] = set()
    with Staging(CHUNK_ROWS) as staging:
        try:
            check_rows(
                source,
                methods,
                report,
                staging,
                images,
                inserter.stage,
                _known(session, business_id),
            )
            if not (whole_file and report.refused):
                write_rows(session, business_id, staging, inserter, report, used)
        except BaseException as exc:
            session.rollback()
            with contextlib.suppress(Exception):
                _remove_unused_images(session, images, used)
            if not report.imported:
                raise  # nothing was written
            with contextlib.suppress(Exception):
                _audit(session, business_id, user.id, source, report, interrupted=True)
            if not isinstance(exc, Exception):
                raise
            why = "the database stayed busy" if is_busy_error(exc) else type(exc).__name__
            raise IntakeInterruptedError(
                f"the import of {source.name} stopped ({why}) after {len(report.imported)} "
                "item(s) were imported: import the same file again to add the rest"
            ) from exc
    _remove_unused_images(session, images, used)
    _audit(session, business_id, user.id, source, report, interrupted=False)
    report.errors.sort(key=lambda e: e.line)
    return report


def _known(session: Session, business_id: uuid.UUID) -> Known:
    """The lookup of items the business already has, for the credit notes of the file (one
    short read per thousand references, ended at once: the check holds no read snapshot)."""
    table = table_of(Item)

    def lookup(external_ids: list[str]) -> dict[str, tuple[str, str]]:
        try:
            rows = session.connection().execute(
                sa.select(table.c.external_id, table.c.kind, table.c.document_type).where(
                    table.c.business_id == business_id, table.c.external_id.in_(external_ids)
                )
            )
            return {external_id: (kind, document) for external_id, kind, document in rows}
        finally:
            session.commit()

    return lookup


def _remove_unused_images(session: Session, images: ImageStore, used: set[str]) -> None:
    """Remove the images this import stored that no item uses (rows already present, a file
    refused as a whole); an item of another import naming the same image keeps it."""
    unused = [sha for sha in images.created if sha not in used]
    if not unused:
        return
    table = table_of(Item)
    referenced = set(
        session.connection()
        .execute(sa.select(table.c.image_sha256).where(table.c.image_sha256.in_(unused)))
        .scalars()
    )
    session.rollback()
    images.remove_unused(used, {str(s) for s in referenced})


def _audit(
    session: Session,
    business_id: uuid.UUID,
    user_id: uuid.UUID,
    source: Path,
    report: ImportReport,
    *,
    interrupted: bool,
) -> None:
    """Record the import (``items.import``) with its counts, in a short transaction."""
    begin_write(session)
    detail: dict[str, Any] = {
        "file": source.name,
        "rows": report.rows,
        "imported": len(report.imported),
        "already_present": len(report.duplicates),
        "refused": report.refused,
    }
    if interrupted:
        detail["interrupted"] = True
    record_audit(
        session,
        action=ACTION,
        allowed=True,
        business_id=business_id,
        user_id=user_id,
        detail=detail,
    )
    session.commit()
