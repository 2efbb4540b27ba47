"""How the Nomi client talks HTTP: one request loop with token, throttle, retries and error mapping.

`NomiSession` sends one logical request (`NomiAuth` attaches and refreshes the token, one throttle
slot per exchange), retries what is safe to retry under `RetryPolicy`, and raises `nomi.errors`.
The endpoints live in `nomi.client.NomiClient`, built on it.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable
from typing import Any, Self

import httpx

from nomi.auth import MAX_REFRESHES_PER_REQUEST, NomiAuth
from nomi.errors import (
    NetworkError,
    NomiError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    TokenExpiredError,
    TransientError,
    classify,
)
from nomi.retry import RetryPolicy
from nomi.throttle import TenantThrottle
from nomi.tokens import TokenProvider

API = "/api/v1"
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The process's TLS context (httpx's default: certifi's CAs), made once.

    httpx builds a new context for every client, loading the CA bundle each time (about 30 ms
    of CPU); publishing opens a client per batch, so the context is shared (it is thread-safe).
    """
    return httpx.create_ssl_context()


class NomiSession:
    """The request loop `NomiClient` is built on: one organisation (tenant), one HTTP client.

    Args:
        api_base_url: Nomi's base URL, with or without the trailing ``/api/v1``.
        tenant_id: The organisation every call acts for (sent as ``Nomi-Tenant-Id``).
        tokens: Where access tokens come from.
        throttle: The tenant's shared throttle (see `nomi.throttle.throttle_for`); None disables it.
        retry: Bounds of the client's own retries.
        http: An httpx client (tests pass one on a MockTransport); one is made and owned otherwise.
    """

    def __init__(
        self,
        api_base_url: str,
        tenant_id: str,
        tokens: TokenProvider,
        *,
        throttle: TenantThrottle | None = None,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        root = api_base_url.rstrip("/")
        if root.endswith(API):
            root = root[: -len(API)]
        self.root_url = root
        self.tenant_id = tenant_id
        self._tokens = tokens
        self._throttle = throttle
        self._retry = retry or RetryPolicy()
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=_TIMEOUT, verify=_tls())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_url!r}, tenant_id={self.tenant_id!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_response(self, hook: Callable[[httpx.Response], None]) -> None:
        """Call ``hook`` with every HTTP response this session receives (once per hook).

        For callers that record what Nomi answered (the status of a successful write) while the
        client itself returns typed records; the hook runs in the thread that sent the request.
        """
        if hook not in self._http.event_hooks["response"]:
            self._http.event_hooks["response"].append(hook)

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        tenant: bool = True,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send one logical request: throttled, token attached (`NomiAuth`), retried where safe.

        ``idempotent``: a write that repeats safely without a key (a DELETE), retried like a read.
        """
        is_write = method != "GET" and not idempotent
        retryable = not is_write or idempotency_key is not None
        request_headers = {"Accept": "application/json"}
        if tenant:
            request_headers["Nomi-Tenant-Id"] = self.tenant_id
        if idempotency_key is not None:
            request_headers["Idempotency-Key"] = idempotency_key
        request_headers.update(headers or {})
        auth = NomiAuth(self._tokens, self._throttle, max_refreshes=MAX_REFRESHES_PER_REQUEST)
        started = time.monotonic()
        attempt = 0
        may_have_landed = False
        while True:
            error: NomiError | None
            try:
                response = self._http.request(
                    method,
                    self.root_url + path,
                    params=params,
                    json=json,
                    content=content,
                    headers=request_headers,
                    auth=auth,
                )
                error = classify(response)
            except httpx.TransportError as exc:
                sent = not isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                error = NetworkError(
                    f"{method} {path}: {type(exc).__name__}", may_have_been_sent=sent
                )
                may_have_landed = may_have_landed or (is_write and sent)
            if error is None:
                return response
            if isinstance(error, ServerError) and is_write:
                may_have_landed = True
            if isinstance(error, TokenExpiredError) and error.code != "consent_expired":
                # `auth` spent its refreshes, yet Nomi never refused one: not Nomi's word that
                # the connection is gone, so a failure to retry later.
                error = TransientError(
                    f"{method} {path}: access token rejected after {auth.refreshes} fresh "
                    "refreshes; retried later",
                    status=401,
                )
            attempt += 1
            delay = self._retry.delay(attempt - 1, getattr(error, "retry_after", None))
            if (
                isinstance(error, TransientError)
                and retryable
                and attempt < self._retry.max_attempts
                and delay is not None
                and time.monotonic() - started + delay <= self._retry.max_total
            ):
                if isinstance(error, RateLimitError) and self._throttle is not None:
                    self._throttle.backoff(delay)
                time.sleep(delay)
                continue
            if may_have_landed and isinstance(error, TransientError):
                raise OutcomeUnknownError(
                    f"{method} {path} may have been applied ({error.message}); "
                    "look it up by source_id"
                ) from error
            raise error


def records_of(body: Any) -> list[Any]:
    """The records of a list answer: a bare list as is, or the objects of an envelope."""
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        return []
    rows = body.get("items", body.get("data", []))
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def unwrap(body: Any) -> Any:
    """A single record, whether bare or wrapped as ``{"data": {...}}``."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "id" not in body:
        return body["data"]
    return body
