"""classify() maps every kind of Nomi answer onto the error hierarchy."""

from __future__ import annotations

import httpx
import pytest

from nomi.errors import (
    ConnectionLostError,
    DailyLimitError,
    NomiError,
    RateLimitError,
    RejectedError,
    ServerError,
    TokenExpiredError,
    TransientError,
    classify,
    parse_retry_after,
)


def problem(status: int, detail: str, *codes: str) -> httpx.Response:
    errors = [{"field": "total", "code": c, "message": c} for c in codes]
    return httpx.Response(
        status,
        json={"type": "x", "title": "T", "status": status, "detail": detail, "errors": errors},
        headers={"content-type": "application/problem+json"},
    )


def test_success_is_not_an_error() -> None:
    assert classify(httpx.Response(200, json={})) is None
    assert classify(httpx.Response(201, json={})) is None


@pytest.mark.parametrize(
    ("problem_header", "retry_after", "kind"),
    [
        ("minute", "7", RateLimitError),
        ("concurrent", None, RateLimitError),
        ("app", "3", RateLimitError),
        ("day", "66975", DailyLimitError),
    ],
)
def test_429s_are_told_apart_by_their_problem_header(problem_header, retry_after, kind) -> None:
    headers = {"X-Rate-Limit-Problem": problem_header}
    if retry_after:
        headers["Retry-After"] = retry_after
    error = classify(httpx.Response(429, json={"status": 429}, headers=headers))
    assert type(error) is kind
    assert isinstance(error, (RateLimitError, DailyLimitError))
    assert error.retry_after == (float(retry_after) if retry_after else None)
    assert isinstance(error, TransientError) is (kind is RateLimitError)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_html_5xx_is_a_transient_server_error(status: int) -> None:
    response = httpx.Response(
        status, text="<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}
    )
    error = classify(response)
    assert isinstance(error, ServerError)
    assert error.status == status


def test_token_expired_401_asks_for_a_refresh() -> None:
    error = classify(problem(401, "TokenExpired: access token has expired"))
    assert isinstance(error, TokenExpiredError)
    assert isinstance(error, ConnectionLostError)


def test_403_means_the_tenant_is_no_longer_granted() -> None:
    error = classify(problem(403, "tenant not granted to this token"))
    assert type(error) is ConnectionLostError
    assert error.code == "tenant_not_granted"


def test_every_401_asks_for_one_refresh_and_says_why() -> None:
    consent = classify(problem(401, "TokenExpired: the consent has expired"))
    invalid = classify(problem(401, "InvalidToken: the access token is not valid"))
    assert isinstance(consent, TokenExpiredError)
    assert consent.code == "consent_expired"
    assert isinstance(invalid, TokenExpiredError)
    assert invalid.code == "InvalidToken"


def test_validation_problem_keeps_codes_and_field_errors() -> None:
    error = classify(problem(400, "Tax rate is archived", "tax_rate_archived", "totals_mismatch"))
    assert isinstance(error, RejectedError)
    assert error.codes == ["tax_rate_archived", "totals_mismatch"]
    assert error.detail == "Tax rate is archived"
    assert [f.field for f in error.field_errors] == ["total", "total"]
    assert "tax_rate_archived" in str(error)


def test_stale_version_409_is_rejected_but_in_flight_409_is_transient() -> None:
    assert isinstance(classify(problem(409, "stale", "stale_version")), RejectedError)
    assert isinstance(classify(problem(409, "in flight", "idempotency_in_flight")), TransientError)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "refresh token revoked"},
            ConnectionLostError,
        ),
        (400, {"error": "invalid_client"}, RejectedError),
        (503, {"error": "temporarily_unavailable"}, RateLimitError),
    ],
)
def test_rfc6749_token_errors_are_normalised(status, body, kind) -> None:
    error = classify(httpx.Response(status, json=body))
    assert type(error) is kind
    assert body["error"] in str(error)


def test_plain_text_429_from_the_token_endpoint_is_transient() -> None:
    response = httpx.Response(429, text="Too many requests", headers={"Retry-After": "2"})
    error = classify(response)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0


def test_every_error_is_a_nomi_error() -> None:
    for response in [problem(400, "x", "y"), httpx.Response(500, text="boom")]:
        assert isinstance(classify(response), NomiError)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
