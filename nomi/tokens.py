"""Where the client gets access tokens: the `TokenProvider` protocol and two in-memory providers.

The client asks for a token before each request and, when Nomi answers 401 TokenExpired, asks for a
fresh one (`refresh_after_rejection`) and retries, a bounded number of times (a rejection that
outlasts them is transient, not a lost connection). Prefect runs use
`blocks.tokens.BlockTokenProvider`, which persists rotated tokens; these serve scripts and tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from nomi.errors import ConnectionLostError
from nomi.models import TokenSet
from nomi.oauth import NomiOAuth


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies access tokens to `nomi.client.NomiClient`."""

    def access_token(self) -> str:
        """A currently valid access token (refreshing first if it is about to expire)."""
        ...

    def refresh_after_rejection(self, rejected_token: str) -> str:
        """A fresh token after Nomi refused ``rejected_token``; a peer's newer token will do."""
        ...


class StaticTokenProvider:
    """A fixed access token (scripts, tests); a rejection is a lost connection."""

    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=SecretStr('**********'))"

    def access_token(self) -> str:
        """The fixed token."""
        return self._token.get_secret_value()

    def refresh_after_rejection(self, rejected_token: str) -> str:
        """Nothing to refresh with.

        Raises:
            ConnectionLostError: Always.
        """
        raise ConnectionLostError("access token rejected and no refresh token", code="TokenExpired")


class RefreshingTokenProvider:
    """Keeps a `TokenSet` in memory and refreshes it through `NomiOAuth`, one thread at a time.

    Args:
        oauth: The app's OAuth client.
        tokens: The current token set.
        leeway: Refresh this long before the access token expires.
        on_refresh: Called with every new token set (persist it: refresh tokens rotate).
    """

    def __init__(
        self,
        oauth: NomiOAuth,
        tokens: TokenSet,
        *,
        leeway: timedelta = timedelta(seconds=60),
        on_refresh: Callable[[TokenSet], None] | None = None,
    ) -> None:
        self._oauth = oauth
        self._tokens = tokens
        self._leeway = leeway
        self._on_refresh = on_refresh
        self._lock = threading.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"RefreshingTokenProvider(expires_at={self._tokens.expires_at.isoformat()})"

    @property
    def tokens(self) -> TokenSet:
        """The current token set."""
        return self._tokens

    def access_token(self) -> str:
        """A token valid for at least ``leeway`` more."""
        with self._lock:
            if self._tokens.expires_at - self._leeway <= datetime.now(UTC):
                self._refresh_locked()
            return self._tokens.access_token.get_secret_value()

    def refresh_after_rejection(self, rejected_token: str) -> str:
        """A fresh token, unless another thread already replaced the rejected one."""
        with self._lock:
            if self._tokens.access_token.get_secret_value() == rejected_token:
                self._refresh_locked()
            return self._tokens.access_token.get_secret_value()

    def _refresh_locked(self) -> None:
        """Refresh (caller holds the lock)."""
        if self._tokens.refresh_token is None:
            raise ConnectionLostError("access token expired and no refresh token", code="expired")
        self._tokens = self._oauth.refresh(self._tokens.refresh_token)
        self.refreshes += 1
        if self._on_refresh is not None:
            self._on_refresh(self._tokens)
