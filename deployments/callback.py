"""The OAuth callback: where Nomi sends the browser back after consent; it resumes the waiting run.

``python -m deployments.callback --host 127.0.0.1 --port 8799`` (the ``NomiApp`` block's
``redirect_uri`` must point at ``http://<host>:<port>/oauth/callback``). For
``GET /oauth/callback?code=..&state=..`` (Allow) or ``?error=..&state=..`` (Deny) it:

1. looks the state's hash up in ``oauth_states`` and refuses an unknown (forged), used (replayed)
   or expired (stale) state with its own HTML page and HTTP 400: the run is not resumed and the
   browser is not redirected anywhere;
2. marks the state used;
3. parks the code in a Prefect ``Secret`` block named after the flow run (the only place a code
   may be stored), and resumes the run with the state only (and the error on Deny).

The access log is off: the request line carries the code.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import logging
import uuid

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from prefect.blocks.system import Secret
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run

from connector.db import make_engine, session
from connector.oauth_states import StateRefusedError, consume_state
from connector.settings import ConnectorSettings
from tasks.connect import code_block_name, discard_parked_code

log = logging.getLogger("deployments.callback")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def _page(title: str, message: str, status: int) -> HTMLResponse:
    """A small HTML answer (never a redirect)."""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def create_callback_app(settings: ConnectorSettings | None = None) -> FastAPI:
    """The callback web app.

    Args:
        settings: Where the connector database is (default: ``ConnectorSettings()``).

    Returns:
        A FastAPI app serving ``GET /oauth/callback`` and ``GET /healthz``.
    """
    settings = settings or ConnectorSettings()
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
        state: str | None = None, code: str | None = None, error: str | None = None
    ) -> HTMLResponse:
        if not state or not (code or error):
            return _page(
                "Not a Nomi authorization",
                "This address only accepts the answer Nomi sends back after consent.",
                400,
            )
        try:
            with session(engine) as db:
                row = consume_state(db, state)
                run_id = row.flow_run_id
        except StateRefusedError as exc:
            log.warning("callback refused: %s state", exc.reason)
            return _page(
                "Authorization refused",
                f"{exc}. Nothing was connected. Start the connect (or reconnect) run again "
                "from Prefect to get a new link.",
                400,
            )
        return _resume(run_id, state=state, code=code, error=error)

    return app


def _resume(run_id: uuid.UUID, *, state: str, code: str | None, error: str | None) -> HTMLResponse:
    """Park the code, resume the run, and say what happened."""
    run_input: dict[str, str] = {"state": state}
    if error:
        run_input["error"] = error[:200]
    else:
        assert code is not None
        Secret(value=code).save(code_block_name(run_id), overwrite=True, _sync=True)  # type: ignore[call-arg]
    try:
        resume_flow_run(run_id, run_input=run_input, _sync=True)  # type: ignore[call-arg]
    except (NotPausedError, FlowPauseTimeout, ObjectNotFound, RuntimeError) as exc:
        discard_parked_code(run_id)
        log.warning("callback could not resume run %s: %s", run_id, type(exc).__name__)
        return _page(
            "Authorization arrived too late",
            "The connect run is no longer waiting for this authorization. Nothing was "
            "connected. Start the run again from Prefect to get a new link.",
            409,
        )
    log.info("callback resumed run %s (%s)", run_id, "denied" if error else "allowed")
    if error:
        return _page(
            "Nomi authorization declined",
            "You declined access at Nomi. Nothing was connected; you can close this window.",
            200,
        )
    return _page(
        "Nomi authorization received",
        "Thank you. The connector is finishing the connection in Prefect; you can close "
        "this window.",
        200,
    )


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
