"""How the OAuth callback hands one valid answer to its waiting run: park, claim, resume.

The code is parked in a Prefect ``Secret`` block first; only then is the state marked used, and the
run resumed with the state only (and the error code on Deny). Reaching Prefect is retried with a
short, bounded backoff (`PrefectRetry`); when Prefect stays unreachable the state is given back
unused, so a reload of the same link works once Prefect is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import sqlalchemy as sa
from fastapi.responses import HTMLResponse
from prefect.blocks.system import Secret
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.settings import (
    PREFECT_API_REQUEST_TIMEOUT,
    PREFECT_CLIENT_MAX_RETRIES,
    temporary_settings,
)
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.connections.oauth_states import (
    OAuthErrorCode,
    OAuthState,
    RefusalReason,
    StateRefusedError,
    consume_state,
    hash_state,
    release_state,
)
from connector.store.db import session
from deployments.callback_pages import (
    denied_page,
    received_page,
    reload_page,
    state_refused_page,
    too_late_page,
)
from tasks.consent import code_block_name, discard_parked_code

log = logging.getLogger("deployments.callback")

T = TypeVar("T")


@dataclass(frozen=True)
class PrefectRetry:
    """How long the callback keeps trying to reach Prefect before asking the person to reload.

    Attributes:
        attempts: Tries of one Prefect call (parking the code, resuming the run).
        first_delay: Seconds before the second try; doubled each time up to ``max_delay``.
        max_delay: Longest wait between tries.
        budget_seconds: No try starts after this many seconds of the call.
        request_timeout: Prefect client timeout of one request (Prefect's own retries are off
            inside the callback, so this budget is the whole wait).
    """

    attempts: int = 6
    first_delay: float = 0.25
    max_delay: float = 2.0
    budget_seconds: float = 10.0
    request_timeout: float = 10.0


class PrefectUnavailableError(Exception):
    """Prefect could not be reached within the callback's retry budget."""


def refused(exc: StateRefusedError) -> HTMLResponse:
    """Log and answer a refused state."""
    log.warning("callback refused: %s state", exc.reason)
    return state_refused_page(exc)


class Handover:
    """Hand one valid answer to its waiting run: park the code, claim the state, resume."""

    def __init__(self, engine: Engine, retry: PrefectRetry, row: OAuthState) -> None:
        self.engine = engine
        self.retry = retry
        self.run_id = row.flow_run_id

    def allow(self, state: str, code: str) -> HTMLResponse:
        """Park the code first: the state is used only once the code is safe with Prefect."""
        name = code_block_name(self.run_id)
        try:
            call_prefect(
                self.retry,
                "park the code",
                lambda: Secret(value=code).save(name, overwrite=True, _sync=True),  # type: ignore[call-arg]
            )
        except PrefectUnavailableError:
            return reload_page()
        page = self._claim_and_resume(state, {"state": state})
        if page is not None:
            return page
        log.info("callback resumed run %s (allowed)", self.run_id)
        return received_page()

    def deny(self, state: str, error: OAuthErrorCode, description: str | None) -> HTMLResponse:
        """Resume the run with Nomi's error code (never its free text)."""
        page = self._claim_and_resume(state, {"state": state, "error": error.value})
        if page is not None:
            return page
        log.info("callback resumed run %s (denied: %s)", self.run_id, error.value)
        return denied_page(error, description)

    def _claim_and_resume(self, state: str, run_input: dict[str, str]) -> HTMLResponse | None:
        """Mark the state used and resume the run; a page when that did not happen, else None."""
        try:
            with session(self.engine, write=True) as db:
                claimed = consume_state(db, state)
        except StateRefusedError as exc:
            # Expired (or closed by its run) meanwhile: no run will read a code parked now. Used
            # by a racing reload: the code is the winner's run's to read and delete.
            if exc.reason != RefusalReason.USED or self._run_ended(state):
                self._discard()
            return refused(exc)
        except sa.exc.OperationalError as exc:
            log.warning("callback could not claim its state: %s", type(exc).__name__)
            return reload_page()
        try:
            call_prefect(
                self.retry,
                "resume the run",
                lambda: resume_flow_run(self.run_id, run_input=run_input, _sync=True),  # type: ignore[call-arg]
            )
        except PrefectUnavailableError:
            self._give_back(claimed)
            return reload_page()
        except (NotPausedError, FlowPauseTimeout, ObjectNotFound, RuntimeError) as exc:
            self._discard()
            log.warning("callback could not resume run %s: %s", self.run_id, type(exc).__name__)
            return too_late_page()
        except BaseException:
            self._give_back(claimed)  # not known to have resumed: a reload may try again
            raise
        return None

    def _run_ended(self, state: str) -> bool:
        """Whether the run of this state has closed it (it will read no code any more)."""
        with session(self.engine) as db:
            row = db.exec(
                select(OAuthState).where(OAuthState.state_hash == hash_state(state))
            ).first()
        return row is not None and row.outcome is not None

    def _discard(self) -> None:
        """Delete a code parked for this run (best effort: the run's end deletes it too)."""
        try:
            call_prefect(self.retry, "delete the code", lambda: discard_parked_code(self.run_id))
        except PrefectUnavailableError:
            log.error("callback could not delete the code parked for run %s", self.run_id)

    def _give_back(self, claimed: OAuthState) -> None:
        """Unmark the state, so that a reload of the same link resumes the run."""
        assert claimed.used_at is not None
        try:
            with session(self.engine, write=True) as db:
                release_state(db, claimed.id, used_at=claimed.used_at)
        except sa.exc.OperationalError as exc:
            log.error("callback could not give its state back: %s", type(exc).__name__)


def call_prefect(retry: PrefectRetry, what: str, call: Callable[[], T]) -> T:
    """Run one Prefect call; retry connection failures, timeouts and 5xx within ``retry``.

    Raises:
        PrefectUnavailableError: Still failing when the tries or the time budget ran out.
        Exception: Anything else the call raised (not retried).
    """
    started = time.monotonic()
    delay = retry.first_delay
    updates = {
        PREFECT_CLIENT_MAX_RETRIES: 0,
        PREFECT_API_REQUEST_TIMEOUT: retry.request_timeout,
    }
    last: BaseException | None = None
    for attempt in range(1, retry.attempts + 1):
        try:
            with temporary_settings(updates=updates):
                return call()
        except Exception as exc:
            if not _is_passing(exc):
                raise
            log.warning(
                "callback could not %s (try %d of %d): %s",
                what,
                attempt,
                retry.attempts,
                kind(exc),
            )
            last = exc
        if attempt == retry.attempts or time.monotonic() - started + delay > retry.budget_seconds:
            break
        time.sleep(delay)
        delay = min(delay * 2, retry.max_delay)
    raise PrefectUnavailableError(f"Prefect unreachable: could not {what}") from last


def kind(exc: BaseException) -> str:
    """The failure's type, and its HTTP status when it has one (never its text: it holds URLs)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{type(exc).__name__} {exc.response.status_code}"
    return type(exc).__name__


def _is_passing(exc: BaseException) -> bool:
    """A failure that a later try may not meet: no connection, a timeout, Prefect busy (5xx)."""
    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in (408, 429)
    return False
