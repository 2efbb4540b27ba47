"""Names, not ids: the entry of a business's mirrored Nomi lists that a person's words name.

A category or tax rate by its code, name or Nomi id; a bank account by its name, masked number
or id; a supplier or customer by its name or id. The CLI and the deployments' forms pass what
the user typed; the rules (exact match, archived entries, close matches) are in docs/rules.md,
"Naming list entries".
"""

from __future__ import annotations

import difflib
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.admin.common import NAME_CHARS, RefusedValueError, may_be_stored
from connector.rules.names import normalise_name
from connector.rules.vocabulary import ListName
from connector.store.models import (
    BankAccount,
    Business,
    Category,
    Connection,
    Customer,
    Supplier,
    TaxRate,
)
from connector.text_guard import shown

Entry = Category | TaxRate | BankAccount | Supplier | Customer
#: What clears an optional choice (a rule's category, a payment method's bank account).
CLEAR = frozenset({"", "none"})
#: Close matches an error lists.
SUGGESTIONS = 5
#: Contacts read to find close matches of a supplier or customer name (lists may be huge).
_CONTACT_CANDIDATES = 5000
_SPACES = re.compile(r"\s+")


class NameLookupError(RefusedValueError):
    """Words that name no single usable entry of a list; ``suggestions`` are close matches.

    ``subject`` names the input (``category``, ``tax rate``, a setting); ``text`` is what was
    given; ``suggestions`` describe up to five active entries (``'Office Expenses' (code 453)``).
    """

    def __init__(
        self, message: str, *, subject: str, text: str, suggestions: Sequence[str] = ()
    ) -> None:
        super().__init__(message, subject=subject)
        self.text = text
        self.suggestions = list(suggestions)


class UnknownNameError(NameLookupError):
    """No entry has that code, name or id (or the business has no such list mirrored yet)."""


class AmbiguousNameError(NameLookupError):
    """Several active entries have that code or name; ``suggestions`` lists them."""


class ArchivedEntryError(NameLookupError):
    """The only entry of that code, name or id is archived in Nomi (Nomi would refuse it)."""


@dataclass(frozen=True)
class _List:
    """One mirrored list: its table, what one entry is called, and its code-like column."""

    model: type[Entry]
    one: str
    many: str
    code: Callable[[Entry], str | None]
    ways: str = "a code, a name or a Nomi id"
    which: str = "code or Nomi id"


_LISTS: dict[ListName, _List] = {
    ListName.CATEGORIES: _List(Category, "category", "categories", lambda e: _attr(e, "code")),
    ListName.TAX_RATES: _List(TaxRate, "tax rate", "tax rates", lambda e: _attr(e, "code")),
    ListName.BANK_ACCOUNTS: _List(
        BankAccount,
        "bank account",
        "bank accounts",
        lambda e: _attr(e, "masked_number"),
        "a name, a masked number or a Nomi id",
        "masked number or Nomi id",
    ),
    ListName.SUPPLIERS: _List(
        Supplier, "supplier", "suppliers", lambda e: None, "a name or a Nomi id", "Nomi id"
    ),
    ListName.CUSTOMERS: _List(
        Customer, "customer", "customers", lambda e: None, "a name or a Nomi id", "Nomi id"
    ),
}
_CONTACTS = (ListName.SUPPLIERS, ListName.CUSTOMERS)


def _attr(entry: Entry, name: str) -> str | None:
    value = getattr(entry, name, None)
    return str(value) if value else None


def fold(text: str) -> str:
    """Words compared as a person means them: NFC, spaces collapsed and trimmed, case folded."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


def is_active(entry: Entry) -> bool:
    """Whether the entry is usable in Nomi (not archived)."""
    return (entry.status or "ACTIVE").upper() == "ACTIVE"


def label(entry: Entry) -> str:
    """An entry as a person names it: ``453 Office Expenses``, ``Business Current Account``."""
    code = _attr(entry, "code")
    return f"{code} {entry.name}" if code else entry.name


def describe(entry: Entry, *, with_id: bool = False) -> str:
    """An entry for a message: ``'Office Expenses' (code 453)``, ``'Savings' (****7730)``."""
    parts = []
    if code := _attr(entry, "code"):
        parts.append(f"code {code}")
    elif masked := _attr(entry, "masked_number"):
        parts.append(masked)
    if with_id or not parts:
        parts.append(f"id {entry.nomi_id}")
    if not is_active(entry):
        parts.append("archived")
    return f"{shown(entry.name)} ({', '.join(parts)})"


def find_entry(
    session: Session,
    business: Business,
    list_name: ListName,
    text: str,
    *,
    subject: str | None = None,
) -> Entry:
    """The active entry of a mirrored list that ``text`` names.

    Tried in order, each compared with spaces collapsed and case folded: the Nomi id (exactly),
    the code (a bank account's masked number), the name, then ``code name`` as ``label`` shows
    it; suppliers and customers also by their matching key (``docs/rules.md``, "Name
    matching"). The first kind of match that finds an active entry wins.

    Args:
        session: A session on the connector database (only read).
        business: The business whose mirror is searched.
        list_name: Which list.
        text: What the user typed.
        subject: What the input is called in errors (default: the list's entry, ``category``).

    Returns:
        The entry (a ``Category``, ``TaxRate``, ``BankAccount``, ``Supplier`` or ``Customer``).

    Raises:
        UnknownNameError: Nothing matches, or the business has no such list mirrored yet (the
            message lists up to five close matches).
        AmbiguousNameError: Several active entries match equally (they are listed).
        ArchivedEntryError: Only archived entries match.
    """
    spec = _LISTS[list_name]
    about = subject or spec.one
    connection_id = _connection_id(session, business)
    key = fold(text)
    if list_name in _CONTACTS:
        rows = _contacts_named(session, spec, connection_id, text)
    else:
        rows = _all(session, spec, connection_id)
    tiers = _tiers(spec, rows, text.strip(), key, contacts=list_name in _CONTACTS)
    for tier in tiers:
        active = [e for e in tier if is_active(e)]
        if len(active) == 1:
            return active[0]
        if active:
            listed = ", ".join(describe(e, with_id=True) for e in active[:SUGGESTIONS])
            raise AmbiguousNameError(
                f"{shown(text)} names {len(active)} {spec.many} in business '{business.slug}': "
                f"{listed}; give its {spec.which}",
                subject=about,
                text=text,
                suggestions=[describe(e, with_id=True) for e in active[:SUGGESTIONS]],
            )
    archived = next((tier for tier in tiers if tier), None)
    close = _close(session, spec, connection_id, rows, key, list_name)
    hint = f" (close matches: {', '.join(close)})" if close else ""
    if archived:
        raise ArchivedEntryError(
            f"{spec.one} {describe(archived[0])} is archived in Nomi: choose an active one{hint}",
            subject=about,
            text=text,
            suggestions=close,
        )
    if connection_id is None or not (rows or _has_any(session, spec, connection_id)):
        raise UnknownNameError(
            f"business '{business.slug}' has no {spec.many} mirrored from Nomi yet (connect it "
            f"and refresh its lists), so the {about} {shown(text)} cannot be checked",
            subject=about,
            text=text,
        )
    raise UnknownNameError(
        f"no {spec.one} {shown(text)} in business '{business.slug}'"
        + (hint or f" (nothing close: give {spec.ways} of one of its {spec.many})"),
        subject=about,
        text=text,
        suggestions=close,
    )


def nomi_id_or_none(
    session: Session,
    business: Business,
    list_name: ListName,
    text: str | None,
    *,
    subject: str | None = None,
) -> str | None:
    """The Nomi id of the entry ``text`` names (``find_entry``); ``none`` or empty gives None."""
    if text is None or fold(text) in CLEAR:
        return None
    return find_entry(session, business, list_name, text, subject=subject).nomi_id


def find_category(session: Session, business: Business, text: str) -> Category:
    """The active category a code, name or Nomi id names (``find_entry``)."""
    return cast(Category, find_entry(session, business, ListName.CATEGORIES, text))


def find_tax_rate(session: Session, business: Business, text: str) -> TaxRate:
    """The active tax rate a code, name or Nomi id names (``find_entry``)."""
    return cast(TaxRate, find_entry(session, business, ListName.TAX_RATES, text))


def find_bank_account(session: Session, business: Business, text: str) -> BankAccount:
    """The active bank account a name, masked number or Nomi id names (``find_entry``)."""
    return cast(BankAccount, find_entry(session, business, ListName.BANK_ACCOUNTS, text))


def find_contact(session: Session, business: Business, kind: str, text: str) -> Supplier | Customer:
    """The active supplier or customer (``kind``) a name or Nomi id names (``find_entry``)."""
    list_name = ListName.CUSTOMERS if kind == "customer" else ListName.SUPPLIERS
    return cast(Supplier | Customer, find_entry(session, business, list_name, text))


def list_entries(
    session: Session, business: Business, list_name: ListName, *, containing: str | None = None
) -> list[Entry]:
    """The business's mirrored entries of a list, archived ones too, by code then name.

    ``containing``: only entries whose code or name contains these words (compared folded).
    """
    spec = _LISTS[list_name]
    connection_id = _connection_id(session, business)
    if connection_id is None:
        return []
    rows = _all(session, spec, connection_id)
    if containing:
        wanted = fold(containing)
        rows = [e for e in rows if any(wanted in fold(s) for s in (e.name, spec.code(e) or ""))]
    return sorted(rows, key=lambda e: (spec.code(e) is None, spec.code(e) or "", fold(e.name)))


def labels(session: Session, business: Business, list_name: ListName) -> dict[str, str]:
    """Nomi id -> ``label`` of every mirrored entry of a list (to show stored ids in words)."""
    return {e.nomi_id: label(e) for e in list_entries(session, business, list_name)}


# --- reading the mirror -----------------------------------------------------------------------


def _connection_id(session: Session, business: Business) -> uuid.UUID | None:
    return session.exec(select(Connection.id).where(Connection.business_id == business.id)).first()


def _all(session: Session, spec: _List, connection_id: uuid.UUID | None) -> list[Entry]:
    if connection_id is None:
        return []
    model = spec.model
    return _rows(session, select(model).where(model.connection_id == connection_id))


def _rows(session: Session, query: Any) -> list[Entry]:
    """The entries a query selects."""
    return cast(list[Entry], list(session.exec(query)))


def _has_any(session: Session, spec: _List, connection_id: uuid.UUID) -> bool:
    model = spec.model
    found = session.exec(select(model.id).where(model.connection_id == connection_id).limit(1))
    return found.first() is not None


def _contacts_named(
    session: Session, spec: _List, connection_id: uuid.UUID | None, text: str
) -> list[Entry]:
    """The suppliers or customers whose id is ``text`` or whose matching key is its key."""
    if connection_id is None or not may_be_stored(text, limit=NAME_CHARS):
        return []
    model = cast(type[Supplier] | type[Customer], spec.model)
    clauses = [col(model.nomi_id) == text.strip()]
    if key := normalise_name(text):
        clauses.append(col(model.name_normalised) == key)
    query = select(model).where(model.connection_id == connection_id, sa.or_(*clauses))
    return _rows(session, query)


def _tiers(
    spec: _List, rows: Sequence[Entry], exact: str, key: str, *, contacts: bool
) -> list[list[Entry]]:
    """The entries matching by id, by code, by name, by label (contacts: by matching key)."""
    tiers = [
        [e for e in rows if e.nomi_id == exact],
        [e for e in rows if (code := spec.code(e)) is not None and fold(code) == key],
        [e for e in rows if fold(e.name) == key],
        [e for e in rows if fold(label(e)) == key],
    ]
    if contacts:
        wanted = normalise_name(exact)
        tiers.append([e for e in rows if wanted and getattr(e, "name_normalised", None) == wanted])
    return tiers


def _close(
    session: Session,
    spec: _List,
    connection_id: uuid.UUID | None,
    rows: Sequence[Entry],
    key: str,
    list_name: ListName,
) -> list[str]:
    """Up to ``SUGGESTIONS`` active entries whose name or code is close to ``key``, described."""
    if connection_id is None or not key:
        return []
    pool = list(rows)
    if list_name in _CONTACTS:
        pool = _contact_candidates(session, spec, connection_id, key)
    active = [e for e in pool if is_active(e)]
    return [describe(e) for e in close_matches(key, active, spec.code)]


def close_matches(
    key: str, entries: Iterable[Entry], code: Callable[[Entry], str | None] = lambda e: None
) -> list[Entry]:
    """Entries whose folded name or code contains ``key`` or is close to it (difflib)."""
    by_word: dict[str, list[Entry]] = {}
    for entry in entries:
        for word in (entry.name, code(entry)):
            if word:
                by_word.setdefault(fold(word), []).append(entry)
    found: list[Entry] = []
    containing = [w for w in by_word if key in w or (len(w) > 2 and w in key)]
    words = containing + difflib.get_close_matches(key, list(by_word), n=SUGGESTIONS, cutoff=0.6)
    for word in words:
        for entry in by_word[word]:
            if entry not in found:
                found.append(entry)
    return found[:SUGGESTIONS]


def _contact_candidates(
    session: Session, spec: _List, connection_id: uuid.UUID, key: str
) -> list[Entry]:
    """Contacts worth comparing with ``key``: those sharing its first letters (lists are big)."""
    model = cast(type[Supplier] | type[Customer], spec.model)
    query = select(model).where(model.connection_id == connection_id)
    prefix = normalise_name(key)[:2]
    if prefix and may_be_stored(prefix, limit=NAME_CHARS):
        query = query.where(col(model.name_normalised).startswith(prefix, autoescape=True))
    return _rows(session, query.limit(_CONTACT_CANDIDATES))


def label_of(
    session: Session, business: Business, list_name: ListName, nomi_id: str | None
) -> str | None:
    """The ``label`` of the entry with this Nomi id (the id itself when the mirror lacks it)."""
    if nomi_id is None:
        return None
    model = _LISTS[list_name].model
    connection_id = _connection_id(session, business)
    found = _rows(
        session,
        select(model).where(model.connection_id == connection_id, model.nomi_id == nomi_id),
    )
    return label(found[0]) if found else nomi_id
