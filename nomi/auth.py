"""Bearer tokens as an `httpx.Auth` flow: attach the token, refresh it after a 401, send again.

`NomiClient` makes one `NomiAuth` per logical request, so the refresh budget spans that request's
retries. Each exchange also takes a slot of the tenant's throttle, the refresh itself none.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx

from nomi.errors import TokenExpiredError, classify
from nomi.throttle import TenantThrottle
from nomi.tokens import TokenProvider

# Refreshes one logical request may make after a 401 before the rejection is called transient.
# Only Nomi's authoritative word (invalid_grant from the token endpoint, consent expired, 403
# tenant not granted) means a lost connection; a token rejected after fresh refreshes (a token
# that expired in flight on a busy machine, a peer's rotation) is retried later instead.
MAX_REFRESHES_PER_REQUEST = 3


class NomiAuth(httpx.Auth):
    """Attach ``Authorization: Bearer``; on a 401 refresh (at most ``max_refreshes``) and resend.

    Args:
        tokens: Where access tokens come from.
        throttle: The tenant's throttle, one slot per exchange; None disables it.
        max_refreshes: Refreshes allowed over every flow of this object (one logical request).
    """

    requires_response_body = True  # the 401 body says which rejection it is

    def __init__(
        self,
        tokens: TokenProvider,
        throttle: TenantThrottle | None = None,
        *,
        max_refreshes: int = MAX_REFRESHES_PER_REQUEST,
    ) -> None:
        self._tokens = tokens
        self._throttle = throttle
        self._max_refreshes = max_refreshes
        self.refreshes = 0

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive `auth_flow` by ``yield from``: closing this closes it (and frees its slot)."""
        yield from self.auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Not supported: refreshing is blocking I/O and the Nomi client is sync."""
        raise NotImplementedError("NomiAuth serves the sync httpx.Client only")
        yield request  # pragma: no cover (makes this an async generator)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the current token; after a refused token, refresh and send again.

        Raises:
            ConnectionLostError: The provider could not refresh (Nomi said invalid_grant).
        """
        token = self._tokens.access_token()
        while True:
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield from self._exchange(request)
            if self.refreshes >= self._max_refreshes:
                return
            if not isinstance(classify(response), TokenExpiredError):
                return
            self.refreshes += 1
            token = self._tokens.refresh_after_rejection(token)

    def _exchange(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """One exchange (body read) inside a throttle slot; its limit headers teach the throttle."""
        if self._throttle is None:
            response = yield request
            response.read()
            return response
        with self._throttle.slot():
            response = yield request
            response.read()
        self._throttle.observe(response.headers)
        return response
