"""``python -m sandbox.demo``: consent, read the lists, publish one expense twice with one key."""

from __future__ import annotations

import secrets
import sys
from urllib.parse import urlencode

import httpx

from sandbox.auth.tokens import CLIENT_ID, CLIENT_SECRET, SCOPES, s256
from sandbox.browser import complete_consent
from sandbox.seed import ACCOUNTING_CODES, LOGINS
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxHandle, running_sandbox

REDIRECT = "http://127.0.0.1:8400/callback"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def connect(sb: SandboxHandle, http: httpx.Client) -> dict[str, str]:
    """Complete the owner's consent through the HTML forms and exchange the code with PKCE."""
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": " ".join(SCOPES),
            "state": "demo",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    email, password = LOGINS[0][0], LOGINS[0][1]
    result = complete_consent(http, f"{sb.authorize_url}?{query}", email=email, password=password)
    response = http.post(
        sb.token_url,
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    response.raise_for_status()
    tokens: dict[str, str] = response.json()
    return tokens


def main() -> int:
    """Run the demo against a fresh sandbox and print a short summary."""
    with running_sandbox(SandboxSettings(test_mode=True)) as sb, httpx.Client(timeout=30) as http:
        _say(f"Sandbox running at {sb.base_url}")
        tokens = connect(sb, http)
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        [connection] = http.get(f"{sb.base_url}/connections", headers=auth).json()
        _say(
            f"Connected {LOGINS[0][0]} to {connection['tenantName']} "
            f"(tenant {connection['tenantId']})"
        )
        api = {**auth, "Nomi-Tenant-Id": connection["tenantId"]}
        lists = {}
        for path in ("suppliers", "customers", "categories", "tax-rates", "bank-accounts"):
            body = http.get(f"{sb.api_url}/{path}", headers=api, params={"page_size": 1000}).json()
            lists[path] = body["items"]
            _say(f"  {path:<14} {body['pagination']['item_count']:>4} active")
        category = next(c for c in lists["categories"] if c["code"] == ACCOUNTING_CODES["office"])
        rate = next(t for t in lists["tax-rates"] if t["code"] == "STD20")
        expense = {
            "kind": "company",
            "supplier_id": lists["suppliers"][0]["id"],
            "date": "2025-03-03",
            "total": "48.00",
            "tax_rate_id": rate["id"],
            "tax_amount": "8.00",
            "category_id": category["id"],
            "description": "Printer paper",
            "source_id": "demo-item-1",
        }
        key = {"Idempotency-Key": "demo-item-1:1:expense"}
        for attempt in (1, 2):
            response = http.post(f"{sb.api_url}/expenses", headers={**api, **key}, json=expense)
            replayed = response.headers.get("idempotent-replayed", "false")
            _say(
                f"POST /expenses attempt {attempt}: {response.status_code}, replayed={replayed}, "
                f"id={response.json()['id']}"
            )
        records = sb.admin.get("/records", params={"kind": "expense"}).json()
        duplicates = sb.admin.get("/duplicates").json()["expenses"]
        _say(f"Expenses in Nomi: {len(records)}; duplicates by source_id: {duplicates or 'none'}")
        return 0 if len(records) == 1 and not duplicates else 1


if __name__ == "__main__":
    raise SystemExit(main())
