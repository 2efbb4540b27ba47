"""``/connections``: the organisations an access token may act for (Xero-style)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from sandbox.api.problems import ProblemError
from sandbox.api.schemas import Connection, problem_responses
from sandbox.auth.context import bearer, grant_of, state_of
from sandbox.auth.tokens import Grant
from sandbox.clock import iso

router = APIRouter(responses=problem_responses(401, 403, 404, 429))


def _connection_id(grant: Grant, tenant_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(grant.id), tenant_id))


@router.get("/connections", response_model=list[Connection], tags=["connections"])
async def list_connections(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> list[dict[str, Any]]:
    """The organisations this access token may act for."""
    state, grant = state_of(request), grant_of(request, credentials)
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


@router.delete("/connections/{connection_id}", status_code=204, tags=["connections"])
async def delete_connection(
    connection_id: str,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Response:
    """Disconnect one organisation from this consent."""
    state, grant = state_of(request), grant_of(request, credentials)
    remaining = [t for t in grant.tenant_ids if _connection_id(grant, t) != connection_id]
    if len(remaining) == len(grant.tenant_ids):
        raise ProblemError(404, "No such connection", code="not_found")
    state.tokens.set_tenants(grant.id, remaining)
    return Response(status_code=204)
