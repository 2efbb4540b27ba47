"""The admin API (test mode only): faults, the clock, settings, data changes and inspection."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field, ValidationError

from sandbox.api.currency import known
from sandbox.api.problems import ProblemError
from sandbox.clock import iso
from sandbox.gateway.faults import FAULT_NAMES
from sandbox.seed import bulk_suppliers, seed_organisation, tenant_id
from sandbox.state import SandboxState

LISTS = {
    "suppliers": "supplier",
    "customers": "customer",
    "categories": "category",
    "tax-rates": "tax_rate",
    "bank-accounts": "bank_account",
    "users": "user",
}
DOCUMENTS = {
    "expenses": "expense",
    "sales_invoices": "sales_invoice",
    "supplier_credit_notes": "supplier_credit_note",
    "customer_credit_notes": "customer_credit_note",
}
KINDS = (*DOCUMENTS.values(), "supplier", "customer", "payment", "attachment")

router = APIRouter(prefix="/_admin", include_in_schema=False)


class FaultSpec(BaseModel):
    """A fault to switch on."""

    fault: str
    tenant_id: str | None = None
    method: str | None = None
    path: str | None = None
    count: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)
    after: int = Field(default=0, ge=0)
    params: dict[str, Any] = {}


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


@router.post("/faults")
async def add_fault(spec: FaultSpec, request: Request) -> dict[str, Any]:
    """Switch a fault on."""
    if spec.fault not in FAULT_NAMES:
        raise ProblemError(400, f"Unknown fault; use one of {sorted(FAULT_NAMES)}", code="invalid")
    rule = _state(request).faults.add(**spec.model_dump())
    return {"id": rule.id}


@router.get("/faults")
async def list_faults(request: Request) -> list[dict[str, Any]]:
    """The faults still armed."""
    return _state(request).faults.active()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    """Switch every fault off."""
    _state(request).faults.clear()
    return {"cleared": True}


def _clock(state: SandboxState) -> dict[str, Any]:
    return {"now": iso(state.clock.time()), "offset_seconds": state.clock.offset}


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    """The sandbox time."""
    return _clock(_state(request))


@router.post("/clock/advance")
async def advance_clock(request: Request, seconds: float = Body(embed=True)) -> dict[str, Any]:
    """Move the sandbox clock forward."""
    state = _state(request)
    state.clock.advance(seconds)
    return _clock(state)


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    """The live settings."""
    return _state(request).settings.model_dump()


@router.patch("/settings")
async def patch_settings(request: Request, changes: dict[str, Any] = Body()) -> dict[str, Any]:
    """Change settings (durations, limits) of the running sandbox."""
    settings = _state(request).settings
    for name, value in changes.items():
        if name not in type(settings).model_fields or name in ("db_path", "test_mode"):
            raise ProblemError(400, f"{name} cannot be changed", code="invalid", field=name)
        try:
            setattr(settings, name, value)
        except ValidationError as exc:
            raise ProblemError(400, f"Invalid {name}", code="invalid", field=name) from exc
    return settings.model_dump()


@router.get("/tenants")
async def tenants(request: Request) -> list[dict[str, Any]]:
    """Every organisation with its id."""
    return _state(request).store.tenants()


class NewTenant(BaseModel):
    """An organisation to add (seeded like a demo one) and the sign-ins that may grant it."""

    name: str = Field(min_length=1, max_length=200)
    grant_to: list[str] = Field(default_factory=list, description="Existing sign-in emails.")
    lock_date: str | None = None
    base_currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")


@router.post("/tenants", status_code=201)
async def add_tenant(new: NewTenant, request: Request) -> dict[str, Any]:
    """Add an organisation (for many-business tests and benchmarks); 409 if the name exists."""
    state = _state(request)
    if state.store.tenant(tenant_id(new.name)) is not None:
        raise ProblemError(409, "An organisation with this name exists", code="conflict")
    unknown = [e for e in new.grant_to if not state.store.check_login_exists(e)]
    if unknown:
        raise ProblemError(400, f"Unknown sign-ins: {', '.join(unknown)}", code="invalid")
    if not known(new.base_currency):
        raise ProblemError(400, f"{new.base_currency} is not ISO 4217", code="currency_unknown")
    tid = seed_organisation(
        state.store,
        new.name,
        created_at=state.clock.time(),
        lock_date=new.lock_date,
        currency=new.base_currency,
        banks="euro" if new.base_currency == "EUR" else "sterling",
    )
    for email in new.grant_to:
        state.store.grant_login(email, tid)
    return _tenant(state, tid)


def _tenant(state: SandboxState, tenant_id: str) -> dict[str, Any]:
    tenant = state.store.tenant(tenant_id)
    if tenant is None:
        raise ProblemError(404, "No such organisation", code="not_found")
    return tenant


class TenantChange(BaseModel):
    """A change to an organisation: lock date (null clears it), base currency, VAT registration."""

    model_config = {"extra": "forbid"}

    lock_date: dt.date | None = None
    base_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    vat_registered: bool | None = None


@router.patch("/tenants/{tenant_id}")
async def patch_tenant(
    tenant_id: str, request: Request, changes: dict[str, Any] = Body()
) -> dict[str, Any]:
    """Change an organisation: ``lock_date`` (``YYYY-MM-DD`` or null), ``base_currency``,
    ``vat_registered``; bumps its ``updated_at``."""
    state = _state(request)
    _tenant(state, tenant_id)
    try:
        change = TenantChange.model_validate(changes)
    except ValidationError as exc:
        raise ProblemError(
            400, f"Invalid change: {exc.errors()[0]['msg']}", code="invalid"
        ) from exc
    if change.base_currency is not None and not known(change.base_currency):
        raise ProblemError(400, f"{change.base_currency} is not ISO 4217", code="currency_unknown")
    now = iso(state.clock.time())
    if "lock_date" in changes:
        lock = change.lock_date.isoformat() if change.lock_date else None
        state.store.set_lock_date(tenant_id, lock, now)
    if change.base_currency is not None:
        state.store.set_base_currency(tenant_id, change.base_currency, now)
    if change.vat_registered is not None:
        state.store.set_vat_registered(tenant_id, change.vat_registered, now)
    return _tenant(state, tenant_id)


@router.post("/tenants/{tenant_id}/suppliers")
async def seed_suppliers(
    tenant_id: str, request: Request, count: int = Body(embed=True, ge=1, le=1_000_000)
) -> dict[str, Any]:
    """Bulk-seed generated suppliers."""
    state = _state(request)
    _tenant(state, tenant_id)
    created = bulk_suppliers(state.store, tenant_id, count, updated_at=iso(state.clock.time()))
    return {"created": created, "total": state.store.count("supplier", tenant_id)}


@router.patch("/tenants/{tenant_id}/{list_name}/{object_id}")
async def change_record(
    tenant_id: str,
    list_name: str,
    object_id: str,
    request: Request,
    changes: dict[str, Any] = Body(),
) -> dict[str, Any]:
    """Change a list record as if someone edited it in Nomi; bumps updated_at and version."""
    state = _state(request)
    kind = LISTS.get(list_name)
    if kind is None:
        raise ProblemError(404, f"Unknown list; use one of {sorted(LISTS)}", code="not_found")
    doc = state.store.get(kind, tenant_id, object_id)
    if doc is None:
        raise ProblemError(404, "No such record", code="not_found")
    changes = {k: v for k, v in changes.items() if k not in ("id", "updated_at", "version")}
    new = {**doc, **changes, "updated_at": iso(state.clock.time()), "version": doc["version"] + 1}
    state.store.put(kind, tenant_id, new, api=state.store.is_api_created(object_id))
    return new


@router.get("/records")
async def records(
    request: Request, tenant_id: str | None = None, kind: str | None = Query(None)
) -> list[dict[str, Any]]:
    """Every record created through the API (optionally one kind or one tenant)."""
    if kind is not None and kind not in KINDS:
        raise ProblemError(400, f"kind must be one of {KINDS}", code="invalid", field="kind")
    return _state(request).store.records(kind, tenant_id)


@router.get("/duplicates")
async def duplicates(request: Request) -> dict[str, dict[str, int]]:
    """``source_id`` values that more than one live (not voided) document of a kind carries.

    ``expenses`` and ``sales_invoices`` are always there; the credit note kinds only when they have
    duplicates, so a check that the answer is ``{"expenses": {}, "sales_invoices": {}}`` covers
    every kind.
    """
    store = _state(request).store
    found = {name: store.duplicates(kind) for name, kind in DOCUMENTS.items()}
    return {
        name: dups for name, dups in found.items() if dups or name in ("expenses", "sales_invoices")
    }


@router.get("/requests")
async def requests(
    request: Request, limit: int = Query(1000, ge=1, le=50_000)
) -> list[dict[str, Any]]:
    """The most recent requests seen (oldest first)."""
    seen = list(_state(request).requests)
    return seen[-limit:]


@router.get("/tokens")
async def token_stats(request: Request) -> dict[str, int]:
    """Counters of the token logic."""
    stats = _state(request).tokens.stats
    base = dict.fromkeys(
        (
            "issued",
            "refreshed",
            "replayed",
            "rejected",
            "invalid_grant",
            "invalid_client",
            "revoked",
            "rate_limited",
            "codes",
        ),
        0,
    )
    return {**base, **stats}


@router.post("/reset-stats")
async def reset_stats(request: Request) -> dict[str, Any]:
    """Forget the request journal and the token counters."""
    state = _state(request)
    state.requests.clear()
    state.tokens.stats.clear()
    return {"reset": True}
