"""OAuth 2.0 endpoints: the consent pages (plain HTML forms), the token and revocation endpoints.

Consent steps: ``GET /oauth/authorize`` (sign-in form) -> ``POST /oauth/authorize/login``
(organisation form) -> ``POST /oauth/authorize/organisation`` (scopes form with Allow/Deny) ->
``POST /oauth/authorize/decision`` -> 302 to the redirect URI. Hidden field ``txn`` links the steps.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import secrets
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from sandbox.auth.tokens import CLIENT_ID, CLIENT_SECRET, SCOPES, OAuthError
from sandbox.state import SandboxState

REDIRECT = re.compile(r"^http://(127\.0\.0\.1|localhost)(:\d{1,5})?(/[^\s#]*)?$")
SCOPE_TEXT = {
    "offline_access": "Stay connected when you are not using the app",
    "contacts.read": "View your suppliers and customers",
    "settings.read": "View your chart of accounts, tax rates, bank accounts and users",
    "expenses.write": "Create expenses and suppliers",
    "sales.write": "Create sales invoices, customers and payments",
}
PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} - Nomi</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto}}
label{{display:block;margin:.5rem 0}}
.error{{color:#b00}}</style></head><body><h1>{title}</h1>{body}</body></html>"""

router = APIRouter(prefix="/oauth", include_in_schema=True, tags=["oauth"])


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code=status)


def _hidden(txn: str) -> str:
    return f'<input type="hidden" name="txn" value="{html.escape(txn)}">'


def _login_form(txn: str, error: str = "") -> HTMLResponse:
    note = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _page(
        "Sign in to Nomi",
        f"""{note}<form method="post" action="/oauth/authorize/login">
{_hidden(txn)}<label>Email <input type="email" name="email" required></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button></form>""",
    )


def _redirect(uri: str, **params: str | None) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status_code=302)


@router.get("/authorize", response_class=HTMLResponse)
async def authorize(
    request: Request,
    response_type: str = "",
    client_id: str = "",
    redirect_uri: str = "",
    scope: str = "",
    state: str | None = None,
    code_challenge: str = "",
    code_challenge_method: str = "",
) -> Response:
    """Start the consent: validate the request and show the sign-in form."""
    if client_id != CLIENT_ID or not REDIRECT.match(redirect_uri):
        return _page("Invalid request", "<p>Unknown client or redirect URI.</p>", 400)
    if response_type != "code":
        return _redirect(redirect_uri, error="unsupported_response_type", state=state)
    scopes = scope.split()
    if not scopes or any(s not in SCOPES for s in scopes):
        return _redirect(redirect_uri, error="invalid_scope", state=state)
    if code_challenge_method != "S256" or not re.fullmatch(
        r"[A-Za-z0-9_-]{43,128}", code_challenge
    ):
        return _redirect(
            redirect_uri,
            error="invalid_request",
            state=state,
            error_description="PKCE S256 code_challenge required",
        )
    sandbox = _state(request)
    txn = secrets.token_urlsafe(18)
    sandbox.authorizations[txn] = {
        "redirect_uri": redirect_uri,
        "scopes": scopes,
        "state": state,
        "challenge": code_challenge,
        "expires_at": sandbox.clock.time() + sandbox.settings.code_ttl,
        "email": None,
        "tenants": None,
    }
    return _login_form(txn)


def _txn(sandbox: SandboxState, txn: str, step: str) -> dict[str, Any] | None:
    entry = sandbox.authorizations.get(txn)
    if entry is None or sandbox.clock.time() > entry["expires_at"]:
        return None
    if step == "organisation" and entry["email"] is None:
        return None
    if step == "decision" and entry["tenants"] is None:
        return None
    return entry


def _expired() -> HTMLResponse:
    return _page(
        "Session expired", "<p>This sign-in has expired. Start again from the app.</p>", 400
    )


@router.post("/authorize/login", response_class=HTMLResponse)
async def login(
    request: Request, txn: str = Form(""), email: str = Form(""), password: str = Form("")
) -> Response:
    """Check the sign-in, then offer the organisations it may connect."""
    sandbox = _state(request)
    entry = _txn(sandbox, txn, "login")
    if entry is None:
        return _expired()
    user = sandbox.store.check_login(email, password)
    if user is None:
        return _login_form(txn, "Incorrect email or password.")
    entry["email"] = user["email"]
    orgs = sandbox.store.login_tenants(user["email"])
    radios = "".join(
        f'<label><input type="radio" name="tenant_id" value="{html.escape(t["id"])}"'
        f"{' checked' if n == 0 else ''}> {html.escape(t['name'])}</label>"
        for n, t in enumerate(orgs)
    )
    return _page(
        "Choose an organisation",
        f"""<p>Signed in as {html.escape(user["name"])}.</p>
<form method="post" action="/oauth/authorize/organisation">{_hidden(txn)}{radios}
<button type="submit">Continue</button></form>""",
    )


@router.post("/authorize/organisation", response_class=HTMLResponse)
async def organisation(request: Request) -> Response:
    """Remember the chosen organisation(s), then show the scopes with Allow and Deny."""
    sandbox = _state(request)
    form = await request.form()
    txn = str(form.get("txn", ""))
    entry = _txn(sandbox, txn, "organisation")
    if entry is None:
        return _expired()
    allowed = {t["id"]: t["name"] for t in sandbox.store.login_tenants(entry["email"])}
    chosen = [str(v) for v in form.getlist("tenant_id") if str(v) in allowed]
    if not chosen:
        return _page("Choose an organisation", "<p>Choose an organisation you can access.</p>", 400)
    entry["tenants"] = chosen
    items = "".join(
        f"<li>{html.escape(SCOPE_TEXT[s])} (<code>{s}</code>)</li>" for s in entry["scopes"]
    )
    names = ", ".join(html.escape(allowed[t]) for t in chosen)
    return _page(
        "Allow access?",
        f"""<p><strong>{html.escape(CLIENT_ID)}</strong> wants to access
{names}:</p><ul>{items}</ul><form method="post" action="/oauth/authorize/decision">{_hidden(txn)}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>""",
    )


@router.post("/authorize/decision", response_class=HTMLResponse)
async def decision(request: Request, txn: str = Form(""), decision: str = Form("")) -> Response:
    """Redirect back to the app with a code (Allow) or ``access_denied`` (Deny)."""
    sandbox = _state(request)
    entry = _txn(sandbox, txn, "decision")
    if entry is None:
        return _expired()
    sandbox.authorizations.pop(txn, None)
    if decision != "allow":
        return _redirect(entry["redirect_uri"], error="access_denied", state=entry["state"])
    code = sandbox.tokens.issue_code(
        client_id=CLIENT_ID,
        redirect_uri=entry["redirect_uri"],
        challenge=entry["challenge"],
        email=entry["email"],
        tenant_ids=entry["tenants"],
        scopes=entry["scopes"],
    )
    return _redirect(entry["redirect_uri"], code=code, state=entry["state"])


def _client(request: Request, form: dict[str, str]) -> str:
    """Authenticate the confidential client (``client_secret_basic`` or ``client_secret_post``)."""
    auth = request.headers.get("authorization", "")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote(raw_id), unquote(raw_secret)
    if client_id != CLIENT_ID or not secrets.compare_digest(
        secret.encode(), CLIENT_SECRET.encode()
    ):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return client_id


def _oauth_error(sandbox: SandboxState, error: OAuthError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if error.status == 401:
        sandbox.tokens.stats["invalid_client"] += 1
        headers["WWW-Authenticate"] = 'Basic realm="nomi"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


@router.post("/token")
async def token(request: Request) -> Response:
    """Exchange a code, or rotate a refresh token (RFC 6749 form body)."""
    sandbox = _state(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        client_id = _client(request, form)
        grant_type = form.get("grant_type", "")
        key = client_id
        refresh_token = form.get("refresh_token", "")
        grant = sandbox.tokens.grant_of_refresh_token(refresh_token) if refresh_token else None
        if grant is not None:
            key = grant.id
        retry = sandbox.limits.acquire_token(key)
        if retry is not None:
            sandbox.tokens.stats["rate_limited"] += 1
            return PlainTextResponse("Too Many Requests", 429, headers={"Retry-After": str(retry)})
        if grant_type == "authorization_code":
            body = sandbox.tokens.exchange_code(
                client_id,
                form.get("code", ""),
                form.get("redirect_uri", ""),
                form.get("code_verifier", ""),
            )
        elif grant_type == "refresh_token":
            if grant is not None:
                _token_faults(sandbox, grant.id, grant.tenant_ids)
            body = sandbox.tokens.refresh(client_id, refresh_token)
        else:
            raise OAuthError("unsupported_grant_type", "use authorization_code or refresh_token")
    except OAuthError as exc:
        return _oauth_error(sandbox, exc)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _token_faults(sandbox: SandboxState, grant_id: str, tenant_ids: list[str]) -> None:
    fault = sandbox.faults.match(
        ("refresh_revoked", "consent_expired"),
        tenant_ids=tenant_ids,
        method="POST",
        path="/oauth/token",
    )
    if fault is None:
        return
    if fault.fault == "refresh_revoked":
        sandbox.tokens.revoke_grant(grant_id)
    else:
        sandbox.tokens.expire_consent(grant_id)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    """Revoke a token (RFC 7009); always 200 for a known client."""
    sandbox = _state(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        client_id = _client(request, form)
    except OAuthError as exc:
        return _oauth_error(sandbox, exc)
    sandbox.tokens.revoke_token(client_id, form.get("token", ""))
    return Response(status_code=200)
