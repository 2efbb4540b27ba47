"""The Nomi error hierarchy and the one function that maps HTTP responses onto it.

```
NomiError
├── ConnectionLostError        reconnect needed: invalid_grant, revoked, consent expired, 403 tenant
│   └── TokenExpiredError      any 401 (the client refreshes a bounded number of times)
├── TransientError             try again later (``retry_after`` seconds when the server said so)
│   ├── RateLimitError         429 minute / concurrent / app (``problem`` says which)
│   ├── ServerError            5xx, HTML bodies included
│   └── NetworkError           the network failed: timeout, reset, refused (no answer at all)
├── DailyLimitError            429 day: never sleep for hours, reschedule (``retry_after``)
├── RejectedError              the server answered no: problem+json ``codes`` and ``field_errors``
├── OutcomeUnknownError        a write may have landed: look it up by ``source_id``
└── PaginationError            a list repeated a page or went backwards
```

A rejection's ``codes`` are Nomi's stable problem codes (`ProblemCode` lists the known ones; an
unknown code is kept as it came). Every 4xx answer with a code is a `RejectedError`, including the
409s ``has_payments`` and ``already_voided``; only a 409 without a code or with an "in flight"
code (the same ``Idempotency-Key`` still being handled) is transient.

``classify`` understands both API bodies (RFC 9457 problem+json) and token-endpoint bodies
(RFC 6749 ``{"error": ...}``), and survives non-JSON bodies (HTML 5xx, plain-text 429). Messages
carry codes and details from the server, never request headers or form fields, so no token or
secret leaks into them.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

#: OAuth ``error`` values meaning the grant is gone and a person must reconnect.
_LOST_GRANT_CODES = frozenset({"invalid_grant", "consent_expired", "access_denied", "revoked"})
_MAX_DETAIL = 300


class ProblemCode(StrEnum):
    """Nomi's stable problem codes (``errors[].code`` of a problem+json body)."""

    ACCOUNT_ARCHIVED = "account_archived"
    TAX_RATE_ARCHIVED = "tax_rate_archived"
    TAX_RATE_WRONG_KIND = "tax_rate_wrong_kind"
    CONTACT_UNKNOWN = "contact_unknown"
    CONTACT_ARCHIVED = "contact_archived"
    CONTACT_MISMATCH = "contact_mismatch"
    CATEGORY_WRONG_TYPE = "category_wrong_type"
    REFERENCE_UNKNOWN = "reference_unknown"
    DUPLICATE_NUMBER = "duplicate_number"
    TOTALS_MISMATCH = "totals_mismatch"
    PERIOD_LOCKED = "period_locked"
    STALE_VERSION = "stale_version"
    ATTACHMENT_TOO_LARGE = "attachment_too_large"
    ATTACHMENT_TYPE = "attachment_type"
    INVALID = "invalid"
    INVALID_DATE = "invalid_date"
    NOT_FOUND = "not_found"
    CURRENCY_UNKNOWN = "currency_unknown"
    CURRENCY_MISMATCH = "currency_mismatch"
    HAS_PAYMENTS = "has_payments"
    ALREADY_VOIDED = "already_voided"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


@dataclass(frozen=True)
class FieldError:
    """One field-level validation error from a problem+json body."""

    field: str | None
    code: str | None
    message: str | None


class NomiError(Exception):
    """Base class of every error the Nomi client raises."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConnectionLostError(NomiError):
    """Unusable until someone reconnects: invalid_grant, revoked, 403, consent expired."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code


class TokenExpiredError(ConnectionLostError):
    """401: the access token was refused; a refresh is worth trying (see `NomiClient`)."""


class TransientError(NomiError):
    """A failure that may pass: retry later, after ``retry_after`` seconds when known."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitError(TransientError):
    """429 for the minute, concurrent or app-wide limit."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.problem = problem


class ServerError(TransientError):
    """5xx from Nomi (or a proxy in front of it)."""


class NetworkError(TransientError):
    """No usable answer: timeout, connection reset or refused."""

    def __init__(self, message: str, *, may_have_been_sent: bool = True) -> None:
        super().__init__(message)
        self.may_have_been_sent = may_have_been_sent


class DailyLimitError(NomiError):
    """429 day limit: stop and reschedule after ``retry_after`` seconds instead of sleeping."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class RejectedError(NomiError):
    """The server refused the request for a reason retrying will not fix."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        codes: list[str] | None = None,
        detail: str | None = None,
        field_errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.codes = codes or []
        self.detail = detail
        self.field_errors = field_errors or []

    def has(self, code: str) -> bool:
        """True when Nomi gave this problem code (a `ProblemCode` or any string)."""
        return code in self.codes


class OutcomeUnknownError(NomiError):
    """A write may or may not have landed; find it by ``source_id`` before creating it again."""


class PaginationError(NomiError):
    """A list endpoint served a page again or went backwards; stopped instead of looping."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text[:_MAX_DETAIL]


def _in_flight(code: str) -> bool:
    """True for a 409 code meaning the same idempotency key is still being processed."""
    return any(word in code.lower() for word in ("flight", "progress", "processing"))


def _field_errors(body: dict[str, Any]) -> list[FieldError]:
    raw = body.get("errors")
    if not isinstance(raw, list):
        return []
    return [
        FieldError(field=e.get("field"), code=e.get("code"), message=e.get("message"))
        for e in raw
        if isinstance(e, dict)
    ]


def _classify_oauth(status: int, body: dict[str, Any], retry_after: float | None) -> NomiError:
    code = str(body.get("error"))
    text = f"token endpoint: {code}: {_short(body.get('error_description'))}".rstrip(": ")
    if status == 429 or code in {"slow_down", "temporarily_unavailable"}:
        return RateLimitError(text, status=status, retry_after=retry_after, problem="token")
    if status >= 500 or code == "server_error":
        return ServerError(text, status=status, retry_after=retry_after)
    if code in _LOST_GRANT_CODES:
        return ConnectionLostError(text, status=status, code=code)
    return RejectedError(text, status=status, codes=[code], detail=body.get("error_description"))


def _classify_429(response: httpx.Response, retry_after: float | None) -> NomiError:
    problem = (response.headers.get("X-Rate-Limit-Problem") or "").lower() or None
    if problem == "day":
        return DailyLimitError("daily request limit reached", retry_after=retry_after)
    return RateLimitError(
        f"rate limited ({problem or 'unspecified'})", retry_after=retry_after, problem=problem
    )


def classify(response: httpx.Response) -> NomiError | None:
    """Map one HTTP response to the error it means, or None when it succeeded.

    Args:
        response: A response from the Nomi API or its OAuth token/revoke endpoints.

    Returns:
        None for 1xx-3xx, otherwise the `NomiError` subclass describing the failure.
    """
    status = response.status_code
    if status < 400:
        return None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    body = _json_body(response)
    if body is not None and "error" in body and isinstance(body.get("error"), str):
        return _classify_oauth(status, body, retry_after)
    if status == 429:
        return _classify_429(response, retry_after)
    if status >= 500 or status == 408:
        kind = "HTML" if "html" in response.headers.get("content-type", "") else "body"
        return ServerError(
            f"Nomi answered {status} ({kind})", status=status, retry_after=retry_after
        )
    body = body or {}
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    title = body.get("title") if isinstance(body.get("title"), str) else None
    field_errors = _field_errors(body)
    codes = [e.code for e in field_errors if e.code]
    if isinstance(body.get("code"), str):
        codes.insert(0, body["code"])
    text = _short(detail or title or response.reason_phrase or str(status))
    if status == 401:
        # Expired, invalid or consent-expired: one refresh decides (invalid_grant if it is gone).
        joined = f"{title} {detail} {' '.join(codes)}".lower()
        if "consent" in joined:
            code = "consent_expired"
        elif "tokenexpired" in joined.replace("_", ""):
            code = "TokenExpired"
        else:
            code = "InvalidToken"
        return TokenExpiredError(f"access token rejected: {text}", status=401, code=code)
    if status == 403:
        joined = f"{title} {detail} {' '.join(codes)}".lower()
        code = "consent_expired" if "consent" in joined else "tenant_not_granted"
        return ConnectionLostError(f"forbidden: {text}", status=403, code=code)
    if status == 409 and (not codes or any(_in_flight(c) for c in codes)):
        # Same idempotency key while the first request is still in flight: wait and replay.
        return TransientError(f"conflict: {text}", status=409, retry_after=retry_after)
    return RejectedError(
        f"rejected ({status}): {text}" + (f" [{', '.join(codes)}]" if codes else ""),
        status=status,
        codes=codes,
        detail=detail,
        field_errors=field_errors,
    )
