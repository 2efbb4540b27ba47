"""The OAuth callback: where Nomi sends the browser back after consent; it resumes the waiting run.

``python -m deployments.callback --host 127.0.0.1 --port 8799`` (the ``NomiApp`` block's
``redirect_uri`` must point at ``http://<host>:<port>/oauth/callback``). For
``GET /oauth/callback?code=..&state=..`` (Allow) or ``?error=..&state=..`` (Deny) it:

1. refuses, with its own HTML page and HTTP 400, an answer that is not one Nomi sends: no state,
   neither code nor error, an ``error`` that is not an RFC 6749 error code, or a code *and* an
   error (those two are audited as ``oauth_callback.refused``); the state is left as it was;
2. looks the state's hash up in ``oauth_states`` and refuses an unknown (forged), used (replayed)
   or expired (stale or timed out) state with its own page and HTTP 400: the run is not resumed
   and the browser is not redirected anywhere;
3. parks the code in a Prefect ``Secret`` block named after the flow run (the only place a code
   may be stored);
4. only then marks the state used (a write transaction), and resumes the run with the state only
   (and the error code on Deny).

Reaching Prefect (steps 3 and 4) is retried with a short, bounded backoff (``PrefectRetry``). When
Prefect still cannot be reached the state is left (or given back) unused and the person gets the
callback's own page, HTTP 503, asking to reload: the same link then works once Prefect is back.
A consent is never lost to a blip.

The access log is off: the request line carries the code.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
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
    check_state,
    consume_state,
    hash_state,
    oauth_error_code,
    release_state,
)
from connector.history.records import record_audit
from connector.settings import ConnectorSettings
from connector.store.db import make_engine, session
from tasks.consent import code_block_name, discard_parked_code

log = logging.getLogger("deployments.callback")

T = TypeVar("T")

#: Characters of Nomi's ``error_description`` the callback shows (escaped) on its page.
MAX_DESCRIPTION_CHARS = 200
#: The audited action of an answer the callback refuses as not one Nomi sends.
REFUSED_ACTION = "oauth_callback.refused"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


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


def _page(
    title: str, message: str, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A small HTML answer (never a redirect); everything shown is escaped."""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _reload_page() -> HTMLResponse:
    """Prefect is unreachable: nothing was used up, the same link works again later."""
    return _page(
        "Please reload this page in a moment",
        "Your authorization reached the connector, but the connector could not hand it to "
        "Prefect just now. Nothing was lost and nothing was connected yet: reload this page "
        "(the same address) in a minute. It keeps working until the connect run's link expires.",
        503,
        {"Retry-After": "30"},
    )


def _safe_excerpt(value: str, limit: int = 40) -> str:
    """A harmless trace of untrusted text for logs and audit rows: letters, digits, ``_-.``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "?", value[:limit])


def create_callback_app(
    settings: ConnectorSettings | None = None, *, prefect_retry: PrefectRetry | None = None
) -> FastAPI:
    """The callback web app.

    Args:
        settings: Where the connector database is (default: ``ConnectorSettings()``).
        prefect_retry: How long to keep trying Prefect (default: ``PrefectRetry()``).

    Returns:
        A FastAPI app serving ``GET /oauth/callback`` and ``GET /healthz``.
    """
    settings = settings or ConnectorSettings()
    retry = prefect_retry or PrefectRetry()
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        engine.dispose()

    # No automatic slash redirects: Starlette builds their Location from the Host header, so
    # "/oauth/callback/?code=.." with a forged Host would send the code off-site.
    app = FastAPI(
        title="Nomi connector OAuth callback",
        lifespan=lifespan,
        openapi_url=None,
        redirect_slashes=False,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/oauth/callback", response_class=HTMLResponse)
    def oauth_callback(
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> HTMLResponse:
        try:
            return _answer(engine, retry, state, code, error, error_description)
        except Exception as exc:  # never a bare 500; the text may hold the code: type only
            log.error("callback failed: %s", _kind(exc))
            return _page(
                "Something went wrong",
                "The connector could not take this authorization. Reload this page in a "
                "minute; if it keeps failing, start the run again from Prefect.",
                500,
            )

    return app


def _answer(
    engine: Engine,
    retry: PrefectRetry,
    state: str | None,
    code: str | None,
    error: str | None,
    error_description: str | None,
) -> HTMLResponse:
    """What the callback answers to one request (see the module docstring)."""
    if not state or not (code or error is not None):
        return _page(
            "Not a Nomi authorization",
            "This address only accepts the answer Nomi sends back after consent.",
            400,
        )
    if error is not None:
        refused = _refuse_malformed(engine, state=state, error=error, with_code=bool(code))
        if refused is not None:
            return refused
    try:
        with session(engine) as db:
            row = check_state(db, state)
    except StateRefusedError as exc:
        return _state_refused(exc)
    except sa.exc.OperationalError as exc:
        log.warning("callback could not read its state: %s", type(exc).__name__)
        return _reload_page()
    handover = _Handover(engine, retry, row)
    if error is not None:
        return handover.deny(state, OAuthErrorCode(error), error_description)
    assert code is not None
    return handover.allow(state, code)


def _refuse_malformed(
    engine: Engine, *, state: str, error: str, with_code: bool
) -> HTMLResponse | None:
    """Refuse (audited, state untouched) an error that is no OAuth code, or an error with a code."""
    if oauth_error_code(error) is None:
        reason = "the error parameter is not an OAuth 2.0 (RFC 6749) error code"
    elif with_code:
        reason = "the answer carries both an authorization code and an error"
    else:
        return None
    _audit_refusal(engine, state=state, reason=reason, error=error)
    log.warning("callback refused: %s", reason)
    return _page(
        "Not a valid Nomi answer",
        f"The connector refused this answer: {reason}. Nothing was connected, and this answer "
        "did not use up the authorization link: open it again from the Prefect run to retry.",
        400,
    )


def _audit_refusal(engine: Engine, *, state: str, reason: str, error: str) -> None:
    """Audit a refused answer, with the business of its state when the state is known."""
    detail: dict[str, str] = {"reason": reason, "error": _safe_excerpt(error)}
    try:
        with session(engine, write=True) as db:
            row = db.exec(
                select(OAuthState).where(OAuthState.state_hash == hash_state(state))
            ).first()
            if row is not None:
                detail |= {"purpose": row.purpose, "flow_run_id": str(row.flow_run_id)}
            record_audit(
                db,
                action=REFUSED_ACTION,
                allowed=False,
                business_id=row.business_id if row is not None else None,
                user_id=None,
                detail=detail,
            )
    except sa.exc.OperationalError as exc:  # refuse all the same
        log.error("callback could not audit a refused answer: %s", type(exc).__name__)


def _state_refused(exc: StateRefusedError) -> HTMLResponse:
    log.warning("callback refused: %s state", exc.reason)
    return _page(
        "Authorization refused",
        f"{exc}. Nothing was connected. Start the connect (or reconnect) run again "
        "from Prefect to get a new link.",
        400,
    )


class _Handover:
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
            return _reload_page()
        page = self._claim_and_resume(state, {"state": state})
        if page is not None:
            return page
        log.info("callback resumed run %s (allowed)", self.run_id)
        return _page(
            "Nomi authorization received",
            "Thank you. The connector is finishing the connection in Prefect; you can close "
            "this window.",
            200,
        )

    def deny(self, state: str, error: OAuthErrorCode, description: str | None) -> HTMLResponse:
        """Resume the run with Nomi's error code (never its free text)."""
        page = self._claim_and_resume(state, {"state": state, "error": error.value})
        if page is not None:
            return page
        log.info("callback resumed run %s (denied: %s)", self.run_id, error.value)
        if error == OAuthErrorCode.ACCESS_DENIED:
            return _page(
                "Nomi authorization declined",
                "You declined access at Nomi. Nothing was connected; you can close this window.",
                200,
            )
        said = f" Nomi said: {description[:MAX_DESCRIPTION_CHARS]}" if description else ""
        return _page(
            "Nomi did not authorize the connection",
            f"Nomi answered with the error {error.value}. Nothing was connected; start the run "
            f"again from Prefect.{said}",
            200,
        )

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
            return _state_refused(exc)
        except sa.exc.OperationalError as exc:
            log.warning("callback could not claim its state: %s", type(exc).__name__)
            return _reload_page()
        try:
            call_prefect(
                self.retry,
                "resume the run",
                lambda: resume_flow_run(self.run_id, run_input=run_input, _sync=True),  # type: ignore[call-arg]
            )
        except PrefectUnavailableError:
            self._give_back(claimed)
            return _reload_page()
        except (NotPausedError, FlowPauseTimeout, ObjectNotFound, RuntimeError) as exc:
            self._discard()
            log.warning("callback could not resume run %s: %s", self.run_id, type(exc).__name__)
            return _page(
                "Authorization arrived too late",
                "The connect run is no longer waiting for this authorization. Nothing was "
                "connected. Start the run again from Prefect to get a new link.",
                409,
            )
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
                _kind(exc),
            )
            last = exc
        if attempt == retry.attempts or time.monotonic() - started + delay > retry.budget_seconds:
            break
        time.sleep(delay)
        delay = min(delay * 2, retry.max_delay)
    raise PrefectUnavailableError(f"Prefect unreachable: could not {what}") from last


def _kind(exc: BaseException) -> str:
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


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8799)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve the callback until interrupted."""
    args = _args(argv)
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_callback_app(), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
