"""The FastAPI app factory of the Nomi sandbox."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sandbox.api import admin, documents
from sandbox.api import lists as api
from sandbox.api.problems import ProblemError, problem_response
from sandbox.auth import connections, oauth
from sandbox.gateway.asgi import Gateway
from sandbox.seed import bulk_suppliers, seed_demo, tenant_id
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState

DESCRIPTION = "Nomi API v1 as served by the sandbox. Errors are RFC 9457 problem documents."


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    """Build a sandbox app with its own store, clock and services.

    Args:
        settings: the sandbox settings (defaults: in-memory, demo seed, no admin API).

    Returns:
        The ASGI app; its ``state.sandbox`` holds the ``SandboxState``.
    """
    settings = settings or SandboxSettings()
    state = SandboxState.build(settings)
    _seed(state)
    app = FastAPI(title="Nomi API (sandbox)", version="1.0.0", description=DESCRIPTION)
    app.state.sandbox = state
    app.include_router(oauth.router)
    app.include_router(connections.router)
    app.include_router(api.router)
    app.include_router(documents.router)
    if settings.test_mode:
        app.include_router(admin.router)
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(Gateway, state=state)
    return app


def _seed(state: SandboxState) -> None:
    if not state.store.is_empty() or state.settings.seed == "none":
        return
    seed_demo(state.store, created_at=state.clock.time())
    if state.settings.suppliers:
        for tenant in state.store.tenants():
            bulk_suppliers(
                state.store,
                tenant["id"],
                state.settings.suppliers,
                updated_at="2025-01-06T09:00:00.000000Z",
            )


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())[1:]) or None,
            "code": "invalid",
            "message": str(err.get("msg", "invalid")),
        }
        for err in exc.errors()
    ]
    return problem_response(ProblemError(400, "The request is not valid", errors=errors))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = "not_found" if exc.status_code == 404 else "http_error"
    return problem_response(
        ProblemError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {}))
    )


__all__ = ["create_app", "tenant_id"]
