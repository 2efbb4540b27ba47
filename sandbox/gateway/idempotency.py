"""``Idempotency-Key`` semantics: kept per tenant for a day on the sandbox clock.

Same key and same request replays the stored response; a different request is 422; a key whose first
request is still being handled is 409. Responses that say nothing about the write (401, 403, 429,
5xx) are not stored, so a retry after them runs again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum

from sandbox.clock import Clock
from sandbox.settings import SandboxSettings
from sandbox.store import Store

NOT_STORED = frozenset({401, 403, 408, 429})


class Outcome(Enum):
    """What to do with a request carrying a key."""

    NEW = "new"
    REPLAY = "replay"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"


@dataclass
class Stored:
    """A response kept under a key."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def request_hash(method: str, path: str, query: str, content_type: str, body: bytes) -> str:
    """A fingerprint of a request; JSON bodies are compared by meaning, not by whitespace."""
    payload = body
    if "json" in content_type:
        try:
            payload = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            payload = body
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


@dataclass
class IdempotencyKeys:
    """Keys in flight (memory) and completed responses (the store)."""

    store: Store
    clock: Clock
    settings: SandboxSettings
    _in_flight: set[tuple[str, str]] = field(default_factory=set)

    def begin(self, tenant: str, key: str, fingerprint: str) -> tuple[Outcome, Stored | None]:
        """Classify a keyed request; for NEW the key is marked in flight until ``finish``."""
        if (tenant, key) in self._in_flight:
            return Outcome.IN_FLIGHT, None
        row = self.store.conn.execute(
            "SELECT * FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant, key)
        ).fetchone()
        if (
            row is not None
            and self.clock.time() - row["created_at"] > self.settings.idempotency_ttl
        ):
            self.store.conn.execute(
                "DELETE FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant, key)
            )
            row = None
        if row is not None:
            if row["request_hash"] != fingerprint:
                return Outcome.MISMATCH, None
            headers = [(k, v) for k, v in json.loads(row["headers"])]
            return Outcome.REPLAY, Stored(row["status"], headers, row["body"])
        self._in_flight.add((tenant, key))
        return Outcome.NEW, None

    def finish(self, tenant: str, key: str, fingerprint: str, response: Stored | None) -> None:
        """Release the key, storing the response when it is one to replay."""
        self._in_flight.discard((tenant, key))
        if response is None or response.status >= 500 or response.status in NOT_STORED:
            return
        self.store.conn.execute(
            "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                tenant,
                key,
                fingerprint,
                response.status,
                json.dumps(response.headers),
                response.body,
                self.clock.time(),
            ),
        )
