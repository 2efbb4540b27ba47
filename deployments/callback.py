"""The OAuth callback: where Nomi sends the browser back after consent; it resumes the waiting run.

``python -m deployments.callback --host 127.0.0.1 --port 8799`` serves ``GET /oauth/callback``
(the ``NomiApp`` block's ``redirect_uri``). It refuses, with its own page and HTTP 400, an answer
Nomi does not send (audited) and an unknown, used or expired state; a valid answer is handed to
the run (``callback_handover.py``). The access log is off: the request line carries the code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine
from sqlmodel import select

from connector.connections.oauth_states import (
    OAuthErrorCode,
    OAuthState,
    StateRefusedError,
    check_state,
    hash_state,
    oauth_error_code,
)
from connector.history.records import record_audit
from connector.settings import ConnectorSettings
from connector.store.db import make_engine, session
from deployments.callback_handover import Handover, PrefectRetry, kind, refused
from deployments.callback_pages import failed_page, malformed_page, not_an_answer_page, reload_page

__all__ = ["PrefectRetry", "create_callback_app", "main"]

log = logging.getLogger("deployments.callback")

#: The audited action of an answer the callback refuses as not one Nomi sends.
REFUSED_ACTION = "oauth_callback.refused"


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
            log.error("callback failed: %s", kind(exc))
            return failed_page()

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
        return not_an_answer_page()
    if error is not None:
        malformed = _refuse_malformed(engine, state=state, error=error, with_code=bool(code))
        if malformed is not None:
            return malformed
    try:
        with session(engine) as db:
            row = check_state(db, state)
    except StateRefusedError as exc:
        return refused(exc)
    except sa.exc.OperationalError as exc:
        log.warning("callback could not read its state: %s", type(exc).__name__)
        return reload_page()
    handover = Handover(engine, retry, row)
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
    return malformed_page(reason)


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
