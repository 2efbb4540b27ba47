"""A business at a glance for ops: connection, settings, rules, lists, items waiting, last runs.

No Prefect. ``load_overview`` reads one business's rows; ``overview_markdown`` renders them as the
markdown of the business's ``overview-<slug>`` artifact, which sync and publish keep current.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.history.reasons import reason_kind
from connector.rules.vocabulary import RETRYABLE_ERROR_CODES, ItemStatus
from connector.store.base import table_of
from connector.store.history_tables import PublishRun, SyncRun
from connector.store.models import (
    BankAccount,
    Business,
    Category,
    Connection,
    ConnectionSettings,
    ContactRule,
    Item,
    PaymentMethod,
    TaxRate,
)

#: Items waiting that the overview names one by one (the rest are in the grouped counts).
NAMED_ITEMS = 20
#: Settings shown, in the order ``nomi-connector settings show`` prints them.
SETTINGS = (
    "auto_publish",
    "warn_new_supplier",
    "publish_images_with_expense_claims",
    "use_tax_list",
    "use_supplier_tax_rates",
    "default_tax_costs",
    "default_zero_tax_code_costs",
    "default_tax_sales",
    "default_zero_tax_code_sales",
)


@dataclass(frozen=True)
class Waiting:
    """One item waiting (in review, or Ready and not yet published) and why."""

    external_id: str
    status: str
    why: str


@dataclass
class Overview:
    """What ops need to know about one business, read in one go."""

    slug: str
    name: str
    connection: Connection | None = None
    settings: ConnectionSettings | None = None
    rules: list[ContactRule] = field(default_factory=list)
    payment_methods: list[PaymentMethod] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    tax_rates: list[TaxRate] = field(default_factory=list)
    bank_accounts: dict[str, str] = field(default_factory=dict)
    waiting_by_reason: list[tuple[str, int]] = field(default_factory=list)
    waiting_total: int = 0
    waiting: list[Waiting] = field(default_factory=list)
    last_syncs: list[SyncRun] = field(default_factory=list)
    last_publish: PublishRun | None = None


def load_overview(session: Session, business: Business) -> Overview:
    """Read the business's overview (only reads; nothing is written)."""
    view = Overview(slug=business.slug, name=business.name)
    view.payment_methods = list(
        session.exec(
            select(PaymentMethod)
            .where(PaymentMethod.business_id == business.id)
            .order_by(col(PaymentMethod.name))
        )
    )
    _load_items(session, business.id, view)
    view.last_publish = session.exec(
        select(PublishRun)
        .where(PublishRun.business_id == business.id)
        .order_by(col(PublishRun.started_at).desc())
        .limit(1)
    ).first()
    connection = session.exec(select(Connection).where(Connection.business_id == business.id))
    view.connection = connection.first()
    if view.connection is None:
        return view
    cid = view.connection.id
    view.settings = session.exec(
        select(ConnectionSettings).where(ConnectionSettings.connection_id == cid)
    ).first()
    view.rules = list(
        session.exec(
            select(ContactRule)
            .where(ContactRule.connection_id == cid)
            .order_by(col(ContactRule.kind), col(ContactRule.name_normalised))
        )
    )
    view.categories = list(
        session.exec(
            select(Category)
            .where(Category.connection_id == cid, Category.status == "ACTIVE")
            .order_by(col(Category.code), col(Category.name))
        )
    )
    view.tax_rates = list(
        session.exec(
            select(TaxRate)
            .where(TaxRate.connection_id == cid, TaxRate.status == "ACTIVE")
            .order_by(col(TaxRate.code), col(TaxRate.name))
        )
    )
    accounts = session.exec(select(BankAccount).where(BankAccount.connection_id == cid))
    view.bank_accounts = {
        a.nomi_id: f"{a.name} ({a.masked_number})" if a.masked_number else a.name for a in accounts
    }
    view.last_syncs = _last_syncs(session, cid)
    return view


def _load_items(session: Session, business_id: uuid.UUID, view: Overview) -> None:
    """Items waiting: counts grouped by why (reason kind, Nomi's code, Ready) and the first ones."""
    items = table_of(Item)
    waiting = items.c.status.in_([ItemStatus.REVIEW, ItemStatus.READY])
    query = (
        sa.select(items.c.status, items.c.review_reasons, items.c.last_error_code)
        .where(items.c.business_id == business_id, waiting)
        .execution_options(yield_per=1000)
    )
    counts: Counter[str] = Counter()
    for row in session.execute(query):
        view.waiting_total += 1
        for kind in _kinds(row.status, row.review_reasons, row.last_error_code):
            counts[kind] += 1
    view.waiting_by_reason = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    first = session.execute(
        sa.select(
            items.c.external_id,
            items.c.status,
            items.c.review_reasons,
            items.c.last_error_code,
            items.c.last_error_message,
        )
        .where(items.c.business_id == business_id, waiting)
        .order_by(items.c.external_id)
        .limit(NAMED_ITEMS)
    )
    view.waiting = [
        Waiting(r.external_id, r.status, _why(r.status, r.review_reasons, r.last_error_code))
        for r in first
    ]


def _kinds(status: str, reasons: list[str] | None, code: str | None) -> set[str]:
    """The groups an item waiting counts in (an item in review counts once per reason kind)."""
    if status == ItemStatus.REVIEW:
        return {f"in review: {reason_kind(r)}" for r in reasons or []} or {"in review"}
    if code is None:
        return {"ready: waits for the next publish"}
    if code in RETRYABLE_ERROR_CODES:
        return {f"ready: given back ({code}), tried again by the next run"}
    return {f"ready: rejected by Nomi ({code}), waits for an edit or publish-items"}


def _why(status: str, reasons: list[str] | None, code: str | None) -> str:
    """Why one item waits, in full (its review reasons, or how it stands when Ready)."""
    if status == ItemStatus.REVIEW:
        return "; ".join(reasons or []) or "not assessed yet"
    return next(iter(_kinds(status, reasons, code)))


def _last_syncs(session: Session, connection_id: uuid.UUID) -> list[SyncRun]:
    """The last sync run of each list of the connection."""
    rows = session.exec(
        select(SyncRun)
        .where(SyncRun.connection_id == connection_id)
        .order_by(col(SyncRun.started_at).desc())
        .limit(50)
    )
    last: dict[str, SyncRun] = {}
    for run in rows:
        last.setdefault(run.list_name, run)
    return [last[name] for name in sorted(last)]


def overview_markdown(view: Overview, *, now: datetime | None = None) -> str:
    """The overview as markdown: one section per subject, tables where rows repeat."""
    now = now or datetime.now(UTC)
    parts = [
        f"# {_cell(view.name)} (`{view.slug}`)\n\n_As of {_when(now)}._",
        _connection(view, now),
        _settings(view),
        _table(
            "Contact rules",
            ["kind", "name", "category", "tax rate", "auto-publish", "source"],
            [
                [
                    r.kind,
                    r.name,
                    _label(view.categories, r.category_nomi_id),
                    _label(view.tax_rates, r.tax_rate_nomi_id),
                    _flag(r.auto_publish),
                    r.source,
                ]
                for r in view.rules
            ],
        ),
        _table(
            "Payment methods",
            ["name", "bank account"],
            [[m.name, _account(view, m.bank_account_nomi_id)] for m in view.payment_methods],
        ),
        _table(
            "Categories",
            ["code", "name", "type"],
            [[c.code or "", c.name, c.type] for c in view.categories],
        ),
        _table(
            "Tax rates",
            ["code", "name", "rate", "applies to"],
            [[t.code or "", t.name, f"{t.rate:g}", t.applies_to] for t in view.tax_rates],
        ),
        _waiting(view),
        _runs(view),
    ]
    return "\n\n".join(parts) + "\n"


def _connection(view: Overview, now: datetime) -> str:
    c = view.connection
    if c is None:
        return "## Connection\n\nNot connected to Nomi: run **connect-to-nomi**."
    lines = [f"- status: **{c.status}**", f"- organisation: {_cell(c.organisation_name or '')}"]
    if c.consent_expires_at is not None:
        expires = _aware(c.consent_expires_at)
        days = (expires - now).days
        lines.append(f"- consent expires: {_when(expires)} ({days} days)")
    lines += [f"- last verified: {_when(c.last_verified_at)}"]
    if c.last_error:
        lines.append(f"- last error: {_cell(c.last_error)}")
    return "## Connection\n\n" + "\n".join(lines)


def _settings(view: Overview) -> str:
    s = view.settings
    if s is None:
        return "## Settings\n\nNo settings row."
    rows = []
    for name in SETTINGS:
        value = getattr(s, name)
        tax_default = name.startswith("default_")  # stored as the tax rate's Nomi id
        rows.append([name, _label(view.tax_rates, value) if tax_default else _flag(value)])
    return _table("Settings", ["setting", "value"], rows)


def _waiting(view: Overview) -> str:
    if not view.waiting_total:
        return "## Items waiting\n\nNone: every item is published or archived."
    grouped = _table("", ["why", "items"], [[k, str(n)] for k, n in view.waiting_by_reason])
    first = _table(
        "", ["item", "status", "why"], [[w.external_id, w.status, w.why] for w in view.waiting]
    )
    shown = min(NAMED_ITEMS, view.waiting_total)
    return (
        f"## Items waiting ({view.waiting_total})\n{grouped}\n\n"
        f"First {shown} by external id:\n{first}"
    )


def _runs(view: Overview) -> str:
    p = view.last_publish
    publish = (
        f"- publish: {_when(p.started_at)} ({p.trigger}): published {p.published}, failed "
        f"{p.failed}, held {p.held}, skipped {p.skipped}"
        if p is not None
        else "- publish: never"
    )
    syncs = [
        f"- sync {r.list_name} ({r.mode}): {_when(r.started_at)}, {r.status}, fetched {r.fetched}"
        + (f", error: {_cell(r.error)}" if r.error else "")
        for r in view.last_syncs
    ] or ["- sync: never"]
    return "## Last runs\n\n" + "\n".join([publish, *syncs])


def _table(title: str, head: list[str], rows: list[list[str]]) -> str:
    heading = f"## {title}\n" if title else ""
    if not rows:
        return f"{heading}\nNone."
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return f"{heading}\n" + "\n".join(lines)


def _label(entries: list[Category] | list[TaxRate], nomi_id: str | None) -> str:
    """``code name`` of the mirrored entry with this Nomi id ('' when none is set)."""
    if nomi_id is None:
        return ""
    for entry in entries:
        if entry.nomi_id == nomi_id:
            return f"{entry.code} {entry.name}" if entry.code else entry.name
    return nomi_id


def _account(view: Overview, nomi_id: str | None) -> str:
    """The bank account a payment method is paid from, by name ('(not linked)' when none)."""
    if nomi_id is None:
        return "(not linked)"
    return view.bank_accounts.get(nomi_id, nomi_id)


def _flag(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(moment: datetime | None) -> str:
    return _aware(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _cell(text: str) -> str:
    """Text safe inside markdown (one line, no table breaks)."""
    return " ".join(str(text).split()).replace("|", "\\|")
