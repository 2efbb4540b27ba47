"""RFC 9457 problem responses: one exception type and the helpers that render it."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
}


class ProblemError(Exception):
    """An API error that renders as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors or [])
        if code is not None:
            self.errors.append({"field": field, "code": code, "message": detail})
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The problem document."""
        codes = [e["code"] for e in self.errors]
        return {
            "type": f"https://nomi.test/problems/{codes[0] if codes else self.status}",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "errors": self.errors,
        }


def problem_response(error: ProblemError) -> Response:
    """Render a ``ProblemError`` as a response."""
    return Response(
        json.dumps(error.body()),
        status_code=error.status,
        media_type=PROBLEM_TYPE,
        headers=error.headers,
    )


def problem_bytes(status: int, detail: str, code: str | None = None) -> bytes:
    """A problem document as bytes, for the raw ASGI layer."""
    return json.dumps(ProblemError(status, detail, code=code).body()).encode()
