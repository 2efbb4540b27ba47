"""OAuth 2.0 with Nomi: authorization URL (state + PKCE S256), code exchange, refresh, revoke.

Protocol pieces come from Authlib (token generation, the S256 challenge); the HTTP calls are plain
httpx so every token-endpoint failure (RFC 6749 bodies, HTML 5xx, plain-text 429) goes through
`nomi.errors.classify` into the one error hierarchy. Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pydantic import SecretStr

from nomi.errors import NetworkError, NomiError, ServerError, TransientError, classify
from nomi.models import TokenSet
from nomi.retry import RetryPolicy

DEFAULT_SCOPES = (
    "offline_access",
    "contacts.read",
    "settings.read",
    "expenses.write",
    "sales.write",
)
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class NomiOAuth:
    """The OAuth client of one Nomi app registration (a confidential client).

    Args:
        client_id: The app's client id.
        client_secret: The app's client secret (kept as a `SecretStr`).
        authorize_url: The authorization page, e.g. ``https://nomi/oauth/authorize``.
        token_url: The token endpoint.
        revoke_url: The revocation endpoint.
        redirect_uri: Where Nomi sends the user back with ``code`` and ``state``.
        scopes: Scopes to request.
        http: An httpx client to use (tests pass one with a MockTransport); one is made otherwise.
        retry: Retries of a refresh on transient failures (a replayed refresh is safe: Nomi returns
            the already-issued pair inside its grace period).
        auth_method: How the client authenticates to the token endpoint.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | SecretStr,
        authorize_url: str,
        token_url: str,
        revoke_url: str,
        redirect_uri: str,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        http: httpx.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
    ) -> None:
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.redirect_uri = redirect_uri
        self.scopes = list(scopes)
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=_TIMEOUT)
        self._retry = retry or RetryPolicy(max_attempts=4, base_delay=0.5, max_total=60.0)
        self._auth_method = auth_method

    def __repr__(self) -> str:
        return f"NomiOAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> NomiOAuth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def new_pkce() -> tuple[str, str]:
        """A fresh PKCE pair: (code_verifier, S256 code_challenge)."""
        verifier = generate_token(64)
        return verifier, create_s256_code_challenge(verifier)

    @staticmethod
    def new_state() -> str:
        """A fresh unguessable ``state`` value."""
        return generate_token(32)

    def authorization_url(self, state: str, code_verifier: str) -> str:
        """The URL to send the user to.

        Args:
            state: An unguessable value to check when the user comes back.
            code_verifier: The PKCE verifier; only its S256 challenge goes into the URL.

        Returns:
            The full authorization URL.
        """
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        sep = "&" if "?" in self.authorize_url else "?"
        return f"{self.authorize_url}{sep}{urlencode(query)}"

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code for tokens.

        Args:
            code: The ``code`` Nomi appended to the redirect URI.
            code_verifier: The PKCE verifier of this authorization.

        Returns:
            The issued `TokenSet`.

        Raises:
            ConnectionLostError: The code is invalid, used or expired (``invalid_grant``).
            TransientError: The token endpoint is rate limited or failing.
            RejectedError: Any other refusal (``invalid_client``, ...).
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        # A code is single use: only retry when the request surely never reached the server.
        return self._token_request(form, retry_after_send=False)

    def refresh(self, refresh_token: str | SecretStr) -> TokenSet:
        """Use a refresh token (rotated: store the returned one).

        Args:
            refresh_token: The current refresh token.

        Returns:
            The new `TokenSet`; its ``refresh_token`` is the old one when Nomi sent none.

        Raises:
            ConnectionLostError: ``invalid_grant`` (revoked, expired, or rotated away by a peer).
            TransientError: Still failing after the retries.
            RejectedError: Any other refusal.
        """
        token = _reveal(refresh_token)
        issued = self._token_request(
            {"grant_type": "refresh_token", "refresh_token": token}, retry_after_send=True
        )
        if issued.refresh_token is None:
            issued = issued.model_copy(update={"refresh_token": SecretStr(token)})
        return issued

    def revoke(
        self,
        token: str | SecretStr,
        token_type_hint: str = "refresh_token",  # noqa: S107
    ) -> None:
        """Revoke a token (RFC 7009); revoking a refresh token ends the connection.

        Revocation is idempotent (an unknown or already revoked token is still a 200), so
        transient failures are retried within the retry policy's bounds.

        Raises:
            TransientError: The endpoint stayed unreachable (`NetworkError`), failing
                (`ServerError`) or rate limited (`RateLimitError`): revoke again later.
            RejectedError: The endpoint refused (``invalid_client``, ``unsupported_token_type``).
            NomiError: Any other failure of the endpoint.
        """
        form = {"token": _reveal(token), "token_type_hint": token_type_hint}
        self._form_request(self.revoke_url, form, retry_after_send=True, endpoint="revoke")

    def _token_request(self, form: dict[str, str], *, retry_after_send: bool) -> TokenSet:
        """POST to the token endpoint with bounded retries; parse the token set."""
        response = self._form_request(
            self.token_url, form, retry_after_send=retry_after_send, endpoint="token"
        )
        return _token_set(response.json())

    def _form_request(
        self, url: str, form: dict[str, str], *, retry_after_send: bool, endpoint: str
    ) -> httpx.Response:
        """POST a form with bounded retries; every failure becomes a `NomiError`.

        ``retry_after_send``: a request that may have reached the server may be sent again (a
        refresh or a revocation; never a single-use code).
        """
        started = time.monotonic()
        attempt = 0
        while True:
            error: NomiError | None
            try:
                response = self._post(url, form)
                error = classify(response)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                error = NetworkError(
                    f"{endpoint} endpoint unreachable: {type(exc).__name__}",
                    may_have_been_sent=sent,
                )
                if sent and not retry_after_send:
                    raise error from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                # Not the network: a bad URL, a redirect loop, an undecodable body.
                raise NomiError(f"{endpoint} endpoint failed: {type(exc).__name__}") from None
            if error is None:
                return response
            attempt += 1
            delay = self._retry.delay(attempt - 1, getattr(error, "retry_after", None))
            give_up = (
                not isinstance(error, TransientError)
                or (isinstance(error, ServerError) and not retry_after_send)
                or attempt >= self._retry.max_attempts
                or delay is None
                or time.monotonic() - started + delay > self._retry.max_total
            )
            if give_up:
                raise error
            time.sleep(delay or 0.0)

    def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        """POST a form, authenticating as the confidential client."""
        headers = {"Accept": "application/json"}
        if self._auth_method == "client_secret_basic":
            secret = self._secret.get_secret_value()
            auth = httpx.BasicAuth(self.client_id, secret)
            return self._http.post(url, data=form, headers=headers, auth=auth)
        data = {
            **form,
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        return self._http.post(url, data=data, headers=headers)


def _reveal(value: str | SecretStr) -> str:
    """The plain value of a maybe-secret string."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _token_set(body: Any) -> TokenSet:
    """Build a `TokenSet` from a token-endpoint JSON body."""
    if not isinstance(body, dict) or not body.get("access_token"):
        raise NomiError("token endpoint answered without an access token")
    now = datetime.now(UTC)
    expires_in = float(body.get("expires_in") or 1800)
    refresh_in = body.get("refresh_token_expires_in")
    scope = body.get("scope") or ""
    return TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]) if body.get("refresh_token") else None,
        token_type=body.get("token_type") or "Bearer",
        expires_at=now + timedelta(seconds=expires_in),
        refresh_token_expires_at=now + timedelta(seconds=float(refresh_in)) if refresh_in else None,
        scopes=scope.split() if isinstance(scope, str) else list(scope),
    )
