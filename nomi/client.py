"""The Nomi API client (sync httpx): typed reads and idempotent writes on `NomiSession`.

```python
with NomiClient(base_url, tenant_id, StaticTokenProvider(token)) as nomi:
    suppliers = nomi.iter_suppliers(updated_since=bookmark)
    for supplier in suppliers:
        ...
    bookmark = suppliers.server_time
```
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from nomi.auth import MAX_REFRESHES_PER_REQUEST
from nomi.errors import ProblemCode, RejectedError
from nomi.models import (
    Attachment,
    BankAccount,
    Category,
    ContactCreate,
    Customer,
    CustomerCreditNote,
    CustomerCreditNoteCreate,
    Expense,
    ExpenseCreate,
    NomiUser,
    Organisation,
    OrganisationSettings,
    Payment,
    PaymentCreate,
    SalesInvoice,
    SalesInvoiceCreate,
    Supplier,
    SupplierCreditNote,
    SupplierCreditNoteCreate,
    TaxRate,
)
from nomi.paging import ListResult
from nomi.retry import RetryPolicy
from nomi.session import API as _API
from nomi.session import NomiSession
from nomi.tokens import StaticTokenProvider, TokenProvider

__all__ = [
    "MAX_REFRESHES_PER_REQUEST",
    "NomiClient",
    "RetryPolicy",
    "StaticTokenProvider",
    "TokenProvider",
]

M = TypeVar("M", bound=BaseModel)
_MAX_PAGE_SIZE = 1000
_EXPENSES = "/expenses"
_SALES_INVOICES = "/sales-invoices"
_SUPPLIER_CREDIT_NOTES = "/supplier-credit-notes"
_CUSTOMER_CREDIT_NOTES = "/customer-credit-notes"


class NomiClient(NomiSession):
    """A client for one Nomi organisation (tenant): typed reads and idempotent writes.

    Args:
        api_base_url: Nomi's base URL, with or without the trailing ``/api/v1``.
        tenant_id: The organisation every call acts for (sent as ``Nomi-Tenant-Id``).
        tokens: Where access tokens come from.
        throttle: The tenant's shared throttle (see `nomi.throttle.throttle_for`); None disables it.
        retry: Bounds of the client's own retries.
        http: An httpx client (tests pass one on a MockTransport); one is made and owned otherwise.
    """

    # ---- reads -------------------------------------------------------------------------------

    def connections(self) -> list[Organisation]:
        """The organisations the current token may act for (``GET /connections``)."""
        body = self._request("GET", "/connections", tenant=False).json()
        rows = body if isinstance(body, list) else _items(body)
        return [Organisation.model_validate(row) for row in rows]

    def delete_connection(self, connection_id: str) -> None:
        """Disconnect one organisation from the token's consent (``DELETE /connections/{id}``).

        ``connection_id`` is the ``id`` of an entry of `connections` (not the tenant id). A
        DELETE repeats safely, so transient failures are retried like a read.

        Raises:
            RejectedError: 404 when the consent no longer holds that connection.
            ConnectionLostError, TransientError: See `nomi.errors`.
        """
        path = f"/connections/{quote(connection_id, safe='')}"
        self._request("DELETE", path, tenant=False, idempotent=True)

    def iter_suppliers(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Supplier]:
        """Stream suppliers page by page (see `iter_list`)."""
        return self.iter_list("/suppliers", Supplier, updated_since, include_archived, page_size)

    def iter_customers(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Customer]:
        """Stream customers page by page (see `iter_list`)."""
        return self.iter_list("/customers", Customer, updated_since, include_archived, page_size)

    def iter_categories(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Category]:
        """Stream the chart of accounts page by page (see `iter_list`)."""
        return self.iter_list("/categories", Category, updated_since, include_archived, page_size)

    def iter_tax_rates(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[TaxRate]:
        """Stream tax rates page by page (see `iter_list`)."""
        return self.iter_list("/tax-rates", TaxRate, updated_since, include_archived, page_size)

    def iter_bank_accounts(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[BankAccount]:
        """Stream bank accounts page by page (see `iter_list`)."""
        return self.iter_list(
            "/bank-accounts", BankAccount, updated_since, include_archived, page_size
        )

    def iter_list(
        self,
        path: str,
        model: type[M],
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[M]:
        """Stream one list endpoint.

        Args:
            path: The list path under ``/api/v1``, e.g. ``/suppliers``.
            model: The model of one record.
            updated_since: Only records with ``updated_at >= updated_since``.
            include_archived: Include ARCHIVED/DELETED records (tombstones).
            page_size: Records per page (at most 1000).

        Returns:
            A `ListResult`: iterate it once; then ``.server_time`` is the bookmark to keep.

        Raises:
            NomiError: Any failure while paging (`PaginationError` for a repeated page).
        """
        size = max(1, min(page_size, _MAX_PAGE_SIZE))
        params: dict[str, Any] = {"page_size": size}
        if updated_since is not None:
            params["updated_since"] = _iso(updated_since)
        if include_archived:
            params["include_archived"] = "true"

        def fetch(page: int) -> bytes:
            # Raw bytes: `ListResult` parses and validates the whole page in one pass.
            return self._request("GET", _API + path, params={**params, "page": page}).content

        return ListResult(model, fetch, page_size=size, max_pages=1_000_000 // size + 10)

    def list_users(self) -> list[NomiUser]:
        """Every user of the organisation (expense claimants)."""
        return list(self.iter_list("/users", NomiUser, page_size=_MAX_PAGE_SIZE))

    def get_organisation(self) -> OrganisationSettings:
        """The organisation's base currency, lock date and VAT registration (``settings.read``)."""
        body = self._request("GET", _API + "/organisation").json()
        return OrganisationSettings.model_validate(_unwrap(body))

    def find_expense_by_source_id(self, source_id: str) -> Expense | None:
        """The newest expense created for ``source_id`` (voided or not), or None.

        After a lost response this says whether the write landed; ``.voided`` tells a record
        someone voided since. `find_expenses_by_source_id` gives every one.
        """
        return _newest(self.find_expenses_by_source_id(source_id))

    def find_expenses_by_source_id(self, source_id: str) -> list[Expense]:
        """Every expense with ``source_id``, newest first, voided ones included."""
        return self._find_all(_EXPENSES, Expense, source_id)

    def find_sales_invoice_by_source_id(self, source_id: str) -> SalesInvoice | None:
        """The newest sales invoice created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_sales_invoices_by_source_id(source_id))

    def find_sales_invoices_by_source_id(self, source_id: str) -> list[SalesInvoice]:
        """Every sales invoice with ``source_id``, newest first, voided ones included."""
        return self._find_all(_SALES_INVOICES, SalesInvoice, source_id)

    def find_supplier_credit_note_by_source_id(self, source_id: str) -> SupplierCreditNote | None:
        """The newest supplier credit note created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_supplier_credit_notes_by_source_id(source_id))

    def find_supplier_credit_notes_by_source_id(self, source_id: str) -> list[SupplierCreditNote]:
        """Every supplier credit note with ``source_id``, newest first, voided ones included."""
        return self._find_all(_SUPPLIER_CREDIT_NOTES, SupplierCreditNote, source_id)

    def find_customer_credit_note_by_source_id(self, source_id: str) -> CustomerCreditNote | None:
        """The newest customer credit note created for ``source_id`` (voided or not), or None."""
        return _newest(self.find_customer_credit_notes_by_source_id(source_id))

    def find_customer_credit_notes_by_source_id(self, source_id: str) -> list[CustomerCreditNote]:
        """Every customer credit note with ``source_id``, newest first, voided ones included."""
        return self._find_all(_CUSTOMER_CREDIT_NOTES, CustomerCreditNote, source_id)

    def get_expense(self, expense_id: str) -> Expense:
        """One expense by id (`RejectedError` ``not_found`` when there is none)."""
        return self._get(_EXPENSES, Expense, expense_id)

    def get_sales_invoice(self, invoice_id: str) -> SalesInvoice:
        """One sales invoice by id."""
        return self._get(_SALES_INVOICES, SalesInvoice, invoice_id)

    def get_supplier_credit_note(self, credit_note_id: str) -> SupplierCreditNote:
        """One supplier credit note by id."""
        return self._get(_SUPPLIER_CREDIT_NOTES, SupplierCreditNote, credit_note_id)

    def get_customer_credit_note(self, credit_note_id: str) -> CustomerCreditNote:
        """One customer credit note by id."""
        return self._get(_CUSTOMER_CREDIT_NOTES, CustomerCreditNote, credit_note_id)

    # ---- writes ------------------------------------------------------------------------------

    def create_supplier(self, contact: ContactCreate, idempotency_key: str) -> Supplier:
        """Create a supplier (see `create`)."""
        return self.create("/suppliers", contact, Supplier, idempotency_key)

    def create_customer(self, contact: ContactCreate, idempotency_key: str) -> Customer:
        """Create a customer (see `create`)."""
        return self.create("/customers", contact, Customer, idempotency_key)

    def create_expense(self, expense: ExpenseCreate, idempotency_key: str) -> Expense:
        """Create an expense (see `create`)."""
        return self.create("/expenses", expense, Expense, idempotency_key)

    def create_sales_invoice(
        self, invoice: SalesInvoiceCreate, idempotency_key: str
    ) -> SalesInvoice:
        """Create a sales invoice (see `create`)."""
        return self.create("/sales-invoices", invoice, SalesInvoice, idempotency_key)

    def create_supplier_credit_note(
        self, credit_note: SupplierCreditNoteCreate, idempotency_key: str
    ) -> SupplierCreditNote:
        """Create a supplier credit note (see `create`)."""
        return self.create(_SUPPLIER_CREDIT_NOTES, credit_note, SupplierCreditNote, idempotency_key)

    def create_customer_credit_note(
        self, credit_note: CustomerCreditNoteCreate, idempotency_key: str
    ) -> CustomerCreditNote:
        """Create a customer credit note (see `create`)."""
        return self.create(_CUSTOMER_CREDIT_NOTES, credit_note, CustomerCreditNote, idempotency_key)

    def void_expense(self, expense_id: str, idempotency_key: str) -> Expense:
        """Void an expense (see `void`)."""
        return self.void(_EXPENSES, Expense, expense_id, idempotency_key)

    def void_sales_invoice(self, invoice_id: str, idempotency_key: str) -> SalesInvoice:
        """Void a sales invoice (see `void`; one with payments is ``has_payments``)."""
        return self.void(_SALES_INVOICES, SalesInvoice, invoice_id, idempotency_key)

    def void_supplier_credit_note(
        self, credit_note_id: str, idempotency_key: str
    ) -> SupplierCreditNote:
        """Void a supplier credit note (see `void`)."""
        return self.void(
            _SUPPLIER_CREDIT_NOTES, SupplierCreditNote, credit_note_id, idempotency_key
        )

    def void_customer_credit_note(
        self, credit_note_id: str, idempotency_key: str
    ) -> CustomerCreditNote:
        """Void a customer credit note (see `void`)."""
        return self.void(
            _CUSTOMER_CREDIT_NOTES, CustomerCreditNote, credit_note_id, idempotency_key
        )

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
        record = f"{path}/{quote(record_id, safe='')}"
        try:
            response = self._request(
                "POST", f"{_API}{record}/void", idempotency_key=idempotency_key
            )
        except RejectedError as exc:
            if not exc.has(ProblemCode.ALREADY_VOIDED):
                raise
            return self._get(path, model, record_id)
        return model.model_validate(_unwrap(response.json()))

    def add_sales_invoice_payment(
        self, invoice_id: str, payment: PaymentCreate, idempotency_key: str
    ) -> Payment:
        """Record a payment of a sales invoice (see `create`)."""
        path = f"/sales-invoices/{quote(invoice_id, safe='')}/payments"
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
        return self.upload_attachment(
            f"/expenses/{quote(expense_id, safe='')}",
            filename,
            content,
            content_type,
            idempotency_key,
        )

    def upload_sales_invoice_attachment(
        self,
        invoice_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a sales invoice; see `upload_attachment`."""
        return self.upload_attachment(
            f"/sales-invoices/{quote(invoice_id, safe='')}",
            filename,
            content,
            content_type,
            idempotency_key,
        )

    def upload_supplier_credit_note_attachment(
        self,
        credit_note_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a supplier credit note; see `upload_attachment`."""
        return self.upload_attachment(
            f"{_SUPPLIER_CREDIT_NOTES}/{quote(credit_note_id, safe='')}",
            filename,
            content,
            content_type,
            idempotency_key,
        )

    def upload_customer_credit_note_attachment(
        self,
        credit_note_id: str,
        filename: str,
        content: bytes,
        content_type: str,
        idempotency_key: str,
    ) -> Attachment:
        """Attach a file to a customer credit note; see `upload_attachment`."""
        return self.upload_attachment(
            f"{_CUSTOMER_CREDIT_NOTES}/{quote(credit_note_id, safe='')}",
            filename,
            content,
            content_type,
            idempotency_key,
        )

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
        response = self._request("POST", _API + path, json=payload, idempotency_key=idempotency_key)
        return model.model_validate(_unwrap(response.json()))

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
        path = f"{_API}{parent_path}/attachments/{quote(filename, safe='')}"
        response = self._request(
            "PUT",
            path,
            content=content,
            headers={"Content-Type": content_type},
            idempotency_key=idempotency_key,
        )
        data = _unwrap(response.json()) if response.content else {}
        if isinstance(data, dict):
            data = {"filename": filename, "content_type": content_type, **data}
        return Attachment.model_validate(data)

    # ---- helpers -----------------------------------------------------------------------------

    def _find_all(self, path: str, model: type[M], source_id: str) -> list[M]:
        """Every record of a collection with ``source_id``, newest first."""
        body = self._request("GET", _API + path, params={"source_id": source_id}).json()
        rows = body if isinstance(body, list) else _items(body)
        # Filter again: a server that ignored the query must not hand back someone else's record.
        matches = [model.model_validate(r) for r in rows if r.get("source_id") == source_id]
        # Newest first whatever order the server used (stable: ties keep the server's order).
        return sorted(matches, key=_created_key, reverse=True)

    def _get(self, path: str, model: type[M], record_id: str) -> M:
        """One record of a collection by id."""
        body = self._request("GET", f"{_API}{path}/{quote(record_id, safe='')}").json()
        return model.model_validate(_unwrap(body))


def _created_key(record: BaseModel) -> float:
    created = getattr(record, "created_at", None)
    return created.timestamp() if isinstance(created, datetime) else float("-inf")


def _newest(records: list[M]) -> M | None:
    return records[0] if records else None


def _items(body: Any) -> list[dict[str, Any]]:
    """The records of a list envelope."""
    if not isinstance(body, dict):
        return []
    rows = body.get("items", body.get("data", []))
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _unwrap(body: Any) -> Any:
    """A single record, whether bare or wrapped as ``{"data": {...}}``."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "id" not in body:
        return body["data"]
    return body


def _iso(moment: datetime) -> str:
    """An ISO-8601 UTC timestamp with ``Z``."""
    text = moment.isoformat()
    return text.replace("+00:00", "Z")
