"""Persistence of the sandbox in SQLite (``:memory:`` or a file), touched only from the event loop.

Every Nomi object (reference lists and created records alike) is one row of ``objects``: indexed
columns for the queries the API needs and the whole document as JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, short_code TEXT, currency TEXT NOT NULL,
    lock_date TEXT, created_at TEXT NOT NULL, vat_registered INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT);
CREATE TABLE IF NOT EXISTS logins (
    email TEXT PRIMARY KEY, password TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS login_tenants (
    email TEXT NOT NULL, tenant_id TEXT NOT NULL, PRIMARY KEY (email, tenant_id));
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, source_id TEXT,
    ukey TEXT, status TEXT, updated_at TEXT NOT NULL, version INTEGER NOT NULL,
    api INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS objects_list ON objects (tenant_id, kind, updated_at, id);
CREATE INDEX IF NOT EXISTS objects_source ON objects (tenant_id, kind, source_id);
CREATE INDEX IF NOT EXISTS objects_ukey ON objects (tenant_id, kind, ukey);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status INTEGER,
    headers TEXT, body BLOB, created_at REAL NOT NULL, PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, email TEXT NOT NULL, tenant_ids TEXT NOT NULL,
    scopes TEXT NOT NULL, auth_event_id TEXT NOT NULL, created_at REAL NOT NULL,
    consent_expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS access_tokens (
    hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, issued_at REAL NOT NULL,
    rotated_at REAL, replay TEXT, revoked INTEGER NOT NULL DEFAULT 0);
"""

Row = dict[str, Any]
#: Kinds whose ``number`` is unique per organisation (kept in the ``ukey`` column).
NUMBERED = frozenset({"sales_invoice", "customer_credit_note"})
#: Columns added to ``tenants`` after the first release (a file database gains them on open).
_TENANT_COLUMNS = {
    "vat_registered": "INTEGER NOT NULL DEFAULT 1",
    "updated_at": "TEXT",
}


class Store:
    """The sandbox database: tenants, sign-ins, objects, idempotency records and tokens."""

    def __init__(self, path: str = ":memory:") -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(tenants)")}
        for name, decl in _TENANT_COLUMNS.items():
            if name not in have:
                self.conn.execute(f"ALTER TABLE tenants ADD COLUMN {name} {decl}")

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def is_empty(self) -> bool:
        """True when no organisation exists yet (a fresh database)."""
        return self.conn.execute("SELECT 1 FROM tenants LIMIT 1").fetchone() is None

    # tenants and sign-ins -------------------------------------------------------------------
    def add_tenant(self, tenant: Row) -> None:
        """Insert an organisation."""
        row = {"vat_registered": True, "updated_at": tenant["created_at"], **tenant}
        self.conn.execute(
            "INSERT INTO tenants (id, name, short_code, currency, lock_date, created_at, "
            "vat_registered, updated_at) VALUES (:id, :name, :short_code, :currency, :lock_date, "
            ":created_at, :vat_registered, :updated_at)",
            {**row, "vat_registered": int(bool(row["vat_registered"]))},
        )

    def tenants(self) -> list[Row]:
        """Every organisation."""
        return [_tenant(r) for r in self.conn.execute("SELECT * FROM tenants ORDER BY name")]

    def tenant(self, tenant_id: str) -> Row | None:
        """One organisation, or None."""
        row = self.conn.execute("SELECT * FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        return _tenant(row) if row else None

    def set_lock_date(self, tenant_id: str, lock_date: str | None, updated_at: str) -> None:
        """Set or clear an organisation's lock date."""
        self.conn.execute(
            "UPDATE tenants SET lock_date = ?, updated_at = ? WHERE id = ?",
            (lock_date, updated_at, tenant_id),
        )

    def set_vat_registered(self, tenant_id: str, registered: bool, updated_at: str) -> None:
        """Mark an organisation VAT registered or not."""
        self.conn.execute(
            "UPDATE tenants SET vat_registered = ?, updated_at = ? WHERE id = ?",
            (int(registered), updated_at, tenant_id),
        )

    def set_base_currency(self, tenant_id: str, currency: str, updated_at: str) -> None:
        """Change an organisation's base currency (documents keep the base total they had)."""
        self.conn.execute(
            "UPDATE tenants SET currency = ?, updated_at = ? WHERE id = ?",
            (currency, updated_at, tenant_id),
        )

    def add_login(self, email: str, password: str, name: str, tenant_ids: Iterable[str]) -> None:
        """Insert a sign-in and the organisations it may grant."""
        self.conn.execute("INSERT INTO logins VALUES (?, ?, ?)", (email, password, name))
        self.conn.executemany(
            "INSERT INTO login_tenants VALUES (?, ?)", [(email, t) for t in tenant_ids]
        )

    def check_login_exists(self, email: str) -> bool:
        """True when a sign-in with this email exists."""
        return (
            self.conn.execute("SELECT 1 FROM logins WHERE email = ?", (email,)).fetchone()
            is not None
        )

    def grant_login(self, email: str, tenant_id: str) -> bool:
        """Let a sign-in grant one more organisation; False when the sign-in is unknown."""
        if not self.check_login_exists(email):
            return False
        self.conn.execute("INSERT OR IGNORE INTO login_tenants VALUES (?, ?)", (email, tenant_id))
        return True

    def check_login(self, email: str, password: str) -> Row | None:
        """The sign-in when the password matches, else None."""
        row = self.conn.execute(
            "SELECT email, name, password FROM logins WHERE email = ?", (email.strip().lower(),)
        ).fetchone()
        if row is None or row["password"] != password:
            return None
        return {"email": row["email"], "name": row["name"]}

    def login_tenants(self, email: str) -> list[Row]:
        """The organisations a sign-in may grant, by name."""
        rows = self.conn.execute(
            "SELECT t.* FROM tenants t JOIN login_tenants l ON l.tenant_id = t.id "
            "WHERE l.email = ? ORDER BY t.name",
            (email,),
        )
        return [_tenant(r) for r in rows]

    # objects ----------------------------------------------------------------------------------
    def put(
        self, kind: str, tenant_id: str, doc: Row, *, api: bool = False, ukey: str | None = None
    ) -> None:
        """Insert or replace one object document (``ukey`` defaults to a numbered kind's number)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO objects (id, tenant_id, kind, source_id, ukey, status, "
            "updated_at, version, api, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._row(kind, tenant_id, doc, api, ukey),
        )

    def put_many(self, kind: str, tenant_id: str, docs: Sequence[Row]) -> None:
        """Bulk-insert seeded objects in one transaction."""
        rows = [self._row(kind, tenant_id, d, False, None) for d in docs]
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany(
                "INSERT INTO objects (id, tenant_id, kind, source_id, ukey, status, updated_at, "
                "version, api, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @staticmethod
    def _row(kind: str, tenant_id: str, doc: Row, api: bool, ukey: str | None) -> tuple[Any, ...]:
        if ukey is None and kind in NUMBERED:
            ukey = doc.get("number")
        return (
            doc["id"],
            tenant_id,
            kind,
            doc.get("source_id"),
            ukey,
            doc.get("status"),
            doc["updated_at"],
            doc["version"],
            int(api),
            json.dumps(doc, separators=(",", ":")),
        )

    def get(self, kind: str, tenant_id: str, object_id: str) -> Row | None:
        """One object of a tenant, or None."""
        row = self.conn.execute(
            "SELECT data FROM objects WHERE id = ? AND tenant_id = ? AND kind = ?",
            (object_id, tenant_id, kind),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def is_api_created(self, object_id: str) -> bool:
        """True when the object was created through the API."""
        row = self.conn.execute("SELECT api FROM objects WHERE id = ?", (object_id,)).fetchone()
        return bool(row and row[0])

    def find(
        self, kind: str, tenant_id: str, *, source_id: str | None = None, ukey: str | None = None
    ) -> list[Row]:
        """Objects of a tenant by ``source_id`` (newest first) or by unique key (invoice number)."""
        sql, arg = ("source_id = ?", source_id) if source_id is not None else ("ukey = ?", ukey)
        rows = self.conn.execute(
            f"SELECT data FROM objects WHERE tenant_id = ? AND kind = ? AND {sql} "  # noqa: S608
            "ORDER BY json_extract(data, '$.created_at') DESC, updated_at DESC, id DESC",
            (tenant_id, kind, arg),
        )
        return [json.loads(r[0]) for r in rows]

    def applying_to(self, kind: str, tenant_id: str, applies_to_id: str) -> list[Row]:
        """Credit notes of a kind whose ``applies_to_id`` is the given document."""
        rows = self.conn.execute(
            "SELECT data FROM objects WHERE tenant_id = ? AND kind = ? "
            "AND json_extract(data, '$.applies_to_id') = ?",
            (tenant_id, kind, applies_to_id),
        )
        return [json.loads(r[0]) for r in rows]

    def page(
        self,
        kind: str,
        tenant_id: str,
        *,
        updated_since: str | None,
        include_archived: bool,
        page: int,
        page_size: int,
    ) -> tuple[list[Row], int]:
        """One page of a list ordered by ``(updated_at, id)`` and the total count."""
        where = "tenant_id = ? AND kind = ?"
        args: list[Any] = [tenant_id, kind]
        if updated_since is not None:
            where += " AND updated_at >= ?"
            args.append(updated_since)
        if not include_archived:
            where += " AND (status IS NULL OR status != 'ARCHIVED')"
        total = self.conn.execute(f"SELECT COUNT(*) FROM objects WHERE {where}", args).fetchone()[0]  # noqa: S608
        rows = self.conn.execute(
            f"SELECT data FROM objects WHERE {where} ORDER BY updated_at, id LIMIT ? OFFSET ?",  # noqa: S608
            [*args, page_size, (page - 1) * page_size],
        )
        return [json.loads(r[0]) for r in rows], total

    def records(
        self, kind: str | None, tenant_id: str | None, *, api_only: bool = True
    ) -> list[Row]:
        """Objects for inspection, optionally one kind or one tenant."""
        where, args = ["1 = 1"], []
        if api_only:
            where.append("api = 1")
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if tenant_id:
            where.append("tenant_id = ?")
            args.append(tenant_id)
        rows = self.conn.execute(
            f"SELECT tenant_id, kind, data FROM objects WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY updated_at, id",
            args,
        )
        return [{"tenant_id": r[0], "kind": r[1], **json.loads(r[2])} for r in rows]

    def duplicates(self, kind: str) -> dict[str, int]:
        """``source_id`` values held by more than one live (not voided) object of a kind."""
        rows = self.conn.execute(
            "SELECT source_id, COUNT(*) FROM objects WHERE kind = ? AND source_id IS NOT NULL "
            "AND (status IS NULL OR status != 'VOIDED') "
            "GROUP BY tenant_id, source_id HAVING COUNT(*) > 1",
            (kind,),
        )
        return {r[0]: r[1] for r in rows}

    def count(self, kind: str, tenant_id: str) -> int:
        """How many objects of a kind a tenant has."""
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM objects WHERE kind = ? AND tenant_id = ?", (kind, tenant_id)
            ).fetchone()[0]
        )


def _tenant(row: sqlite3.Row) -> Row:
    """An organisation row as a dict (``vat_registered`` a bool, ``updated_at`` never empty)."""
    tenant = dict(row)
    tenant["vat_registered"] = bool(tenant.get("vat_registered", 1))
    tenant["updated_at"] = tenant.get("updated_at") or tenant["created_at"]
    return tenant
