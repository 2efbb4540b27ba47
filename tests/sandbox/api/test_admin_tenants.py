"""Extra organisations for many-business tests: added by the admin API, granted to a sign-in."""

from __future__ import annotations

import httpx

from sandbox.auth.tokens import s256
from sandbox.browser import complete_consent
from sandbox.seed import LOGINS
from sandbox.testing import running_sandbox

ACCOUNTANT, PASSWORD = LOGINS[1][0], LOGINS[1][1]


def test_an_added_organisation_is_seeded_and_can_be_granted_by_its_sign_in() -> None:
    with running_sandbox() as sb, httpx.Client(timeout=30) as http:
        created = sb.admin.post(
            "/tenants", json={"name": "Client 007 Ltd", "grant_to": [ACCOUNTANT]}
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        verifier = "v" * 64
        query = httpx.QueryParams(
            response_type="code",
            client_id="nomi-connector-sandbox",
            redirect_uri="http://127.0.0.1:9/cb",
            scope="offline_access contacts.read settings.read expenses.write sales.write",
            state="s1",
            code_challenge=s256(verifier),
            code_challenge_method="S256",
        )
        answer = complete_consent(
            http, f"{sb.authorize_url}?{query}", email=ACCOUNTANT, password=PASSWORD, tenant_id=tid
        )
        token = http.post(
            sb.token_url,
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": "http://127.0.0.1:9/cb",
                "code_verifier": verifier,
                "client_id": "nomi-connector-sandbox",
                "client_secret": "sandbox-client-secret",
            },
        ).json()["access_token"]
        suppliers = http.get(
            f"{sb.api_url}/suppliers",
            headers={"Authorization": f"Bearer {token}", "Nomi-Tenant-Id": tid},
        )
        assert suppliers.status_code == 200
        assert suppliers.json()["items"], "the new organisation is seeded with suppliers"


def test_adding_an_existing_name_or_granting_an_unknown_sign_in_is_refused() -> None:
    with running_sandbox() as sb:
        assert sb.admin.post("/tenants", json={"name": "Dup Ltd"}).status_code == 201
        assert sb.admin.post("/tenants", json={"name": "Dup Ltd"}).status_code == 409
        refused = sb.admin.post("/tenants", json={"name": "X Ltd", "grant_to": ["nobody@x.test"]})
        assert refused.status_code == 400
        assert "nobody@x.test" in refused.json()["detail"] + refused.json()["title"]
