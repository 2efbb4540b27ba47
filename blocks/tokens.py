"""`BlockTokenProvider`: access tokens from a `NomiCredentials` block, refreshed once per expiry.

Refresh tokens rotate, so two workers refreshing the same connection at once would leave one of them
holding a revoked token (``invalid_grant`` until someone reconnects). The refresh is therefore
serialised twice:

* across processes and hosts by a Prefect global concurrency limit of 1 named
  ``nomi-refresh-<block name>`` (created on first use), re-reading the block inside it, so a worker
  that waited finds the peer's fresh token and does not refresh again;
* across the threads of one process by a lock per block name, so only one thread of a process even
  asks for the global slot, and the others reuse what it got.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials
from blocks.locks import ensure_lock, lock_busy
from nomi.errors import ConnectionLostError, TransientError
from nomi.oauth import NomiOAuth

logger = logging.getLogger(__name__)


@dataclass
class _Shared:
    """What the threads of one process share about one connection."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    load_lock: threading.Lock = field(default_factory=threading.Lock)  # the first load only
    credentials: NomiCredentials | None = None
    limit_ready: bool = False
    lifetime: timedelta | None = None  # of the last access token this process was issued


_shared_guard = threading.Lock()
_shared: dict[str, _Shared] = {}


def _shared_for(block_name: str) -> _Shared:
    """The process-wide state of one credentials block."""
    with _shared_guard:
        return _shared.setdefault(block_name, _Shared())


def _load(block_name: str) -> NomiCredentials:
    """Load the credentials block (synchronously, also from inside an event loop's thread)."""
    creds = NomiCredentials.load(block_name, _sync=True)  # type: ignore[call-arg]
    if not isinstance(creds, NomiCredentials):
        raise TypeError(f"block {block_name!r} is not a NomiCredentials block")
    return creds


SAVE_ATTEMPTS = 5
SAVE_BACKOFF_SECONDS = 0.5


def refresh_lock_name(block_name: str) -> str:
    """Name of the global concurrency limit serialising refreshes of one connection."""
    return f"nomi-refresh-{block_name}"


def forget_cached_credentials(block_name: str) -> None:
    """Make this process re-read the block on next use (after a connect saved new tokens)."""
    state = _shared_for(block_name)
    with state.lock:
        state.credentials = None


def ensure_refresh_lock(block_name: str) -> None:
    """Create the global concurrency limit (limit 1) that serialises one connection's refreshes.

    The provider calls this lazily; the connect flow can call it when it saves the credentials
    block, so that workers never race to create it.
    """
    ensure_lock(refresh_lock_name(block_name))


class BlockTokenProvider:
    """A `nomi.client.TokenProvider` backed by a `NomiCredentials` block.

    Args:
        credentials_block_name: Name of the connection's `NomiCredentials` block.
        app: The `NomiApp` block (the OAuth client that refreshes).
        leeway: Refresh when the access token has less than this left.
        lock_timeout: Seconds to wait for the refresh lock before giving up.
        poll: First pause (seconds) before re-reading the block while a peer holds the lock.
        oauth: An OAuth client to use instead of ``app.oauth()`` (tests).

    Example:
        ```python
        from blocks import NomiApp
        from blocks.tokens import BlockTokenProvider
        from nomi.client import NomiClient

        app = NomiApp.load("nomi")
        tokens = BlockTokenProvider("bright-smile", app)
        with NomiClient(app.api_base_url, tokens.tenant_id, tokens) as nomi:
            suppliers = list(nomi.iter_suppliers())
        ```
    """

    def __init__(
        self,
        credentials_block_name: str,
        app: NomiApp,
        *,
        leeway: timedelta = timedelta(seconds=120),
        lock_timeout: float = 120.0,
        poll: float = 0.5,
        oauth: NomiOAuth | None = None,
    ) -> None:
        self.block_name = credentials_block_name
        self._app = app
        self._leeway = leeway
        self._lock_timeout = lock_timeout
        self._poll = poll
        self._oauth = oauth
        self._shared = _shared_for(credentials_block_name)

    def __repr__(self) -> str:
        return f"BlockTokenProvider({self.block_name!r})"

    @property
    def tenant_id(self) -> str:
        """The connection's Nomi tenant id."""
        return self._current().tenant_id

    def credentials(self) -> NomiCredentials:
        """The latest credentials this process knows (loaded on first use)."""
        return self._current()

    def access_token(self) -> str:
        """A token valid for at least ``leeway``, refreshing (once per connection) if needed.

        Raises:
            ConnectionLostError: The refresh token is no longer accepted; reconnect.
        """
        creds = self._current()
        if not creds.expires_within(self._effective_leeway()):
            return creds.access_token.get_secret_value()
        with self._shared.lock:
            creds = self._current()
            if creds.expires_within(self._effective_leeway()):
                creds = self._refresh(rejected=None)
            return creds.access_token.get_secret_value()

    def refresh_after_rejection(self, rejected_token: str) -> str:
        """A token other than ``rejected_token``: a peer's newer one, or a fresh refresh.

        Raises:
            ConnectionLostError: The refresh token is no longer accepted; reconnect.
        """
        with self._shared.lock:
            creds = self._current()
            if creds.access_token.get_secret_value() != rejected_token and not creds.expires_within(
                timedelta(0)
            ):
                return creds.access_token.get_secret_value()
            return self._refresh(rejected=rejected_token).access_token.get_secret_value()

    def _current(self) -> NomiCredentials:
        """The process's copy of the block, loading it the first time (once for all threads).

        A batch's publishing threads all ask at once; without the lock each loaded the block
        (a Prefect API read plus a new Prefect client each, ~80 ms of CPU).
        """
        creds = self._shared.credentials
        if creds is None:
            with self._shared.load_lock:
                creds = self._shared.credentials
                if creds is None:
                    creds = _load(self.block_name)
                    self._shared.credentials = creds
        return creds

    def _refresh(self, rejected: str | None) -> NomiCredentials:
        """Refresh under the connection's global lock (the caller holds the process lock).

        The block is read first: a peer has often refreshed already, and then no lock is needed.
        The lock is tried once per round (no client-side timeout: in Prefect 3.9.1 a timeout
        that fires while the server grants the slot leaks the lease). While a peer holds it, the
        block is re-read with a growing pause (``poll`` doubling to 2 s): the peer's token is
        taken as soon as it is saved, instead of waiting out Prefect's ``Retry-After`` (which
        grows with contention).
        """
        self._ensure_limit()
        deadline = time.monotonic() + self._lock_timeout
        pause = self._poll
        while True:
            creds = _load(self.block_name)
            self._shared.credentials = creds
            if self._still_good(creds, rejected):
                return creds
            try:
                return self._refresh_locked(rejected)
            except ConcurrencySlotAcquisitionError as exc:
                if not lock_busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"connection {self.block_name}: the token refresh lock stayed busy"
                    ) from None
                time.sleep(random.uniform(0, pause))
                pause = min(pause * 2, 2.0)

    def _refresh_locked(self, rejected: str | None) -> NomiCredentials:
        """Take the global lock (or time out), re-read the block, refresh and save if needed."""
        with concurrency(
            refresh_lock_name(self.block_name),
            occupy=1,
            strict=True,
            max_retries=0,  # one try: a client-side timeout could leak a granted lease
            lease_duration=60,
        ):
            creds = _load(self.block_name)
            self._shared.credentials = creds
            if self._still_good(creds, rejected):
                logger.debug("connection %s: a peer already refreshed", self.block_name)
                return creds
            used = creds.refresh_token.get_secret_value()
            oauth = self._oauth or self._app.oauth()
            try:
                tokens = oauth.refresh(creds.refresh_token)
            except ConnectionLostError:
                # A peer may have rotated the token outside our lock: trust the block if it moved.
                creds = _load(self.block_name)
                self._shared.credentials = creds
                if creds.refresh_token.get_secret_value() != used and self._still_good(
                    creds, rejected
                ):
                    return creds
                raise
            finally:
                if self._oauth is None:
                    oauth.close()
            creds.apply(tokens)
            self._shared.lifetime = tokens.expires_at - datetime.now(UTC)
            self._save_rotated(creds)
            logger.info("connection %s: access token refreshed", self.block_name)
            return creds

    def _save_rotated(self, creds: NomiCredentials) -> None:
        """Save rotated tokens, retrying a briefly unavailable Prefect API (still under the lock).

        Nomi has already retired the old refresh token, so losing this save loses the connection;
        a few bounded retries ride out a Prefect server restart or a 503.
        """
        for attempt in range(SAVE_ATTEMPTS):
            try:
                creds.save(self.block_name, overwrite=True, _sync=True)  # type: ignore[call-arg]
                return
            except Exception as exc:  # the Prefect API failed: any client error type
                if attempt == SAVE_ATTEMPTS - 1:
                    logger.error(
                        "connection %s: rotated tokens could not be saved (%s); reconnect needed",
                        self.block_name,
                        type(exc).__name__,
                    )
                    raise
                logger.warning(
                    "connection %s: saving rotated tokens failed (%s); retrying",
                    self.block_name,
                    type(exc).__name__,
                )
                time.sleep(SAVE_BACKOFF_SECONDS * 2**attempt)

    def _still_good(self, creds: NomiCredentials, rejected: str | None) -> bool:
        """True when ``creds`` holds a usable token that is not the rejected one."""
        if rejected is not None and creds.access_token.get_secret_value() == rejected:
            return False
        return not creds.expires_within(
            self._effective_leeway() if rejected is None else timedelta(0)
        )

    def _effective_leeway(self) -> timedelta:
        """The leeway, capped at half the lifetime of the tokens Nomi issues.

        A token living less than the leeway would otherwise count as expiring the moment it is
        issued, and every request would refresh (hitting the token endpoint's rate limit).
        """
        lifetime = self._shared.lifetime
        if lifetime is None or lifetime <= timedelta(0):
            return self._leeway
        return min(self._leeway, lifetime / 2)

    def _ensure_limit(self) -> None:
        """Create the connection's refresh lock once per process."""
        if not self._shared.limit_ready:
            ensure_refresh_lock(self.block_name)
            self._shared.limit_ready = True
