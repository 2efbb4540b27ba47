"""Expenses and sales invoices under ``/api/v1``: creation, lookup, attachments and payments."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response

from sandbox.api.lists import list_page
from sandbox.api.problems import ProblemError
from sandbox.api.schemas import Attachment as AttachmentOut
from sandbox.api.schemas import (
    Expense,
    ExpenseCreate,
    Page,
    Payment,
    PaymentCreate,
    SalesInvoice,
    SalesInvoiceCreate,
    problem_responses,
)
from sandbox.api.validation import Validator, money
from sandbox.auth.context import COMMON, EXPENSES, SALES, Ctx, json_response

ATTACHMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/heic")
BINARY = {"schema": {"type": "string", "format": "binary"}}
router = APIRouter(prefix="/api/v1", responses=COMMON)


# expenses and sales invoices --------------------------------------------------------------------
@router.post("/expenses", status_code=201, response_model=Expense, tags=["expenses"])
async def create_expense(body: ExpenseCreate, ctx: Ctx = EXPENSES) -> Response:
    """Create an expense."""
    Validator(ctx.state.store, ctx.tenant, Decimal(ctx.state.settings.tax_tolerance)).expense(body)
    now = ctx.now()
    doc = {
        "id": str(uuid.uuid4()),
        **body.model_dump(mode="json"),
        "total": str(money(body.total)),
        "tax_amount": str(money(body.tax_amount)),
        "status": "APPROVED",
        "attachments": [],
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    ctx.state.store.put("expense", ctx.tenant_id, doc, api=True)
    return json_response(201, Expense.model_validate(doc))


@router.post("/sales-invoices", status_code=201, response_model=SalesInvoice, tags=["sales"])
async def create_sales_invoice(body: SalesInvoiceCreate, ctx: Ctx = SALES) -> Response:
    """Create a sales invoice (status AUTHORISED)."""
    Validator(ctx.state.store, ctx.tenant, Decimal(ctx.state.settings.tax_tolerance)).sales_invoice(
        body
    )
    now, total = ctx.now(), str(money(body.total))
    doc = {
        "id": str(uuid.uuid4()),
        **body.model_dump(mode="json"),
        "total": total,
        "amount_paid": "0.00",
        "amount_due": total,
        "status": "AUTHORISED",
        "payments": [],
        "attachments": [],
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    doc["lines"] = [
        {**line, "amount": str(money(line["amount"])), "tax_amount": str(money(line["tax_amount"]))}
        for line in doc["lines"]
    ]
    ctx.state.store.put("sales_invoice", ctx.tenant_id, doc, api=True, ukey=body.number)
    return json_response(201, SalesInvoice.model_validate(doc))


def _record_routes(path: str, kind: str, model: Any, ctx_dep: Any) -> None:
    async def find(
        ctx: Ctx = ctx_dep,
        source_id: str | None = Query(None, description="Find what a lost response created"),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        if source_id is None:
            return list_page(ctx, kind, f"/api/v1{path}", page, page_size, None, True)
        items = ctx.state.store.find(kind, ctx.tenant_id, source_id=source_id)
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
        return doc

    async def attach(
        object_id: str,
        filename: str,
        request: Request,
        ctx: Ctx = ctx_dep,
        content_type: str = Header("application/octet-stream"),
    ) -> Response:
        return await _attach(ctx, kind, path, object_id, filename, content_type, request)

    find.__name__, get.__name__, attach.__name__ = (
        f"find_{kind}s",
        f"get_{kind}",
        f"attach_to_{kind}",
    )
    find.__doc__ = f"List {kind.replace('_', ' ')}s, or find them by source_id."
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
    state.store.put(
        kind,
        ctx.tenant_id,
        parent,
        api=True,
        ukey=parent.get("number") if kind == "sales_invoice" else None,
    )
    state.store.put(
        "attachment", ctx.tenant_id, {**doc, "parent_id": object_id, "parent_kind": kind}, api=True
    )
    return json_response(200 if existing else 201, AttachmentOut.model_validate(doc))


_record_routes("/expenses", "expense", Expense, EXPENSES)
_record_routes("/sales-invoices", "sales_invoice", SalesInvoice, SALES)


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
    Validator(store, ctx.tenant, Decimal(0)).payment(invoice, body)
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
    store.put("sales_invoice", ctx.tenant_id, invoice, api=True, ukey=invoice["number"])
    store.put("payment", ctx.tenant_id, doc, api=True)
    return json_response(201, Payment.model_validate(doc))
