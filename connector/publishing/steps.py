"""The Nomi calls of one item's publish, in order: contact, claimant, record, image, payment.

Each step sends what the item's ``Plan`` holds and notes an attempt row per call (``ItemRun``).
A step whose write is already done (a record id, an uploaded image, a recorded payment) is
skipped or recovered by ``source_id`` (a voided record never counts), so a retried item never
writes twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select

from connector.publishing.outcomes import error_code
from connector.publishing.payloads import source_id
from connector.publishing.plan import Held, Plan, RecordCreate
from connector.publishing.run import ItemRun
from connector.rules.names import normalise_name
from connector.rules.vocabulary import (
    AttemptOutcome,
    AttemptStep,
    DocumentType,
    HoldCode,
    ItemKind,
    ItemStatus,
    record_step,
)
from connector.store.history_tables import PublishAttempt
from connector.store.models import Customer, Item, Supplier
from nomi.client import NomiClient
from nomi.errors import RejectedError
from nomi.models import Attachment

__all__ = ["Held", "claimant", "contact", "credited", "image", "payment", "record"]


@dataclass(frozen=True)
class RecordApi:
    """The client calls of one Nomi record type: create, find by ``source_id``, attach."""

    create: Callable[[Any, str], Any]
    find_all: Callable[[str], list[Any]]
    upload: Callable[[str, str, bytes, str, str], Attachment]


def record_api(nomi: NomiClient, record_type: str) -> RecordApi:
    """The calls that create, recover and attach to a record of ``record_type``."""
    if record_type == AttemptStep.SALES_INVOICE:
        return RecordApi(
            nomi.create_sales_invoice,
            nomi.find_sales_invoices_by_source_id,
            nomi.upload_sales_invoice_attachment,
        )
    if record_type == AttemptStep.SUPPLIER_CREDIT_NOTE:
        return RecordApi(
            nomi.create_supplier_credit_note,
            nomi.find_supplier_credit_notes_by_source_id,
            nomi.upload_supplier_credit_note_attachment,
        )
    if record_type == AttemptStep.CUSTOMER_CREDIT_NOTE:
        return RecordApi(
            nomi.create_customer_credit_note,
            nomi.find_customer_credit_notes_by_source_id,
            nomi.upload_customer_credit_note_attachment,
        )
    return RecordApi(
        nomi.create_expense, nomi.find_expenses_by_source_id, nomi.upload_expense_attachment
    )


def live_record(api: RecordApi, sid: str) -> Any | None:
    """The newest record with ``source_id`` that is not voided (a voided one was corrected)."""
    return next((r for r in api.find_all(sid) if not r.voided), None)


def credited(run: ItemRun) -> str | None:
    """The Nomi id of the record a credit note credits (``credits_external_id``), or None.

    The credited item must be of the same kind: published, its record id is returned; still to
    publish (review, ready, publishing), the credit note is held naming it; unknown, archived or
    of another kind, the credit note publishes without ``applies_to_id`` and says so in a flag.

    Raises:
        Held: The credited item is an item of the business not published yet.
    """
    item = run.item
    external_id = (item.credits_external_id or "").strip()
    if item.document_type != DocumentType.CREDIT_NOTE or not external_id:
        return None
    row = run.s.exec(
        select(Item.kind, Item.status, Item.nomi_record_id, Item.nomi_record_type).where(
            Item.business_id == item.business_id, Item.external_id == external_id
        )
    ).first()
    run.s.commit()  # no read transaction held across the Nomi calls
    wanted = record_step(item.kind)
    if row is not None and row[0] == item.kind:
        _, status, record_id, record_type = row
        if status == ItemStatus.PUBLISHED and record_id and record_type == wanted:
            return str(record_id)
        if status in (ItemStatus.REVIEW, ItemStatus.READY, ItemStatus.PUBLISHING):
            raise Held(
                f"credits item '{external_id}', which is not published yet: publish it first",
                HoldCode.CREDITED_NOT_PUBLISHED,
            )
    if row is None:
        what = "not an item of this business"
    elif row[1] == ItemStatus.ARCHIVED:
        what = "an archived item"
    elif row[0] != item.kind:
        what = f"a {row[0]} item, not a {item.kind} one"
    else:
        what = "itself a credit note"
    run.flags.append(f"credits '{external_id}', {what}: published without applies_to")
    return None


def contact(run: ItemRun, plan: Plan) -> str | None:
    """The Nomi contact id, creating the contact first when the plan says so."""
    new = plan.new_contact
    if new is None:
        return plan.resolution.contact_id
    with run.book.contact_lock(new.kind, new.name):
        found = run.book.known_contact(new.kind, new.name) or _stored_contact(
            run, new.kind, new.name
        )
        if found is None:
            create = (
                run.nomi.create_customer if new.kind == "customer" else run.nomi.create_supplier
            )
            created = run.call(AttemptStep.CONTACT, new.key, lambda: create(new.body, new.key))
            _store_contact(run, new.kind, created.id, created.name)
            found = created.id
        run.book.remember_contact(new.kind, new.name, found)
    run.progress["resolved_contact_nomi_id"] = found
    return found


def claimant(run: ItemRun) -> str | None:
    """The claimant's Nomi user id for an expense claim (looked up by email if missing)."""
    item = run.item
    if item.kind != ItemKind.EXPENSE_CLAIM:
        return None
    if item.claimant_nomi_user_id:
        return item.claimant_nomi_user_id
    email = item.claimant_email or ""
    started = time.monotonic()
    user_id = run.book.user_id(run.nomi, email) if email else None
    if user_id is None:
        run.attempt(AttemptStep.CLAIMANT, None, AttemptOutcome.HELD, started, message="not found")
        raise Held(f"claimant '{email}' is not a user of the Nomi organisation")
    return user_id


def record(
    run: ItemRun, plan: Plan, contact_id: str | None, user_id: str | None
) -> tuple[str, bool]:
    """Create the item's Nomi record once; returns (record id, resumed an earlier one).

    After an attempt under the same key (a crash, a lost answer) the record is first looked up by
    ``source_id`` with the lookup of its own type; voided records are ignored.
    """
    item = run.item
    if item.nomi_record_id:
        return item.nomi_record_id, True
    step, key = plan.record_step, plan.record_key
    api = record_api(run.nomi, plan.record_type)
    if _tried_before(run, key):
        started = time.monotonic()
        found = live_record(api, source_id(item))
        if found is not None:
            run.attempt(step, key, AttemptOutcome.RECOVERED, started, record_id=found.id)
            _save_record(run, found.id, step)
            return str(found.id), True
    body: RecordCreate = plan.body_for(contact_id, user_id)
    created_id = str(run.call(step, key, lambda: api.create(body, key)).id)
    _save_record(run, created_id, step)
    return created_id, False


def image(run: ItemRun, plan: Plan, record_id: str) -> tuple[bool, str | None]:
    """Upload the document image; a refusal flags the item instead of failing it."""
    item = run.item
    if not plan.resolution.attach_image or item.image_path is None:
        return False, None
    if item.image_published:
        return True, None
    path = Path(item.image_path)
    if not path.is_file():
        return False, f"image file not found: {path.name}"
    content = path.read_bytes()
    run.save()  # the record id is durable before a second write depends on it
    key, name = plan.attachment_key, plan.attachment_name
    kind = item.image_content_type or "application/octet-stream"
    upload = record_api(run.nomi, plan.record_type).upload
    try:
        run.call(AttemptStep.ATTACHMENT, key, lambda: upload(record_id, name, content, kind, key))
    except RejectedError as exc:
        error = f"{error_code(exc)}: {exc.detail or exc.message}"
        run.progress["image_error"] = error
        return False, error
    run.save(image_published=True)
    return True, None


def payment(run: ItemRun, plan: Plan, record_id: str, resumed: bool) -> bool:
    """Record the payment of a paid sales invoice into its linked bank account."""
    body = plan.payment
    if body is None:
        return False
    if run.item.payment_recorded:
        return True
    if resumed:
        invoices = run.nomi.find_sales_invoices_by_source_id(source_id(run.item))
        invoice = next((i for i in invoices if i.id == record_id), None)
        if invoice is not None and invoice.payments:
            run.progress["payment_recorded"] = True
            return True
    key = plan.payment_key
    run.save()  # the invoice id is durable before the payment depends on it
    try:
        run.call(
            AttemptStep.PAYMENT,
            key,
            lambda: run.nomi.add_sales_invoice_payment(record_id, body, key),
        )
    except RejectedError as exc:
        run.flags.append(f"payment refused: {error_code(exc)}: {exc.detail or exc.message}")
        return False
    run.progress["payment_recorded"] = True
    return True


def _tried_before(run: ItemRun, key: str) -> bool:
    """True when history shows an attempt (or a recovery) under this record key."""
    if run.book.tried is not None:
        return run.item.id in run.book.tried
    found = run.s.exec(
        select(PublishAttempt.id)
        .where(PublishAttempt.item_id == run.item.id, PublishAttempt.idempotency_key == key)
        .limit(1)
    ).first()
    run.s.commit()  # don't hold a connection (and a read snapshot) across the Nomi call
    return found is not None


def _save_record(run: ItemRun, record_id: str, step: str) -> None:
    """Note the record id (saved before any later write of the item, or with its end)."""
    run.progress.update(nomi_record_id=record_id, nomi_record_type=step)


def _stored_contact(run: ItemRun, kind: str, name: str) -> str | None:
    """An active mirrored contact with this normalised name (created by a peer meanwhile)."""
    table: type[Supplier] | type[Customer] = Customer if kind == "customer" else Supplier
    key = normalise_name(name)
    if not key:  # nothing to match on: never another contact's row
        return None
    row = run.s.exec(
        select(table.nomi_id).where(
            table.connection_id == run.book.connection_id,
            table.name_normalised == key,
            table.status == "ACTIVE",
        )
    ).first()
    return row


def _store_contact(run: ItemRun, kind: str, nomi_id: str, name: str) -> None:
    """Mirror a contact we created so the rest of the run (and reassessment) finds it."""
    table: type[Supplier] | type[Customer] = Customer if kind == "customer" else Supplier
    s = run.s
    s.commit()
    s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    exists = s.exec(
        select(table.id).where(
            table.connection_id == run.book.connection_id, table.nomi_id == nomi_id
        )
    ).first()
    if exists is None:
        s.add(
            table(
                connection_id=run.book.connection_id,
                nomi_id=nomi_id,
                name=name,
                name_normalised=normalise_name(name),
                currency=run.item.currency,
            )
        )
    s.commit()
