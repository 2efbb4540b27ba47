"""The pages the OAuth callback answers with: small HTML, all text escaped, never a redirect."""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from connector.connections.oauth_states import OAuthErrorCode, StateRefusedError

#: Characters of Nomi's ``error_description`` the callback shows (escaped) on its page.
MAX_DESCRIPTION_CHARS = 200

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def page(
    title: str, message: str, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A small HTML answer (never a redirect); everything shown is escaped."""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def not_an_answer_page() -> HTMLResponse:
    """The request is not the answer Nomi sends (no state, or neither code nor error)."""
    return page(
        "Not a Nomi authorization",
        "This address only accepts the answer Nomi sends back after consent.",
        400,
    )


def malformed_page(reason: str) -> HTMLResponse:
    """An answer refused as not one Nomi sends; the state was left as it was."""
    return page(
        "Not a valid Nomi answer",
        f"The connector refused this answer: {reason}. Nothing was connected, and this answer "
        "did not use up the authorization link: open it again from the Prefect run to retry.",
        400,
    )


def state_refused_page(exc: StateRefusedError) -> HTMLResponse:
    """An unknown, used or expired state."""
    return page(
        "Authorization refused",
        f"{exc}. Nothing was connected. Start the connect (or reconnect) run again "
        "from Prefect to get a new link.",
        400,
    )


def reload_page() -> HTMLResponse:
    """Prefect is unreachable: nothing was used up, the same link works again later."""
    return page(
        "Please reload this page in a moment",
        "Your authorization reached the connector, but the connector could not hand it to "
        "Prefect just now. Nothing was lost and nothing was connected yet: reload this page "
        "(the same address) in a minute. It keeps working until the connect run's link expires.",
        503,
        {"Retry-After": "30"},
    )


def received_page() -> HTMLResponse:
    """The code reached the run (Allow)."""
    return page(
        "Nomi authorization received",
        "Thank you. The connector is finishing the connection in Prefect; you can close "
        "this window.",
        200,
    )


def denied_page(error: OAuthErrorCode, description: str | None) -> HTMLResponse:
    """The run was told of Nomi's error (Deny, or another OAuth error)."""
    if error == OAuthErrorCode.ACCESS_DENIED:
        return page(
            "Nomi authorization declined",
            "You declined access at Nomi. Nothing was connected; you can close this window.",
            200,
        )
    said = f" Nomi said: {description[:MAX_DESCRIPTION_CHARS]}" if description else ""
    return page(
        "Nomi did not authorize the connection",
        f"Nomi answered with the error {error.value}. Nothing was connected; start the run "
        f"again from Prefect.{said}",
        200,
    )


def too_late_page() -> HTMLResponse:
    """The run is no longer waiting (ended, timed out or gone)."""
    return page(
        "Authorization arrived too late",
        "The connect run is no longer waiting for this authorization. Nothing was "
        "connected. Start the run again from Prefect to get a new link.",
        409,
    )


def failed_page() -> HTMLResponse:
    """Anything unexpected: never a bare 500."""
    return page(
        "Something went wrong",
        "The connector could not take this authorization. Reload this page in a "
        "minute; if it keeps failing, start the run again from Prefect.",
        500,
    )
