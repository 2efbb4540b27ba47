"""The OAuth flow, completed by following the HTML forms, and the token rules."""

from __future__ import annotations

import httpx

from sandbox.auth.tokens import CLIENT_ID, CLIENT_SECRET
from sandbox.browser import complete_consent, forms_of
from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import (
    ACCOUNTANT,
    BSD,
    HCC,
    NWJ,
    OSY,
    OWNER,
    PPL,
    REDIRECT,
    authorize_url,
    exchange,
    get_code,
    refresh,
    token_request,
)


def test_owner_consent_issues_tokens_for_one_organisation(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 1800
    assert tokens["refresh_token"].startswith("nrt_")
    connections = httpx.get(
        f"{sandbox.base_url}/connections",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ).json()
    assert [(c["tenantId"], c["tenantName"]) for c in connections] == [
        (BSD, "Bright Smile Dental Ltd")
    ]


def test_accountant_sees_five_organisations_and_chooses_one(sandbox: SandboxHandle) -> None:
    with httpx.Client() as http:
        page = http.get(authorize_url(sandbox, "v" * 43))
        form = forms_of(page.text)[0]
        assert form.action == "/oauth/authorize/login"
        assert {"txn", "email", "password"} <= set(form.fields)
        orgs = http.post(
            f"{sandbox.base_url}/oauth/authorize/login",
            data={**form.fields, "email": ACCOUNTANT[0], "password": ACCOUNTANT[1]},
        )
    assert sorted(forms_of(orgs.text)[0].radios["tenant_id"]) == sorted([BSD, HCC, NWJ, OSY, PPL])
    code, verifier = get_code(sandbox, login=ACCOUNTANT, tenant=NWJ)
    access = exchange(sandbox, code, verifier).json()["access_token"]
    connections = httpx.get(
        f"{sandbox.base_url}/connections", headers={"Authorization": f"Bearer {access}"}
    ).json()
    assert [c["tenantId"] for c in connections] == [NWJ]


def test_wrong_password_shows_the_sign_in_form_again(sandbox: SandboxHandle) -> None:
    with httpx.Client() as http:
        form = forms_of(http.get(authorize_url(sandbox, "v" * 43)).text)[0]
        again = http.post(
            f"{sandbox.base_url}/oauth/authorize/login",
            data={**form.fields, "email": OWNER[0], "password": "wrong"},
        )
    assert "Incorrect email or password" in again.text
    assert forms_of(again.text)[0].action == "/oauth/authorize/login"


def test_deny_redirects_with_access_denied_and_the_state(sandbox: SandboxHandle) -> None:
    with httpx.Client() as http:
        query = complete_consent(
            http,
            authorize_url(sandbox, "v" * 43, state="abc"),
            email=OWNER[0],
            password=OWNER[1],
            decision="deny",
        )
    assert query == {"error": "access_denied", "state": "abc"}


def test_authorize_refuses_a_foreign_redirect_and_requires_pkce(sandbox: SandboxHandle) -> None:
    bad = httpx.get(
        sandbox.authorize_url,
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "https://evil.example/cb",
            "scope": "contacts.read",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert bad.status_code == 400
    plain = httpx.get(
        sandbox.authorize_url,
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "contacts.read",
            "state": "s",
            "code_challenge": "x" * 43,
            "code_challenge_method": "plain",
        },
    )
    assert plain.status_code == 302
    assert "error=invalid_request" in plain.headers["location"]


def test_wrong_pkce_verifier_is_invalid_grant(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    response = exchange(sandbox, code, verifier + "x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_code_works_once_and_its_replay_revokes_the_tokens(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    first = exchange(sandbox, code, verifier)
    assert first.status_code == 200
    second = exchange(sandbox, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert refresh(sandbox, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_expires_after_code_ttl(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    sandbox.admin.post("/clock/advance", json={"seconds": 601})
    assert exchange(sandbox, code, verifier).json()["error"] == "invalid_grant"


def test_client_secret_post_works_and_a_wrong_secret_is_invalid_client(
    sandbox: SandboxHandle,
) -> None:
    code, verifier = get_code(sandbox)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
    }
    wrong = httpx.post(sandbox.token_url, data={**data, "client_secret": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert "nope" not in wrong.text
    right = httpx.post(sandbox.token_url, data={**data, "client_secret": CLIENT_SECRET})
    assert right.status_code == 200


def test_refresh_rotates_and_a_replay_inside_the_grace_returns_the_same_pair(
    sandbox: SandboxHandle,
) -> None:
    code, verifier = get_code(sandbox)
    first = exchange(sandbox, code, verifier).json()
    rotated = refresh(sandbox, first["refresh_token"]).json()
    assert rotated["refresh_token"] != first["refresh_token"]
    sandbox.admin.post("/clock/advance", json={"seconds": 1700})
    replay = refresh(sandbox, first["refresh_token"]).json()
    assert replay == rotated
    stats = sandbox.admin.get("/tokens").json()
    assert (stats["issued"], stats["refreshed"], stats["replayed"]) == (1, 1, 1)


def test_a_replay_after_the_grace_is_invalid_grant_but_the_new_token_works(
    sandbox: SandboxHandle,
) -> None:
    sandbox.admin.patch("/settings", json={"refresh_grace": 5})
    code, verifier = get_code(sandbox)
    first = exchange(sandbox, code, verifier).json()
    rotated = refresh(sandbox, first["refresh_token"]).json()
    sandbox.admin.post("/clock/advance", json={"seconds": 6})
    late = refresh(sandbox, first["refresh_token"])
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
    assert refresh(sandbox, rotated["refresh_token"]).status_code == 200


def test_a_refresh_token_unused_past_the_idle_ttl_expires(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    first = exchange(sandbox, code, verifier).json()
    sandbox.admin.post("/clock/advance", json={"seconds": 60 * 86400 + 1})
    response = refresh(sandbox, first["refresh_token"])
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token expired after being unused",
    }


def test_consent_expires_after_a_year_even_with_regular_refreshes(sandbox: SandboxHandle) -> None:
    sandbox.admin.patch("/settings", json={"consent_ttl": 100, "access_token_ttl": 1000})
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    sandbox.admin.post("/clock/advance", json={"seconds": 60})
    tokens = refresh(sandbox, tokens["refresh_token"]).json()
    sandbox.admin.post("/clock/advance", json={"seconds": 41})
    gone = refresh(sandbox, tokens["refresh_token"])
    assert gone.json()["error"] == "invalid_grant"
    assert "consent expired" in gone.json()["error_description"]
    api = httpx.get(
        f"{sandbox.api_url}/suppliers",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Nomi-Tenant-Id": BSD},
    )
    assert api.status_code == 401
    assert api.json()["detail"].startswith("TokenExpired")


def test_an_expired_access_token_is_401_token_expired(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    access = exchange(sandbox, code, verifier).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}", "Nomi-Tenant-Id": BSD}
    assert httpx.get(f"{sandbox.api_url}/suppliers", headers=headers).status_code == 200
    sandbox.admin.post("/clock/advance", json={"seconds": 1801})
    response = httpx.get(f"{sandbox.api_url}/suppliers", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("TokenExpired")


def test_revoking_the_refresh_token_ends_the_connection(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    revoked = httpx.post(
        sandbox.revoke_url, data={"token": tokens["refresh_token"]}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert revoked.status_code == 200
    assert refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    api = httpx.get(
        f"{sandbox.base_url}/connections",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert api.status_code == 401


def test_no_offline_access_means_no_refresh_token(sandbox: SandboxHandle) -> None:
    code, verifier = get_code(sandbox, scopes=("contacts.read",))
    tokens = exchange(sandbox, code, verifier).json()
    assert "refresh_token" not in tokens


def test_the_token_endpoint_is_rate_limited_in_plain_text(sandbox: SandboxHandle) -> None:
    sandbox.admin.patch("/settings", json={"token_per_minute": 2})
    code, verifier = get_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    first = refresh(sandbox, tokens["refresh_token"])
    second = refresh(sandbox, first.json()["refresh_token"])
    third = refresh(sandbox, second.json()["refresh_token"])
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert third.headers["content-type"].startswith("text/plain")
    assert int(third.headers["retry-after"]) >= 1


def test_unknown_grant_type_is_rejected(sandbox: SandboxHandle) -> None:
    response = token_request(sandbox, grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
