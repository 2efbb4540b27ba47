"""Authentication of API requests: the bearer token, the tenant header and the scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sandbox.api.problems import ProblemError
from sandbox.api.schemas import problem_responses
from sandbox.auth.tokens import Grant
from sandbox.clock import iso
from sandbox.state import SandboxState

bearer = HTTPBearer(auto_error=False, description="An access token from /oauth/token")


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


def state_of(request: Request) -> SandboxState:
    """The sandbox state of the app serving a request."""
    state: SandboxState = request.app.state.sandbox
    return state


def grant_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Grant:
    """The consent behind the request's bearer token (401 otherwise)."""
    auth = f"Bearer {credentials.credentials}" if credentials else None
    return state_of(request).tokens.authenticate(auth)


def scoped(scope: str) -> Any:
    """A dependency giving the ``Ctx`` of a request that holds ``scope`` for its tenant."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        nomi_tenant_id: str | None = Header(default=None, alias="Nomi-Tenant-Id"),
    ) -> Ctx:
        state, grant = state_of(request), grant_of(request, credentials)
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


CONTACTS, SETTINGS = scoped("contacts.read"), scoped("settings.read")
EXPENSES, SALES = scoped("expenses.write"), scoped("sales.write")
COMMON = problem_responses(400, 401, 403, 404, 409, 422, 429)


def json_response(status: int, model: Any) -> Response:
    """A pydantic model as a JSON response with a given status."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")
