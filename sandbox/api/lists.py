"""The reference lists and contacts under ``/api/v1``: paging, incremental reads, contact writes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query, Response

from sandbox.api.problems import ProblemError
from sandbox.api.schemas import (
    BankAccount,
    Category,
    Contact,
    ContactCreate,
    ContactUpdate,
    Page,
    TaxRate,
    User,
)
from sandbox.api.validation import Validator
from sandbox.auth.context import COMMON, CONTACTS, EXPENSES, SALES, SETTINGS, Ctx, json_response
from sandbox.clock import iso, parse_iso

router = APIRouter(prefix="/api/v1", responses=COMMON)


# lists -------------------------------------------------------------------------------------------
def list_page(
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
        return list_page(
            ctx, kind, f"/api/v1{path}", page, page_size, updated_since, include_archived
        )

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
        Validator(ctx.state.store, ctx.tenant, Decimal(0)).contact(body)
        doc = {
            "id": str(uuid.uuid4()),
            **body.model_dump(),
            "status": "ACTIVE",
            "updated_at": ctx.now(),
            "version": 1,
        }
        ctx.state.store.put(kind, ctx.tenant_id, doc, api=True)
        return json_response(201, Contact.model_validate(doc))

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
