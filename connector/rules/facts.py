"""What the rules engine reads and returns: an item's facts, a business's context, the resolution.

Frozen dataclasses, no I/O: ``ItemFacts`` (one item), ``RulesContext`` (settings, Nomi lists, rules,
payment methods of one business), ``Resolution`` (what ``connector.rules.engine.resolve`` decided,
with the ``Source`` of each value).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from connector.rules.names import normalise_name
from connector.rules.vocabulary import (
    CREDITABLE_KINDS,
    DOCUMENT_TYPES,
    ITEM_KINDS,
    DocumentType,
    ItemStatus,
)


class Source(StrEnum):
    """Where a resolved value came from (stored per field in ``Resolution.sources``)."""

    ITEM = "item"
    LINE = "line"
    LINES = "lines"
    NOMI_SUPPLIER_RULE = "nomi_supplier_rule"
    USER_RULE = "user_rule"
    DEFAULT_ZERO_TAX = "default_zero_tax"
    DEFAULT_TAX = "default_tax"
    NONE = "none"
    EXTRACTED = "extracted"
    COMPUTED = "computed"
    NOMI_MATCH = "nomi_match"
    USER_MAPPING = "user_mapping"
    NEW_CONTACT = "new_contact"
    CONFIRMED_NEW_CONTACT = "confirmed_new_contact"
    PAYMENT_METHOD = "payment_method"
    SETTING = "setting"


@dataclass(frozen=True, slots=True)
class TaxRateRef:
    """A Nomi tax rate: ``applies_to`` is PURCHASES, SALES or BOTH; ``rate`` is a percentage."""

    nomi_id: str
    name: str
    rate: Decimal
    applies_to: str = "BOTH"
    active: bool = True


@dataclass(frozen=True, slots=True)
class CategoryRef:
    """A Nomi category (chart of accounts entry): ``type`` is EXPENSE or INCOME."""

    nomi_id: str
    name: str
    type: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class ContactRef:
    """A Nomi supplier or customer."""

    nomi_id: str
    name: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class BankAccountRef:
    """A Nomi bank account."""

    nomi_id: str
    name: str
    active: bool = True
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class OrganisationRef:
    """The Nomi organisation of the connection: its base currency and lock date (if any)."""

    base_currency: str
    lock_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethodRef:
    """One of our payment methods, optionally linked to a Nomi bank account (by Nomi id)."""

    id: str
    name: str
    bank_account_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContactRule:
    """A supplier or customer rule; ``source`` is ``user`` or ``nomi`` (imported supplier rate)."""

    contact_kind: str  # "supplier" | "customer"
    name: str
    source: str = "user"
    category_id: str | None = None
    tax_rate_id: str | None = None
    payment_method_id: str | None = None
    description: str | None = None
    paid: bool | None = None
    auto_publish: bool | None = None


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """The nine connection settings of PRODUCT.md (tax settings hold Nomi tax rate ids)."""

    warn_new_supplier: bool = False
    publish_images_with_expense_claims: bool = False
    use_tax_list: bool = False
    use_supplier_tax_rates: bool = False
    default_tax_costs: str | None = None
    default_zero_tax_code_costs: str | None = None
    default_tax_sales: str | None = None
    default_zero_tax_code_sales: str | None = None
    auto_publish: bool = False


def _by_name(contacts: Iterable[ContactRef]) -> dict[str, list[ContactRef]]:
    index: dict[str, list[ContactRef]] = {}
    for contact in contacts:
        key = normalise_name(contact.name)
        if key:  # a name with no letter or digit matches nothing (issue 15)
            index.setdefault(key, []).append(contact)
    return index


@dataclass(frozen=True)
class RulesContext:
    """All ``resolve`` reads about one business: settings, Nomi lists, rules, payment methods.

    Build it once per batch; the lookup indexes are computed on construction. When several rules
    share a contact kind, source and normalised name, the later one in ``rules`` wins.
    """

    settings: RulesSettings
    suppliers: tuple[ContactRef, ...] = ()
    customers: tuple[ContactRef, ...] = ()
    categories: tuple[CategoryRef, ...] = ()
    tax_rates: tuple[TaxRateRef, ...] = ()
    bank_accounts: tuple[BankAccountRef, ...] = ()
    rules: tuple[ContactRule, ...] = ()
    payment_methods: tuple[PaymentMethodRef, ...] = ()
    organisation: OrganisationRef | None = None
    _categories: dict[str, CategoryRef] = field(init=False, repr=False, compare=False)
    _tax_rates: dict[str, TaxRateRef] = field(init=False, repr=False, compare=False)
    _banks: dict[str, BankAccountRef] = field(init=False, repr=False, compare=False)
    _methods: dict[str, PaymentMethodRef] = field(init=False, repr=False, compare=False)
    _contacts: dict[str, dict[str, list[ContactRef]]] = field(init=False, repr=False, compare=False)
    _contact_ids: dict[str, dict[str, ContactRef]] = field(init=False, repr=False, compare=False)
    _rules: dict[tuple[str, str, str], ContactRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "_categories", {c.nomi_id: c for c in self.categories})
        put(self, "_tax_rates", {t.nomi_id: t for t in self.tax_rates})
        put(self, "_banks", {b.nomi_id: b for b in self.bank_accounts})
        put(self, "_methods", {m.id: m for m in self.payment_methods})
        put(
            self,
            "_contacts",
            {"supplier": _by_name(self.suppliers), "customer": _by_name(self.customers)},
        )
        put(
            self,
            "_contact_ids",
            {
                "supplier": {c.nomi_id: c for c in self.suppliers},
                "customer": {c.nomi_id: c for c in self.customers},
            },
        )
        put(
            self,
            "_rules",
            {
                (r.contact_kind, r.source, key): r
                for r in self.rules
                if (key := normalise_name(r.name))
            },
        )

    def category(self, nomi_id: str) -> CategoryRef | None:
        """The category with this Nomi id, if listed."""
        return self._categories.get(nomi_id)

    def tax_rate(self, nomi_id: str) -> TaxRateRef | None:
        """The tax rate with this Nomi id, if listed."""
        return self._tax_rates.get(nomi_id)

    def bank_account(self, nomi_id: str) -> BankAccountRef | None:
        """The bank account with this Nomi id, if listed."""
        return self._banks.get(nomi_id)

    def payment_method(self, method_id: str) -> PaymentMethodRef | None:
        """Our payment method with this id, if it exists."""
        return self._methods.get(method_id)

    def contacts_named(self, contact_kind: str, name: str) -> list[ContactRef]:
        """Nomi contacts of this kind whose normalised name equals that of ``name``."""
        key = normalise_name(name)
        return self._contacts[contact_kind].get(key, []) if key else []

    def contact(self, contact_kind: str, nomi_id: str) -> ContactRef | None:
        """The Nomi contact of this kind with this id, if listed."""
        return self._contact_ids[contact_kind].get(nomi_id)

    def rule(self, contact_kind: str, source: str, names: Iterable[str]) -> ContactRule | None:
        """The first rule of this kind and source matching any of ``names`` (normalised)."""
        for name in names:
            key = normalise_name(name)
            found = self._rules.get((contact_kind, source, key)) if key else None
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class DuplicateRef:
    """An earlier item of the business this item may duplicate (found by assessment).

    ``same`` says what matched: ``supplier, date and total`` or ``supplier and reference``;
    ``nomi_record_id`` is its Nomi record when it was published.
    """

    external_id: str
    same: str
    nomi_record_id: str | None = None


@dataclass(frozen=True, slots=True)
class LineFacts:
    """One line of a document: its amounts as extracted and the user's edits on the line.

    ``net`` and ``tax`` are the line's amounts on the document (``tax`` ``None`` when none was
    extracted); their sum is the line's gross, which resolution keeps. ``category_id`` and
    ``tax_rate_id`` are line-level edits (Nomi ids) that win over the item's.
    """

    net: Decimal
    tax: Decimal | None = None
    description: str | None = None
    category_id: str | None = None
    tax_rate_id: str | None = None

    @property
    def gross(self) -> Decimal:
        """Net plus the extracted tax (none counts as 0)."""
        return self.net + (self.tax or Decimal(0))


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the engine knows about one item: extracted data plus the user's item-level edits.

    ``category_id`` and ``tax_rate_id`` are item-level edits (Nomi ids); ``paid`` and
    ``payment_method_id`` are ``None`` when the item leaves them to rules. ``confirmed_new_contact``
    and ``mapped_contact_id`` are the user's answer to the new-supplier warning.
    """

    kind: str
    contact_name: str | None = None
    date: dt.date | None = None
    due_date: dt.date | None = None
    currency: str | None = None
    total: Decimal | None = None
    extracted_tax: Decimal | None = None
    description: str | None = None
    category_id: str | None = None
    tax_rate_id: str | None = None
    paid: bool | None = None
    payment_method_id: str | None = None
    claimant: str | None = None
    has_image: bool = False
    confirmed_new_contact: bool = False
    mapped_contact_id: str | None = None
    line_count: int = 1
    document_type: str = DocumentType.INVOICE
    credits_external_id: str | None = None
    exchange_rate: Decimal | None = None
    lines: tuple[LineFacts, ...] = ()
    #: Earlier items of the business with the same supplier and date and total, or reference
    #: (not archived, pair not released): the items ring finds them, the engine holds the item.
    possible_duplicates: tuple[DuplicateRef, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ITEM_KINDS:
            raise ValueError(
                f"unknown item kind {self.kind!r}; expected one of {sorted(ITEM_KINDS)}"
            )
        if self.document_type not in DOCUMENT_TYPES:
            raise ValueError(
                f"unknown document type {self.document_type!r}; expected one of "
                f"{sorted(DOCUMENT_TYPES)}"
            )

    @property
    def is_credit_note(self) -> bool:
        """True for a credit note (a supplier one for costs, a customer one for sales)."""
        return self.document_type == DocumentType.CREDIT_NOTE

    @property
    def creditable(self) -> bool:
        """True when the item's kind may be a credit note (costs and sales, not claims)."""
        return self.kind in CREDITABLE_KINDS


@dataclass(frozen=True)
class LineResolution:
    """What one line publishes as: ``number`` counts from 1; net + tax is the line's gross.

    ``sources`` maps ``category``, ``tax_rate`` and ``tax_amount`` to the ``Source`` that gave
    them (``line`` for an edit on the line, ``item`` for the item's edit, then as for items).
    """

    number: int
    description: str | None
    category_id: str | None
    tax_rate_id: str | None
    net: Decimal | None
    tax: Decimal | None
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    """The outcome of ``resolve``: ``ready`` (publishable as described) or ``review`` (see reasons).

    ``contact_id`` is an existing Nomi contact; otherwise ``new_contact_name`` names the contact to
    create first. ``bank_account_id`` is the payment's bank account for sales and
    ``paid_from_bank_account_id`` for costs; it is set only when the item publishes as paid.
    ``notes`` are non-blocking remarks (e.g. "published unpaid"); ``sources`` maps each resolved
    field to the ``Source`` that gave it. An item with lines has one ``LineResolution`` each in
    ``lines``; then ``net`` and ``tax`` are their sums and ``category_id`` / ``tax_rate_id`` are
    set only when every line has the same one. ``exchange_rate`` is the document's rate when it
    publishes in a currency other than the organisation's base currency (``None``: Nomi's rate).
    """

    status: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    contact_id: str | None = None
    new_contact_name: str | None = None
    category_id: str | None = None
    tax_rate_id: str | None = None
    net: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None
    paid: bool = False
    bank_account_id: str | None = None
    payment_method_id: str | None = None
    description: str | None = None
    attach_image: bool = False
    auto_publish: bool = False
    document_type: str = DocumentType.INVOICE
    currency: str | None = None
    exchange_rate: Decimal | None = None
    lines: tuple[LineResolution, ...] = ()

    @property
    def is_ready(self) -> bool:
        """True when nothing blocks publishing."""
        return self.status == ItemStatus.READY


@dataclass(frozen=True)
class Resolved:
    """A resolution the caller already made (under the same ``ctx``), and the facts it read."""

    facts: ItemFacts
    resolution: Resolution
