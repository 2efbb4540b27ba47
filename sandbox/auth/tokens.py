"""OAuth token logic: consents (grants), single-use codes, rotating refresh tokens, access checks.

Tokens are random strings; the store keeps only their SHA-256, except the pair a rotated refresh
token replays inside the grace window (the sandbox must be able to return it again).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.api.problems import ProblemError
from sandbox.clock import Clock, iso
from sandbox.settings import SandboxSettings
from sandbox.store import Store

CLIENT_ID = "nomi-connector-sandbox"
CLIENT_SECRET = "sandbox-client-secret"
SCOPES = ("offline_access", "contacts.read", "settings.read", "expenses.write", "sales.write")


class OAuthError(Exception):
    """An RFC 6749 error from the token or revocation endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass
class Grant:
    """A consent: one sign-in, the organisations it granted, the scopes, its expiry."""

    id: str
    client_id: str
    email: str
    tenant_ids: list[str]
    scopes: list[str]
    auth_event_id: str
    created_at: float
    consent_expires_at: float
    revoked: bool


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    email: str
    tenant_ids: list[str]
    scopes: list[str]
    expires_at: float
    used: bool = False
    grant_id: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    raw = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class TokenService:
    """Issues, rotates, checks and revokes tokens on the sandbox clock."""

    store: Store
    clock: Clock
    settings: SandboxSettings
    stats: Counter[str] = field(default_factory=Counter)
    _codes: dict[str, _Code] = field(default_factory=dict)

    # codes -----------------------------------------------------------------------------------
    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        challenge: str,
        email: str,
        tenant_ids: list[str],
        scopes: list[str],
    ) -> str:
        """A new single-use authorization code."""
        code = "nac_" + secrets.token_urlsafe(24)
        self._codes[_digest(code)] = _Code(
            client_id,
            redirect_uri,
            challenge,
            email,
            tenant_ids,
            scopes,
            self.clock.time() + self.settings.code_ttl,
        )
        self.stats["codes"] += 1
        return code

    def exchange_code(
        self, client_id: str, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        """Trade a code (PKCE-checked) for a token pair.

        Raises:
            OAuthError: ``invalid_grant`` for an unknown, expired, reused or mismatched code.
        """
        entry = self._codes.get(_digest(code))
        if entry is None or entry.client_id != client_id:
            raise self._invalid_grant("unknown authorization code")
        if entry.used:
            if entry.grant_id:  # RFC 6749 10.5: a replayed code revokes what it issued
                self.revoke_grant(entry.grant_id)
            raise self._invalid_grant("authorization code already used")
        if self.clock.time() > entry.expires_at:
            raise self._invalid_grant("authorization code expired")
        if entry.redirect_uri != redirect_uri:
            raise self._invalid_grant("redirect_uri does not match the authorization request")
        if not verifier or not secrets.compare_digest(s256(verifier), entry.challenge):
            raise self._invalid_grant("PKCE verification failed")
        entry.used = True
        grant = self._create_grant(entry)
        entry.grant_id = grant.id
        self.stats["issued"] += 1
        return self._issue(grant)

    def _create_grant(self, entry: _Code) -> Grant:
        now = self.clock.time()
        grant = Grant(
            str(uuid.uuid4()),
            entry.client_id,
            entry.email,
            entry.tenant_ids,
            entry.scopes,
            str(uuid.uuid4()),
            now,
            now + self.settings.consent_ttl,
            False,
        )
        self.store.conn.execute(
            "INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                grant.id,
                grant.client_id,
                grant.email,
                json.dumps(grant.tenant_ids),
                " ".join(grant.scopes),
                grant.auth_event_id,
                grant.created_at,
                grant.consent_expires_at,
            ),
        )
        return grant

    # tokens ----------------------------------------------------------------------------------
    def _issue(self, grant: Grant) -> dict[str, Any]:
        now = self.clock.time()
        access = "nat_" + secrets.token_urlsafe(32)
        self.store.conn.execute(
            "INSERT INTO access_tokens VALUES (?, ?, ?, 0)",
            (_digest(access), grant.id, now + self.settings.access_token_ttl),
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.settings.access_token_ttl),
            "scope": " ".join(grant.scopes),
            "consent_expires_at": iso(grant.consent_expires_at),
        }
        if "offline_access" in grant.scopes:
            refresh = "nrt_" + secrets.token_urlsafe(32)
            self.store.conn.execute(
                "INSERT INTO refresh_tokens VALUES (?, ?, ?, NULL, NULL, 0)",
                (_digest(refresh), grant.id, now),
            )
            body["refresh_token"] = refresh
            body["refresh_token_expires_in"] = int(self.settings.refresh_idle_ttl)
        return body

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        """Rotate a refresh token; a replay inside the grace returns the pair already issued.

        Raises:
            OAuthError: ``invalid_grant`` when the token is unknown, revoked, idle-expired, reused
                after the grace, or its consent expired.
        """
        row = self.store.conn.execute(
            "SELECT * FROM refresh_tokens WHERE hash = ?", (_digest(refresh_token),)
        ).fetchone()
        if row is None:
            raise self._invalid_grant("unknown refresh token")
        grant = self.grant(row["grant_id"])
        now = self.clock.time()
        if grant is None or grant.client_id != client_id:
            raise self._invalid_grant("unknown refresh token")
        if grant.revoked or row["revoked"]:
            raise self._invalid_grant("refresh token revoked")
        if now >= grant.consent_expires_at:
            raise self._invalid_grant("consent expired: the user must connect again")
        if row["rotated_at"] is not None:
            if now <= row["rotated_at"] + self.settings.refresh_grace:
                self.stats["replayed"] += 1
                return dict(json.loads(row["replay"]))
            raise self._invalid_grant("refresh token already used")
        if now >= row["issued_at"] + self.settings.refresh_idle_ttl:
            raise self._invalid_grant("refresh token expired after being unused")
        body = self._issue(grant)
        self.store.conn.execute(
            "UPDATE refresh_tokens SET rotated_at = ?, replay = ? WHERE hash = ?",
            (now, json.dumps(body), row["hash"]),
        )
        self.stats["refreshed"] += 1
        return body

    def grant_of_refresh_token(self, refresh_token: str) -> Grant | None:
        """The consent a refresh token belongs to (for faults), or None."""
        row = self.store.conn.execute(
            "SELECT grant_id FROM refresh_tokens WHERE hash = ?", (_digest(refresh_token),)
        ).fetchone()
        return self.grant(row[0]) if row else None

    def revoke_token(self, client_id: str, token: str) -> None:
        """RFC 7009: a refresh token revokes its whole consent, an access token only itself."""
        digest = _digest(token)
        row = self.store.conn.execute(
            "SELECT grant_id FROM refresh_tokens WHERE hash = ?", (digest,)
        ).fetchone()
        if row is not None:
            grant = self.grant(row[0])
            if grant is not None and grant.client_id == client_id:
                self.revoke_grant(grant.id)
            return
        self.store.conn.execute("UPDATE access_tokens SET revoked = 1 WHERE hash = ?", (digest,))
        self.stats["revoked"] += 1

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke a consent and every token issued under it."""
        self.store.conn.execute("UPDATE grants SET revoked = 1 WHERE id = ?", (grant_id,))
        self.stats["revoked"] += 1

    def expire_consent(self, grant_id: str) -> None:
        """Make a consent expire now (fault injection)."""
        self.store.conn.execute(
            "UPDATE grants SET consent_expires_at = ? WHERE id = ?", (self.clock.time(), grant_id)
        )

    def grant(self, grant_id: str) -> Grant | None:
        """A consent by id, or None."""
        row = self.store.conn.execute("SELECT * FROM grants WHERE id = ?", (grant_id,)).fetchone()
        if row is None:
            return None
        return Grant(
            row["id"],
            row["client_id"],
            row["email"],
            json.loads(row["tenant_ids"]),
            row["scopes"].split(),
            row["auth_event_id"],
            row["created_at"],
            row["consent_expires_at"],
            bool(row["revoked"]),
        )

    def set_tenants(self, grant_id: str, tenant_ids: list[str]) -> None:
        """Change the organisations a consent covers (disconnecting one)."""
        self.store.conn.execute(
            "UPDATE grants SET tenant_ids = ? WHERE id = ?", (json.dumps(tenant_ids), grant_id)
        )

    def authenticate(self, authorization: str | None, *, count: bool = True) -> Grant:
        """The consent behind a ``Bearer`` access token (``count``: add refusals to the stats).

        Raises:
            ProblemError: 401 (``TokenExpired`` for an expired token or consent).
        """
        if not authorization or not authorization.lower().startswith("bearer "):
            raise self._unauthorized("InvalidToken: a Bearer access token is required", count)
        row = self.store.conn.execute(
            "SELECT grant_id, expires_at, revoked FROM access_tokens WHERE hash = ?",
            (_digest(authorization[7:].strip()),),
        ).fetchone()
        grant = self.grant(row["grant_id"]) if row else None
        if row is None or grant is None or row["revoked"] or grant.revoked:
            raise self._unauthorized("InvalidToken: the access token is not valid", count)
        now = self.clock.time()
        if now >= row["expires_at"]:
            raise self._unauthorized("TokenExpired: the access token has expired", count)
        if now >= grant.consent_expires_at:
            raise self._unauthorized("TokenExpired: the consent has expired", count)
        return grant

    def _unauthorized(self, detail: str, count: bool) -> ProblemError:
        if count:
            self.stats["rejected"] += 1
        return ProblemError(
            401,
            detail,
            code="unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def _invalid_grant(self, description: str) -> OAuthError:
        self.stats["invalid_grant"] += 1
        return OAuthError("invalid_grant", description)
