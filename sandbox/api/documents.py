"""Documents under ``/api/v1``: expenses, sales invoices and credit notes; creation, lookup,
attachments, payments and voiding; and the organisation itself."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response

from sandbox.api.checks import money
from sandbox.api.currency import base_amount, rate_text
from sandbox.api.lists import list_page
from sandbox.api.problems import ProblemError
from sandbox.api.schemas import Attachment as AttachmentOut
from sandbox.api.schemas import (
    CustomerCreditNote,
    CustomerCreditNoteCreate,
    Expense,
    ExpenseCreate,
    Organisation,
    Page,
    Payment,
    PaymentCreate,
    SalesInvoice,
    SalesInvoiceCreate,
    SupplierCreditNote,
    SupplierCreditNoteCreate,
    problem_responses,
)
from sandbox.api.validation import Validator
from sandbox.auth.context import COMMON, EXPENSES, SALES, SETTINGS, Ctx, json_response

ATTACHMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/heic")
BINARY = {"schema": {"type": "string", "format": "binary"}}
router = APIRouter(prefix="/api/v1", responses=COMMON)


def _validator(ctx: Ctx, tolerance: bool = True) -> Validator:
    tol = Decimal(ctx.state.settings.tax_tolerance) if tolerance else Decimal(0)
    return Validator(ctx.state.store, ctx.tenant, tol)


def _document(ctx: Ctx, body: Any, rate: Decimal, **fields: Any) -> dict[str, Any]:
    """A new document: the request's fields, its currency fields, status ACTIVE and version 1."""
    now, total = ctx.now(), money(body.total)
    return {
        "id": str(uuid.uuid4()),
        **body.model_dump(mode="json"),
        "total": str(total),
        "exchange_rate": rate_text(rate),
        "base_total": str(base_amount(total, rate)),
        "status": "ACTIVE",
        "voided_at": None,
        "attachments": [],
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **fields,
    }


def current_shape(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document in today's shape (records kept in a file before currencies and voids)."""
    if kind not in ("expense", "sales_invoice", "supplier_credit_note", "customer_credit_note"):
        return doc
    doc.setdefault("exchange_rate", "1.000000")
    doc.setdefault("base_total", doc["total"])
    doc.setdefault("voided_at", None)
    doc.setdefault("lines", [])
    if doc.get("status") == "APPROVED":
        doc["status"] = "ACTIVE"
    return doc


def _net_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **line,
            "net_amount": str(money(line["net_amount"])),
            "tax_amount": str(money(line["tax_amount"])),
        }
        for line in lines
    ]


def _gross_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**line, "amount": str(money(line["amount"])), "tax_amount": str(money(line["tax_amount"]))}
        for line in lines
    ]


def _tax_sum(lines: list[dict[str, Any]]) -> str:
    return str(sum((money(line["tax_amount"]) for line in lines), Decimal(0)))


# the organisation -------------------------------------------------------------------------------
@router.get("/organisation", response_model=Organisation, tags=["organisation"])
async def get_organisation(ctx: Ctx = SETTINGS) -> Organisation:
    """The organisation the request acts for: base currency, lock date, VAT registration."""
    tenant = ctx.tenant
    return Organisation(
        id=tenant["id"],
        name=tenant["name"],
        base_currency=tenant["currency"],
        lock_date=tenant["lock_date"],
        vat_registered=tenant["vat_registered"],
        updated_at=tenant["updated_at"],
    )


# documents --------------------------------------------------------------------------------------
@router.post("/expenses", status_code=201, response_model=Expense, tags=["expenses"])
async def create_expense(body: ExpenseCreate, ctx: Ctx = EXPENSES) -> Response:
    """Create an expense: the single form (category, tax rate, tax amount) or ``lines[]``."""
    rate = _validator(ctx).expense(body)
    doc = _document(ctx, body, rate)
    if body.lines is not None:
        doc.update(lines=_net_lines(doc["lines"]), tax_amount=_tax_sum(doc["lines"]))
    else:
        doc.update(lines=[], tax_amount=str(money(body.tax_amount)))
    ctx.state.store.put("expense", ctx.tenant_id, doc, api=True)
    return json_response(201, Expense.model_validate(doc))


@router.post("/sales-invoices", status_code=201, response_model=SalesInvoice, tags=["sales"])
async def create_sales_invoice(body: SalesInvoiceCreate, ctx: Ctx = SALES) -> Response:
    """Create a sales invoice (status AUTHORISED); each line has its category and tax rate."""
    rate = _validator(ctx).sales_invoice(body)
    total = str(money(body.total))
    doc = _document(
        ctx, body, rate, amount_paid="0.00", amount_due=total, status="AUTHORISED", payments=[]
    )
    doc["lines"] = _gross_lines(doc["lines"])
    ctx.state.store.put("sales_invoice", ctx.tenant_id, doc, api=True)
    return json_response(201, SalesInvoice.model_validate(doc))


@router.post(
    "/supplier-credit-notes",
    status_code=201,
    response_model=SupplierCreditNote,
    tags=["supplier_credit_note"],
)
async def create_supplier_credit_note(
    body: SupplierCreditNoteCreate, ctx: Ctx = EXPENSES
) -> Response:
    """Create a supplier credit note (lines as on an expense; optionally crediting an expense)."""
    rate = _validator(ctx).supplier_credit_note(body)
    doc = _document(ctx, body, rate)
    doc.update(lines=_net_lines(doc["lines"]), tax_amount=_tax_sum(doc["lines"]))
    ctx.state.store.put("supplier_credit_note", ctx.tenant_id, doc, api=True)
    return json_response(201, SupplierCreditNote.model_validate(doc))


@router.post(
    "/customer-credit-notes",
    status_code=201,
    response_model=CustomerCreditNote,
    tags=["customer_credit_note"],
)
async def create_customer_credit_note(body: CustomerCreditNoteCreate, ctx: Ctx = SALES) -> Response:
    """Create a customer credit note (lines as on an invoice; optionally crediting one)."""
    rate = _validator(ctx).customer_credit_note(body)
    doc = _document(ctx, body, rate)
    doc.update(lines=_gross_lines(doc["lines"]), tax_amount=_tax_sum(doc["lines"]))
    ctx.state.store.put("customer_credit_note", ctx.tenant_id, doc, api=True)
    return json_response(201, CustomerCreditNote.model_validate(doc))


def _record_routes(path: str, kind: str, model: Any, ctx_dep: Any) -> None:
    async def find(
        ctx: Ctx = ctx_dep,
        source_id: str | None = Query(None, description="Find what a lost response created"),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        if source_id is None:
            listed = list_page(ctx, kind, f"/api/v1{path}", page, page_size, None, True)
            listed["items"] = [current_shape(kind, d) for d in listed["items"]]
            return listed
        items = [
            current_shape(kind, d)
            for d in ctx.state.store.find(kind, ctx.tenant_id, source_id=source_id)
        ]
        return {
            "items": items,
            "server_time": ctx.now(),
            "pagination": {
                "page": 1,
                "page_size": max(1, len(items)),
                "item_count": len(items),
                "page_count": 1 if items else 0,
            },
        }

    async def get(object_id: str, ctx: Ctx = ctx_dep) -> Any:
        doc = ctx.state.store.get(kind, ctx.tenant_id, object_id)
        if doc is None:
            raise ProblemError(404, f"No {kind.replace('_', ' ')} {object_id}", code="not_found")
        return current_shape(kind, doc)

    async def attach(
        object_id: str,
        filename: str,
        request: Request,
        ctx: Ctx = ctx_dep,
        content_type: str = Header("application/octet-stream"),
    ) -> Response:
        return await _attach(ctx, kind, path, object_id, filename, content_type, request)

    async def void(object_id: str, ctx: Ctx = ctx_dep) -> Response:
        store = ctx.state.store
        doc = store.get(kind, ctx.tenant_id, object_id)
        if doc is None:
            raise ProblemError(404, f"No {kind.replace('_', ' ')} {object_id}", code="not_found")
        doc = current_shape(kind, doc)
        _validator(ctx, tolerance=False).void(kind, doc)
        now = ctx.now()
        doc.update(status="VOIDED", voided_at=now, updated_at=now, version=doc["version"] + 1)
        if kind == "sales_invoice":
            doc["amount_due"] = "0.00"
        store.put(kind, ctx.tenant_id, doc, api=True)
        return json_response(200, model.model_validate(doc))

    find.__name__, get.__name__, attach.__name__, void.__name__ = (
        f"find_{kind}s",
        f"get_{kind}",
        f"attach_to_{kind}",
        f"void_{kind}",
    )
    find.__doc__ = (
        f"List {kind.replace('_', ' ')}s, or find every one with a source_id (newest first, "
        "voided ones included)."
    )
    void.__doc__ = (
        f"Void a {kind.replace('_', ' ')} (status VOIDED). Again with the same Idempotency-Key "
        "replays; otherwise a voided one is 409 already_voided."
    )
    get.__doc__ = f"Get one {kind.replace('_', ' ')}."
    attach.__doc__ = (
        "Attach a file (raw bytes: pdf, png, jpeg or heic; at most 10 MB); same name replaces."
    )
    router.add_api_route(path, find, methods=["GET"], response_model=Page[model], tags=[kind])
    router.add_api_route(
        f"{path}/{{object_id}}", get, methods=["GET"], response_model=model, tags=[kind]
    )
    router.add_api_route(
        f"{path}/{{object_id}}/attachments/{{filename}}",
        attach,
        methods=["PUT"],
        response_model=AttachmentOut,
        tags=[kind],
        responses={**problem_responses(413, 415, 503), 201: {"model": AttachmentOut}},
        openapi_extra={
            "requestBody": {"required": True, "content": dict.fromkeys(ATTACHMENT_TYPES, BINARY)}
        },
    )
    router.add_api_route(
        f"{path}/{{object_id}}/void", void, methods=["POST"], response_model=model, tags=[kind]
    )


async def _attach(
    ctx: Ctx,
    kind: str,
    path: str,
    object_id: str,
    filename: str,
    content_type: str,
    request: Request,
) -> Response:
    state = ctx.state
    parent = state.store.get(kind, ctx.tenant_id, object_id)
    if parent is None:
        raise ProblemError(404, f"No {kind.replace('_', ' ')} {object_id}", code="not_found")
    if object_id not in state.attachment_failed:
        full = f"/api/v1{path}/{object_id}/attachments/{filename}"
        fault = state.faults.match(
            "attachment_fail_once", tenant_ids=[ctx.tenant_id], method="PUT", path=full
        )
        if fault is not None:
            state.attachment_failed.add(object_id)
            raise ProblemError(
                int(fault.params.get("status", 503)),
                "The record is not yet available for attachments; retry shortly",
                code="not_ready",
                headers={"Retry-After": "1"},
            )
    media = content_type.split(";")[0].strip().lower()
    if media not in ATTACHMENT_TYPES:
        raise ProblemError(
            415, f"Attachments must be one of {', '.join(ATTACHMENT_TYPES)}", code="attachment_type"
        )
    content = await request.body()
    if len(content) > state.settings.max_attachment_bytes:
        raise ProblemError(413, "Attachments must be at most 10 MB", code="attachment_too_large")
    now = ctx.now()
    existing = next((a for a in parent["attachments"] if a["filename"] == filename), None)
    doc = {
        "id": existing["id"] if existing else str(uuid.uuid4()),
        "filename": filename,
        "content_type": media,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "source_id": None,
        "updated_at": now,
        "version": existing["version"] + 1 if existing else 1,
    }
    parent["attachments"] = [a for a in parent["attachments"] if a["filename"] != filename] + [doc]
    parent.update(updated_at=now, version=parent["version"] + 1)
    state.store.put(kind, ctx.tenant_id, parent, api=True)
    state.store.put(
        "attachment", ctx.tenant_id, {**doc, "parent_id": object_id, "parent_kind": kind}, api=True
    )
    return json_response(200 if existing else 201, AttachmentOut.model_validate(doc))


_record_routes("/expenses", "expense", Expense, EXPENSES)
_record_routes("/sales-invoices", "sales_invoice", SalesInvoice, SALES)
_record_routes("/supplier-credit-notes", "supplier_credit_note", SupplierCreditNote, EXPENSES)
_record_routes("/customer-credit-notes", "customer_credit_note", CustomerCreditNote, SALES)


@router.post(
    "/sales-invoices/{invoice_id}/payments",
    status_code=201,
    response_model=Payment,
    tags=["sales_invoice"],
)
async def add_payment(invoice_id: str, body: PaymentCreate, ctx: Ctx = SALES) -> Response:
    """Record a payment of a sales invoice into a bank account."""
    store = ctx.state.store
    invoice = store.get("sales_invoice", ctx.tenant_id, invoice_id)
    if invoice is None:
        raise ProblemError(404, f"No sales invoice {invoice_id}", code="not_found")
    _validator(ctx, tolerance=False).payment(invoice, body)
    now, amount = ctx.now(), money(body.amount)
    doc = {
        "id": str(uuid.uuid4()),
        "invoice_id": invoice_id,
        **body.model_dump(mode="json"),
        "amount": str(amount),
        "source_id": None,
        "updated_at": now,
        "version": 1,
    }
    paid = money(invoice["amount_paid"]) + amount
    due = money(invoice["total"]) - paid
    invoice.update(
        payments=[*invoice["payments"], doc],
        amount_paid=str(paid),
        amount_due=str(due),
        status="PAID" if due == 0 else "AUTHORISED",
        updated_at=now,
        version=invoice["version"] + 1,
    )
    store.put("sales_invoice", ctx.tenant_id, invoice, api=True)
    store.put("payment", ctx.tenant_id, doc, api=True)
    return json_response(201, Payment.model_validate(doc))
