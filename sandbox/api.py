"""The tenant-scoped resources under ``/api/v1`` and ``/connections``."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sandbox.clock import iso, parse_iso
from sandbox.problems import ProblemError
from sandbox.schemas import Attachment as AttachmentOut
from sandbox.schemas import (
    BankAccount,
    Category,
    Connection,
    Contact,
    ContactCreate,
    ContactUpdate,
    Expense,
    ExpenseCreate,
    Page,
    Payment,
    PaymentCreate,
    SalesInvoice,
    SalesInvoiceCreate,
    TaxRate,
    User,
    problem_responses,
)
from sandbox.state import SandboxState
from sandbox.tokens import Grant
from sandbox.validation import Validator, money

bearer = HTTPBearer(auto_error=False, description="An access token from /oauth/token")
ATTACHMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/heic")
BINARY = {"schema": {"type": "string", "format": "binary"}}


@dataclass
class Ctx:
    """An authenticated request for one tenant."""

    state: SandboxState
    grant: Grant
    tenant: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        """The organisation the request acts for."""
        return str(self.tenant["id"])

    def now(self) -> str:
        """The sandbox time as an ISO timestamp."""
        return iso(self.state.clock.time())


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _grant(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Grant:
    auth = f"Bearer {credentials.credentials}" if credentials else None
    return _state(request).tokens.authenticate(auth)


def _ctx(scope: str) -> Any:
    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        nomi_tenant_id: str | None = Header(default=None, alias="Nomi-Tenant-Id"),
    ) -> Ctx:
        state, grant = _state(request), _grant(request, credentials)
        if not nomi_tenant_id or nomi_tenant_id not in grant.tenant_ids:
            raise ProblemError(
                403,
                "The Nomi-Tenant-Id is missing or not granted to this token",
                code="tenant_not_granted",
            )
        if scope not in grant.scopes:
            raise ProblemError(403, f"The token lacks the scope {scope}", code="insufficient_scope")
        tenant = state.store.tenant(nomi_tenant_id)
        if tenant is None:
            raise ProblemError(403, "Unknown organisation", code="tenant_not_granted")
        return Ctx(state, grant, tenant)

    return Depends(dependency)


CONTACTS, SETTINGS = _ctx("contacts.read"), _ctx("settings.read")
EXPENSES, SALES = _ctx("expenses.write"), _ctx("sales.write")
COMMON = problem_responses(400, 401, 403, 404, 409, 422, 429)
router = APIRouter(prefix="/api/v1", responses=COMMON)
connections = APIRouter(responses=problem_responses(401, 403, 404, 429))


def _connection_id(grant: Grant, tenant_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(grant.id), tenant_id))


@connections.get("/connections", response_model=list[Connection], tags=["connections"])
async def list_connections(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> list[dict[str, Any]]:
    """The organisations this access token may act for."""
    state, grant = _state(request), _grant(request, credentials)
    out = []
    for tid in grant.tenant_ids:
        tenant = state.store.tenant(tid)
        if tenant is not None:
            out.append(
                {
                    "id": _connection_id(grant, tid),
                    "tenantId": tid,
                    "tenantType": "ORGANISATION",
                    "tenantName": tenant["name"],
                    "authEventId": grant.auth_event_id,
                    "createdDateUtc": iso(grant.created_at),
                    "updatedDateUtc": iso(grant.created_at),
                }
            )
    return out


@connections.delete("/connections/{connection_id}", status_code=204, tags=["connections"])
async def delete_connection(
    connection_id: str,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Response:
    """Disconnect one organisation from this consent."""
    state, grant = _state(request), _grant(request, credentials)
    remaining = [t for t in grant.tenant_ids if _connection_id(grant, t) != connection_id]
    if len(remaining) == len(grant.tenant_ids):
        raise ProblemError(404, "No such connection", code="not_found")
    state.tokens.set_tenants(grant.id, remaining)
    return Response(status_code=204)


# lists -------------------------------------------------------------------------------------------
def _page(
    ctx: Ctx,
    kind: str,
    path: str,
    page: int,
    page_size: int,
    updated_since: str | None,
    include_archived: bool,
) -> dict[str, Any]:
    since = None
    if updated_since:
        try:
            since = iso(parse_iso(updated_since))
        except ValueError as exc:
            raise ProblemError(
                400,
                "updated_since is not an ISO-8601 timestamp",
                code="invalid_parameter",
                field="updated_since",
            ) from exc
    server_time = ctx.now()
    items, total = ctx.state.store.page(
        kind,
        ctx.tenant_id,
        updated_since=since,
        include_archived=include_archived,
        page=page,
        page_size=page_size,
    )
    drift = ctx.state.faults.match(
        "page_drift", tenant_ids=[ctx.tenant_id], method="GET", path=path
    )
    if drift is not None and items:
        for doc in items[: int(drift.params.get("count", 1))]:
            changed = {**doc, "updated_at": ctx.now(), "version": doc["version"] + 1}
            ctx.state.store.put(
                kind, ctx.tenant_id, changed, api=ctx.state.store.is_api_created(doc["id"])
            )
    return {
        "items": items,
        "server_time": server_time,
        "pagination": {
            "page": page,
            "page_size": page_size,
            "item_count": total,
            "page_count": (total + page_size - 1) // page_size,
        },
    }


def _list_route(path: str, kind: str, model: Any, ctx_dep: Any) -> None:
    async def handler(
        ctx: Ctx = ctx_dep,
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(100, ge=1, le=1000),
        updated_since: str | None = Query(
            None, description="ISO-8601; records with updated_at >= it"
        ),
        include_archived: bool = Query(False),
    ) -> dict[str, Any]:
        return _page(ctx, kind, f"/api/v1{path}", page, page_size, updated_since, include_archived)

    handler.__name__ = f"list_{kind}s"
    handler.__doc__ = f"List {path.strip('/')} ordered by (updated_at, id)."
    router.add_api_route(path, handler, methods=["GET"], response_model=Page[model], tags=["lists"])


_list_route("/suppliers", "supplier", Contact, CONTACTS)
_list_route("/customers", "customer", Contact, CONTACTS)
_list_route("/categories", "category", Category, SETTINGS)
_list_route("/tax-rates", "tax_rate", TaxRate, SETTINGS)
_list_route("/bank-accounts", "bank_account", BankAccount, SETTINGS)
_list_route("/users", "user", User, SETTINGS)


# contacts ----------------------------------------------------------------------------------------
def _contact_routes(path: str, kind: str, ctx_dep: Any) -> None:
    async def create(body: ContactCreate, ctx: Ctx = ctx_dep) -> Response:
        validator = Validator(ctx.state.store, ctx.tenant, Decimal(0))
        errors: list[dict[str, Any]] = []
        validator._ref(errors, "tax_rate", "default_tax_rate_id", body.default_tax_rate_id)
        validator._ref(errors, "category", "default_category_id", body.default_category_id)
        Validator._raise(errors)
        doc = {
            "id": str(uuid.uuid4()),
            **body.model_dump(),
            "status": "ACTIVE",
            "updated_at": ctx.now(),
            "version": 1,
        }
        ctx.state.store.put(kind, ctx.tenant_id, doc, api=True)
        return _json(201, Contact.model_validate(doc))

    async def update(object_id: str, body: ContactUpdate, ctx: Ctx = ctx_dep) -> Contact:
        doc = ctx.state.store.get(kind, ctx.tenant_id, object_id)
        if doc is None:
            raise ProblemError(404, f"No {kind} {object_id}", code="not_found")
        if body.version != doc["version"]:
            raise ProblemError(
                409,
                f"Version {body.version} is stale; current is {doc['version']}",
                code="stale_version",
                field="version",
            )
        new = {
            **doc,
            **body.model_dump(exclude={"version"}),
            "updated_at": ctx.now(),
            "version": doc["version"] + 1,
        }
        ctx.state.store.put(kind, ctx.tenant_id, new, api=ctx.state.store.is_api_created(object_id))
        return Contact.model_validate(new)

    async def get(object_id: str, ctx: Ctx = ctx_dep) -> Contact:
        doc = ctx.state.store.get(kind, ctx.tenant_id, object_id)
        if doc is None:
            raise ProblemError(404, f"No {kind} {object_id}", code="not_found")
        return Contact.model_validate(doc)

    for fn, verb in ((create, "create"), (update, "update"), (get, "get")):
        fn.__name__ = f"{verb}_{kind}"
        fn.__doc__ = f"{verb.capitalize()} a {kind}."
    router.add_api_route(
        path, create, methods=["POST"], status_code=201, response_model=Contact, tags=["contacts"]
    )
    router.add_api_route(
        f"{path}/{{object_id}}", get, methods=["GET"], response_model=Contact, tags=["contacts"]
    )
    router.add_api_route(
        f"{path}/{{object_id}}", update, methods=["PUT"], response_model=Contact, tags=["contacts"]
    )


_contact_routes("/suppliers", "supplier", EXPENSES)
_contact_routes("/customers", "customer", SALES)


def _json(status: int, model: Any) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


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
    return _json(201, Expense.model_validate(doc))


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
    return _json(201, SalesInvoice.model_validate(doc))


def _record_routes(path: str, kind: str, model: Any, ctx_dep: Any) -> None:
    async def find(
        ctx: Ctx = ctx_dep,
        source_id: str | None = Query(None, description="Find what a lost response created"),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        if source_id is None:
            return _page(ctx, kind, f"/api/v1{path}", page, page_size, None, True)
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
    return _json(200 if existing else 201, AttachmentOut.model_validate(doc))


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
    return _json(201, Payment.model_validate(doc))
