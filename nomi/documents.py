"""Nomi's documents on `NomiSession`: expenses, sales invoices and credit notes, read and written.

`NomiClient` inherits these methods; each kind's methods are one line over the shared ones
(`create`, `void`, `upload_attachment` and the lookups by id and by ``source_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from nomi.errors import ProblemCode, RejectedError
from nomi.models import (
    Attachment,
    CustomerCreditNote,
    CustomerCreditNoteCreate,
    Expense,
    ExpenseCreate,
    Payment,
    PaymentCreate,
    SalesInvoice,
    SalesInvoiceCreate,
    SupplierCreditNote,
    SupplierCreditNoteCreate,
)
from nomi.session import API, NomiSession, records_of, unwrap

M = TypeVar("M", bound=BaseModel)
EXPENSES = "/expenses"
SALES_INVOICES = "/sales-invoices"
SUPPLIER_CREDIT_NOTES = "/supplier-credit-notes"
CUSTOMER_CREDIT_NOTES = "/customer-credit-notes"


class NomiDocuments(NomiSession):
    """The document endpoints of one Nomi organisation (see `NomiClient` for the arguments)."""

    # ---- reads -------------------------------------------------------------------------------

    def find_expense_by_source_id(self, source_id: str) -> Expense | None:
        """The newest expense created for ``source_id`` (voided or not), or None.

        After a lost response this says whether the write landed; ``.voided`` tells a record
        someone voided since. `find_expenses_by_source_id` gives every one.
        """
        return _newest(self.find_expenses_by_source_id(source_id))

    def find_expenses_by_source_id(self, source_id: str) -> list[Expense]:
        """Every expense with ``source_id``, newest first, voided ones included."""
        return self._find_all(EXPENSES, Expense, source_id)

    def find_sales_invoice_by_source_id(self, source_id: str) -> SalesInvoice | None:
        """The newest sales invoice created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_sales_invoices_by_source_id(source_id))

    def find_sales_invoices_by_source_id(self, source_id: str) -> list[SalesInvoice]:
        """Every sales invoice with ``source_id``, newest first, voided ones included."""
        return self._find_all(SALES_INVOICES, SalesInvoice, source_id)

    def find_supplier_credit_note_by_source_id(self, source_id: str) -> SupplierCreditNote | None:
        """The newest supplier credit note created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_supplier_credit_notes_by_source_id(source_id))

    def find_supplier_credit_notes_by_source_id(self, source_id: str) -> list[SupplierCreditNote]:
        """Every supplier credit note with ``source_id``, newest first, voided ones included."""
        return self._find_all(SUPPLIER_CREDIT_NOTES, SupplierCreditNote, source_id)

    def find_customer_credit_note_by_source_id(self, source_id: str) -> CustomerCreditNote | None:
        """The newest customer credit note created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_customer_credit_notes_by_source_id(source_id))

    def find_customer_credit_notes_by_source_id(self, source_id: str) -> list[CustomerCreditNote]:
        """Every customer credit note with ``source_id``, newest first, voided ones included."""
        return self._find_all(CUSTOMER_CREDIT_NOTES, CustomerCreditNote, source_id)

    def get_expense(self, expense_id: str) -> Expense:
        """One expense by id (`RejectedError` ``not_found`` when there is none)."""
        return self._get(EXPENSES, Expense, expense_id)

    def get_sales_invoice(self, invoice_id: str) -> SalesInvoice:
        """One sales invoice by id."""
        return self._get(SALES_INVOICES, SalesInvoice, invoice_id)

    def get_supplier_credit_note(self, credit_note_id: str) -> SupplierCreditNote:
        """One supplier credit note by id."""
        return self._get(SUPPLIER_CREDIT_NOTES, SupplierCreditNote, credit_note_id)

    def get_customer_credit_note(self, credit_note_id: str) -> CustomerCreditNote:
        """One customer credit note by id."""
        return self._get(CUSTOMER_CREDIT_NOTES, CustomerCreditNote, credit_note_id)

    # ---- writes ------------------------------------------------------------------------------

    def create_expense(self, expense: ExpenseCreate, idempotency_key: str) -> Expense:
        """Create an expense (see `create`)."""
        return self.create(EXPENSES, expense, Expense, idempotency_key)

    def create_sales_invoice(
        self, invoice: SalesInvoiceCreate, idempotency_key: str
    ) -> SalesInvoice:
        """Create a sales invoice (see `create`)."""
        return self.create(SALES_INVOICES, invoice, SalesInvoice, idempotency_key)

    def create_supplier_credit_note(
        self, credit_note: SupplierCreditNoteCreate, idempotency_key: str
    ) -> SupplierCreditNote:
        """Create a supplier credit note (see `create`)."""
        return self.create(SUPPLIER_CREDIT_NOTES, credit_note, SupplierCreditNote, idempotency_key)

    def create_customer_credit_note(
        self, credit_note: CustomerCreditNoteCreate, idempotency_key: str
    ) -> CustomerCreditNote:
        """Create a customer credit note (see `create`)."""
        return self.create(CUSTOMER_CREDIT_NOTES, credit_note, CustomerCreditNote, idempotency_key)

    def void_expense(self, expense_id: str, idempotency_key: str) -> Expense:
        """Void an expense (see `void`)."""
        return self.void(EXPENSES, Expense, expense_id, idempotency_key)

    def void_sales_invoice(self, invoice_id: str, idempotency_key: str) -> SalesInvoice:
        """Void a sales invoice (see `void`; one with payments is ``has_payments``)."""
        return self.void(SALES_INVOICES, SalesInvoice, invoice_id, idempotency_key)

    def void_supplier_credit_note(
        self, credit_note_id: str, idempotency_key: str
    ) -> SupplierCreditNote:
        """Void a supplier credit note (see `void`)."""
        return self.void(SUPPLIER_CREDIT_NOTES, SupplierCreditNote, credit_note_id, idempotency_key)

    def void_customer_credit_note(
        self, credit_note_id: str, idempotency_key: str
    ) -> CustomerCreditNote:
        """Void a customer credit note (see `void`)."""
        return self.void(CUSTOMER_CREDIT_NOTES, CustomerCreditNote, credit_note_id, idempotency_key)

    def add_sales_invoice_payment(
        self, invoice_id: str, payment: PaymentCreate, idempotency_key: str
    ) -> Payment:
        """Record a payment of a sales invoice (see `create`)."""
        path = f"{_record(SALES_INVOICES, invoice_id)}/payments"
        return self.create(path, payment, Payment, idempotency_key)

    def upload_expense_attachment(
        self,
        expense_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to an expense (the same filename replaces it); see `upload_attachment`."""
        parent = _record(EXPENSES, expense_id)
        return self.upload_attachment(parent, filename, content, content_type, idempotency_key)

    def upload_sales_invoice_attachment(
        self,
        invoice_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a sales invoice; see `upload_attachment`."""
        parent = _record(SALES_INVOICES, invoice_id)
        return self.upload_attachment(parent, filename, content, content_type, idempotency_key)

    def upload_supplier_credit_note_attachment(
        self,
        credit_note_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a supplier credit note; see `upload_attachment`."""
        parent = _record(SUPPLIER_CREDIT_NOTES, credit_note_id)
        return self.upload_attachment(parent, filename, content, content_type, idempotency_key)

    def upload_customer_credit_note_attachment(
        self,
        credit_note_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a customer credit note; see `upload_attachment`."""
        parent = _record(CUSTOMER_CREDIT_NOTES, credit_note_id)
        return self.upload_attachment(parent, filename, content, content_type, idempotency_key)

    # ---- what every kind shares ----------------------------------------------------------------

    def create(self, path: str, body: BaseModel, model: type[M], idempotency_key: str) -> M:
        """POST one record with an ``Idempotency-Key``; retried safely with the same key.

        Args:
            path: Collection path under ``/api/v1``.
            body: The request model.
            model: The model of the created record.
            idempotency_key: Stable for this item, generation and step (Nomi replays it 24 h).

        Returns:
            The created (or replayed) record.

        Raises:
            RejectedError: Nomi refused the record (codes and field errors kept).
            OutcomeUnknownError: The write may have landed; look it up by ``source_id``.
            ConnectionLostError, DailyLimitError, TransientError: See `nomi.errors`.
        """
        payload = body.model_dump(mode="json", exclude_none=True)
        response = self._request("POST", API + path, json=payload, idempotency_key=idempotency_key)
        return model.model_validate(unwrap(response.json()))

    def void(self, path: str, model: type[M], record_id: str, idempotency_key: str) -> M:
        """``POST {path}/{id}/void`` with an ``Idempotency-Key``; returns the voided record.

        Voiding is made idempotent end to end: the same key replays, and a record already voided
        (Nomi's ``already_voided``, e.g. after the key expired) is fetched and returned as is.

        Raises:
            RejectedError: ``period_locked`` (dated inside the lock date), ``has_payments`` (an
                invoice with payments), ``not_found``, and the like.
            OutcomeUnknownError: The void may have landed; call again with the same key.
            ConnectionLostError, DailyLimitError, TransientError: See `nomi.errors`.
        """
        target = f"{API}{_record(path, record_id)}/void"
        try:
            response = self._request("POST", target, idempotency_key=idempotency_key)
        except RejectedError as exc:
            if not exc.has(ProblemCode.ALREADY_VOIDED):
                raise
            return self._get(path, model, record_id)
        return model.model_validate(unwrap(response.json()))

    def upload_attachment(
        self,
        parent_path: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """PUT raw bytes as ``{parent_path}/attachments/{filename}``.

        Raises:
            RejectedError: Too large (413), wrong type (415) or otherwise refused.
            OutcomeUnknownError: As for `create`, and the other errors too.
        """
        path = f"{API}{parent_path}/attachments/{quote(filename, safe='')}"
        response = self._request(
            "PUT",
            path,
            content=content,
            headers={"Content-Type": content_type},
            idempotency_key=idempotency_key,
        )
        data = unwrap(response.json()) if response.content else {}
        if isinstance(data, dict):
            data = {"filename": filename, "content_type": content_type, **data}
        return Attachment.model_validate(data)

    def _find_all(self, path: str, model: type[M], source_id: str) -> list[M]:
        """Every record of a collection with ``source_id``, newest first."""
        rows = records_of(self._request("GET", API + path, params={"source_id": source_id}).json())
        # Filter again: a server that ignored the query must not hand back someone else's record.
        matches = [model.model_validate(r) for r in rows if r.get("source_id") == source_id]
        # Newest first whatever order the server used (stable: ties keep the server's order).
        return sorted(matches, key=_created_key, reverse=True)

    def _get(self, path: str, model: type[M], record_id: str) -> M:
        """One record of a collection by id."""
        return model.model_validate(
            unwrap(self._request("GET", API + _record(path, record_id)).json())
        )


def _record(collection: str, record_id: str) -> str:
    """The path of one record of a collection (its id quoted)."""
    return f"{collection}/{quote(record_id, safe='')}"


def _created_key(record: BaseModel) -> float:
    created = getattr(record, "created_at", None)
    return created.timestamp() if isinstance(created, datetime) else float("-inf")


def _newest(records: list[M]) -> M | None:
    return records[0] if records else None
