"""NomiOAuth over httpx.MockTransport: PKCE URL, code exchange, refresh rotation, error bodies."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nomi.errors import (
    ConnectionLostError,
    NetworkError,
    NomiError,
    RateLimitError,
    RejectedError,
    ServerError,
    TransientError,
)
from nomi.oauth import NomiOAuth
from nomi.retry import RetryPolicy

SECRET = "very-secret-client-secret"


def oauth(handler, auth_method="client_secret_basic") -> NomiOAuth:
    return NomiOAuth(
        "client-1",
        SECRET,
        "http://nomi.test/oauth/authorize",
        "http://nomi.test/oauth/token",
        "http://nomi.test/oauth/revoke",
        "http://127.0.0.1:8000/callback",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_retry_after=0.5),
        auth_method=auth_method,
    )


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_authorization_url_carries_state_and_an_s256_challenge() -> None:
    client = oauth(lambda r: httpx.Response(500))
    verifier, challenge = client.new_pkce()
    url = client.authorization_url(state="st-1", code_verifier=verifier)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode() == challenge
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == "st-1"
    assert query["response_type"] == "code"
    assert "offline_access" in query["scope"].split()
    assert verifier not in url
    assert 43 <= len(verifier) <= 128


def test_code_exchange_sends_the_verifier_and_authenticates_the_client() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "access_token": "a1",
                "refresh_token": "r1",
                "expires_in": 1800,
                "scope": "offline_access x",
            },
        )

    tokens = oauth(handler).exchange_code("code-1", "verifier-1")
    body = form(seen[0])
    assert body["grant_type"] == "authorization_code"
    assert body["code_verifier"] == "verifier-1"
    assert seen[0].headers["Authorization"].startswith("Basic ")
    assert tokens.access_token.get_secret_value() == "a1"
    assert tokens.scopes == ["offline_access", "x"]
    assert "a1" not in repr(tokens)
    assert "r1" not in repr(tokens)


def test_client_secret_post_puts_the_credentials_in_the_form() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "a2", "expires_in": 60})

    tokens = oauth(handler, "client_secret_post").refresh("r1")
    assert form(seen[0])["client_secret"] == SECRET
    assert "Authorization" not in seen[0].headers
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == "r1"  # kept when none was sent


def test_refresh_returns_the_rotated_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert form(request)["refresh_token"] == "r1"
        return httpx.Response(
            200,
            json={
                "access_token": "a2",
                "refresh_token": "r2",
                "expires_in": 1800,
                "refresh_token_expires_in": 5184000,
            },
        )

    tokens = oauth(handler).refresh("r1")
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == "r2"
    assert tokens.refresh_token_expires_at is not None


def test_invalid_grant_is_a_lost_connection_without_the_token_in_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "refresh token revoked"}
        )

    with pytest.raises(ConnectionLostError) as caught:
        oauth(handler).refresh("r-secret-1")
    assert "r-secret-1" not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_html_5xx_on_refresh_is_retried_then_raised_as_a_server_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            502, text="<html><h1>502 Bad Gateway</h1></html>", headers={"content-type": "text/html"}
        )

    with pytest.raises(ServerError):
        oauth(handler).refresh("r1")
    assert calls == 3


def test_plain_text_429_on_refresh_is_retried_after_retry_after() -> None:
    answers = [
        httpx.Response(429, text="slow down", headers={"Retry-After": "0"}),
        httpx.Response(200, json={"access_token": "a3", "expires_in": 60}),
    ]
    tokens = oauth(lambda r: answers.pop(0)).refresh("r1")
    assert tokens.access_token.get_secret_value() == "a3"


def test_a_rate_limited_code_exchange_is_raised_when_retries_run_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "30"})

    with pytest.raises(RateLimitError) as caught:
        oauth(handler).exchange_code("c", "v")
    assert caught.value.retry_after == 30.0


def test_invalid_client_is_rejected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    with pytest.raises(RejectedError) as caught:
        oauth(handler).refresh("r1")
    assert caught.value.codes == ["invalid_client"]
    assert SECRET not in repr(oauth(handler))


def test_revoke_posts_the_token_and_its_hint_as_the_client() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    oauth(handler).revoke("r-secret")
    (request,) = seen
    assert str(request.url) == "http://nomi.test/oauth/revoke"
    assert form(request) == {"token": "r-secret", "token_type_hint": "refresh_token"}
    assert request.headers["Authorization"].startswith("Basic ")


def test_an_unreachable_revoke_endpoint_is_a_network_error_not_an_httpx_one() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(NetworkError) as caught:
        oauth(handler).revoke("r-secret")
    assert isinstance(caught.value, TransientError)
    assert caught.value.may_have_been_sent is False
    assert "revoke" in caught.value.message
    assert "r-secret" not in str(caught.value)
    assert calls == 3  # revocation is idempotent: retried within the policy


def test_a_reset_revoke_is_retried_and_succeeds() -> None:
    answers: list[Exception | httpx.Response] = [
        httpx.ReadError("connection reset"),
        httpx.Response(200),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    oauth(handler).revoke("r-secret")
    assert answers == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(503, text="<html>down</html>"), ServerError),
        (
            httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "0"}),
            RateLimitError,
        ),
        (httpx.Response(401, json={"error": "invalid_client"}), RejectedError),
        (httpx.Response(400, json={"error": "unsupported_token_type"}), RejectedError),
    ],
)
def test_revoke_failures_map_into_the_client_errors(
    response: httpx.Response, expected: type[Exception]
) -> None:
    with pytest.raises(expected):
        oauth(lambda r: response).revoke("r-secret")


def test_a_revoke_endpoint_that_is_not_http_fails_as_a_nomi_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.TooManyRedirects("redirect loop", request=request)

    with pytest.raises(NomiError) as caught:
        oauth(handler).revoke("r-secret")
    assert not isinstance(caught.value, TransientError)
