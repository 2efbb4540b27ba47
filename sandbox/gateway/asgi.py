"""The raw ASGI layer in front of the API: request journal, rate limits, faults and idempotency.

It sits outside FastAPI so it can do what a route cannot: hold a request "in flight" across the
idempotency check, and break the connection after the response headers (the client then sees a
transport error such as httpx ``RemoteProtocolError``, not an HTTP status).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.api.problems import ProblemError, problem_bytes
from sandbox.clock import iso
from sandbox.gateway.faults import Fault
from sandbox.gateway.idempotency import Outcome, Stored, request_hash
from sandbox.state import SandboxState

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RATE_FAULTS = {
    "rate_limit_minute": "minute",
    "rate_limit_day": "day",
    "rate_limit_concurrent": "concurrent",
    "rate_limit_app": "app",
}
GATE_FAULTS = (
    *RATE_FAULTS,
    "server_error",
    "connection_reset",
    "token_rejected",
    "validation",
    "refresh_revoked",
    "consent_expired",
)
# On /oauth/* only transport-like faults apply here (the token route applies refresh_revoked and
# consent_expired itself); token_rejected and validation are API answers.
OAUTH_FAULTS = (*RATE_FAULTS, "server_error", "connection_reset")
HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>{status} Error</title></head><body><h1>{status}</h1>"
    "<p>The server encountered a temporary error. Please try again later.</p></body></html>"
)


class Gateway:
    """ASGI middleware applying the sandbox's cross-cutting behaviour to non-admin requests."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event."""
        if scope["type"] != "http" or scope["path"].startswith(("/_admin", "/docs", "/openapi")):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        tenant = headers.get("nomi-tenant-id") or None
        path, method = scope["path"], scope["method"]
        entry: dict[str, Any] = {
            "at": iso(self.state.clock.time()),
            "method": method,
            "path": path,
            "tenant_id": tenant,
            "status": None,
            "idempotency_key": headers.get("idempotency-key"),
            "replayed": False,
            "fault": None,
        }
        self.state.requests.append(entry)
        started = time.perf_counter()
        limited = path.startswith(("/api/", "/connections"))
        extra: list[tuple[bytes, bytes]] = []
        held = [False]  # a concurrency slot, given back before the last byte leaves

        def release() -> None:
            if held[0]:
                held[0] = False
                self.state.limits.release(tenant)

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif not message.get("more_body", False):
                release()
            await send(message)

        try:
            if limited:
                refusal = self.state.limits.acquire(tenant)
                extra[:] = self.state.limits.headers(tenant)
                if refusal is not None:
                    await self._too_many(send_logged, refusal.problem, refusal.retry_after, path)
                    return
                held[0] = True
            await self._handle(scope, receive, send_logged, entry, tenant, headers)
        finally:
            release()
            entry["ms"] = round((time.perf_counter() - started) * 1000, 2)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: dict[str, Any],
        tenant: str | None,
        headers: Headers,
    ) -> None:
        path, method, faults = scope["path"], scope["method"], self.state.faults
        names = OAUTH_FAULTS if path.startswith("/oauth") else GATE_FAULTS
        fault = faults.match(names, tenant_ids=[tenant], method=method, path=path)
        if fault is not None:
            entry["fault"] = fault.fault
            if await self._apply(fault, send, tenant, headers, path):
                return
        body = await _read_body(receive)
        inner_receive = _replay(body)
        key = headers.get("idempotency-key")
        keyed = bool(key) and method in WRITES and self._authorised(headers, tenant)
        fingerprint = ""
        if keyed:
            assert key is not None
            assert tenant is not None
            fingerprint = request_hash(
                method,
                path,
                scope.get("query_string", b"").decode(),
                headers.get("content-type", ""),
                body,
            )
            outcome, stored = self.state.keys.begin(tenant, key, fingerprint)
            if outcome is Outcome.REPLAY and stored is not None:
                entry["replayed"] = True
                await _send_stored(send, stored, replayed=True)
                return
            if outcome is Outcome.IN_FLIGHT:
                await _send_problem(
                    send,
                    409,
                    "A request with this Idempotency-Key is still being processed",
                    "idempotency_in_flight",
                )
                return
            if outcome is Outcome.MISMATCH:
                await _send_problem(
                    send,
                    422,
                    "This Idempotency-Key was used with a different request",
                    "idempotency_key_reused",
                )
                return
        stored = None
        try:
            slow = faults.match("latency", tenant_ids=[tenant], method=method, path=path)
            if slow is not None:
                entry["fault"] = "latency"
                await asyncio.sleep(float(slow.params.get("seconds", 1.0)))
            drop = faults.match("commit_then_drop", tenant_ids=[tenant], method=method, path=path)
            if not keyed and drop is None:
                await self.app(scope, inner_receive, send)
                return
            stored = await _capture(self.app, scope, inner_receive)
            if drop is not None:
                await _drop(send)
                entry["fault"] = "commit_then_drop"
                entry["status"] = stored.status
            else:
                await _send_stored(send, stored, replayed=False)
        finally:
            if keyed:
                assert key is not None
                assert tenant is not None
                self.state.keys.finish(tenant, key, fingerprint, stored)

    def _authorised(self, headers: Headers, tenant: str | None) -> bool:
        """True when the token is valid for the tenant (else the app answers 401/403 itself)."""
        try:
            grant = self.state.tokens.authenticate(headers.get("authorization"), count=False)
        except ProblemError:
            return False
        return tenant is not None and tenant in grant.tenant_ids

    async def _apply(
        self, fault: Fault, send: Send, tenant: str | None, headers: Headers, path: str
    ) -> bool:
        """Act on a gate fault; True when the request is answered (or broken) by it."""
        name = fault.fault
        if name in RATE_FAULTS:
            problem = RATE_FAULTS[name]
            await self._too_many(
                send, problem, self.state.limits.retry_after(problem, tenant), path
            )
            return True
        if name == "server_error":
            status = int(fault.params.get("status", 500))
            await _send_raw(
                send, status, HTML_ERROR.format(status=status).encode(), "text/html; charset=utf-8"
            )
            return True
        if name == "connection_reset":
            await _drop(send)
            return True
        if name == "token_rejected":
            self.state.tokens.stats["rejected"] += 1
            await _send_problem(
                send, 401, "TokenExpired: the access token was rejected", "unauthorized"
            )
            return True
        if name == "validation":
            code = str(fault.params.get("code", "totals_mismatch"))
            await _send_problem(send, 400, f"Validation failed: {code}", code)
            return True
        # refresh_revoked / consent_expired reached through an API call: act on its consent.
        try:
            grant = self.state.tokens.authenticate(headers.get("authorization"), count=False)
        except ProblemError:  # no valid token: nothing to revoke
            return False
        if name == "refresh_revoked":
            self.state.tokens.revoke_grant(grant.id)
        else:
            self.state.tokens.expire_consent(grant.id)
        return False

    async def _too_many(self, send: Send, problem: str, retry_after: int | None, path: str) -> None:
        headers = [(b"x-rate-limit-problem", problem.encode())]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        if path.startswith("/oauth"):
            await _send_raw(send, 429, b"Too Many Requests", "text/plain", headers)
        else:
            body = problem_bytes(429, f"Rate limit exceeded: {problem}", "rate_limited")
            await _send_raw(send, 429, body, "application/problem+json", headers)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected
        return {"type": "http.disconnect"}

    return receive


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> Stored:
    """Run the app to completion and keep its response instead of sending it."""
    status, headers, chunks = 500, [], []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Stored(status, headers, b"".join(chunks))


async def _send_stored(send: Send, stored: Stored, *, replayed: bool) -> None:
    headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in stored.headers
        if k.lower() != "idempotent-replayed"
    ]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _send_raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, status: int, detail: str, code: str) -> None:
    await _send_raw(send, status, problem_bytes(status, detail, code), "application/problem+json")


async def _drop(send: Send) -> None:
    """Start a response and abandon it: the server closes the connection mid-body."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"', "more_body": True})
