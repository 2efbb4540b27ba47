"""The rules engine: what an item publishes to Nomi as, and where each value came from.

Pure functions over frozen dataclasses, no I/O. ``resolve(item, ctx)`` applies PRODUCT.md
("Item lifecycle", "Which value wins", "Publishing to Nomi") and returns a ``Resolution``: ``ready``
with the contact, category, tax rate, net/tax/total, payment and image decision, or ``review`` with
reasons a user can read. Every choice the spec leaves open is written down in docs/rules.md.

Contact names match through ``connector.rules.names.normalise_name`` (the key the database stores in
``name_normalised``). Ids: every reference (category, tax rate, contact, bank account) is a Nomi
id string; payment methods are ours and use our id as a string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from connector.rules.money import PENNY, split_gross, tax_in_gross, to_money
from connector.rules.names import normalise_name

COST = "cost"
SALES = "sales"
EXPENSE_CLAIM = "expense_claim"
ITEM_KINDS = frozenset({COST, SALES, EXPENSE_CLAIM})
READY = "ready"
REVIEW = "review"


class Source(StrEnum):
    """Where a resolved value came from (stored per field in ``Resolution.sources``)."""

    ITEM = "item"
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


_SOURCE_WORDS = {
    Source.ITEM: "set on the item",
    Source.NOMI_SUPPLIER_RULE: "from the Nomi supplier tax rate",
    Source.USER_RULE: "from the rule",
    Source.DEFAULT_ZERO_TAX: "the default tax code for a zero tax amount",
    Source.DEFAULT_TAX: "the default tax",
}


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

    def __post_init__(self) -> None:
        if self.kind not in ITEM_KINDS:
            raise ValueError(
                f"unknown item kind {self.kind!r}; expected one of {sorted(ITEM_KINDS)}"
            )


@dataclass(frozen=True)
class Resolution:
    """The outcome of ``resolve``: ``ready`` (publishable as described) or ``review`` (see reasons).

    ``contact_id`` is an existing Nomi contact; otherwise ``new_contact_name`` names the contact to
    create first. ``bank_account_id`` is the payment's bank account for sales and
    ``paid_from_bank_account_id`` for costs; it is set only when the item publishes as paid.
    ``notes`` are non-blocking remarks (e.g. "published unpaid"); ``sources`` maps each resolved
    field to the ``Source`` that gave it.
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

    @property
    def is_ready(self) -> bool:
        """True when nothing blocks publishing."""
        return self.status == READY


@dataclass
class _Draft:
    """Mutable scratch state of one resolution."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _contact_kind(kind: str) -> str:
    return "customer" if kind == SALES else "supplier"


def _fits(kind: str, applies_to: str) -> bool:
    wanted = "SALES" if kind == SALES else "PURCHASES"
    return applies_to.upper() in (wanted, "BOTH")


def _kind_words(kind: str) -> str:
    return {COST: "a cost item", SALES: "a sales item", EXPENSE_CLAIM: "an expense claim"}[kind]


def _origin(source: Source, contact_kind: str, rule_name: str | None) -> str:
    if source == Source.USER_RULE and rule_name:
        return f"from the {contact_kind} rule for '{rule_name}'"
    if source == Source.NOMI_SUPPLIER_RULE and rule_name:
        return f"from the Nomi tax rate of supplier '{rule_name}'"
    return _SOURCE_WORDS.get(source, str(source))


def _resolve_contact(
    item: ItemFacts, ctx: RulesContext, draft: _Draft
) -> tuple[ContactRef | None, str | None]:
    """Return (existing Nomi contact, name of a contact to create), recording source and reasons."""
    ck = _contact_kind(item.kind)
    name = (item.contact_name or "").strip()
    if item.mapped_contact_id is not None:
        mapped = ctx.contact(ck, item.mapped_contact_id)
        if mapped is None or not mapped.active:
            state = "no longer exists" if mapped is None else "is archived"
            draft.reasons.append(
                f"the {ck} this item was mapped to {state} in Nomi: map it to another {ck}"
            )
            return None, None
        draft.sources["contact"] = Source.USER_MAPPING
        return mapped, None
    if not name:
        if item.kind == SALES:
            draft.reasons.append("no customer: enter the customer's name on the item")
        draft.sources["contact"] = Source.NONE
        return None, None
    if not normalise_name(name):
        draft.reasons.append(
            f"the {ck} name '{name}' has no letters or digits to match on: correct the name or "
            f"map the item to an existing {ck}"
        )
        draft.sources["contact"] = Source.NONE
        return None, None
    matches = ctx.contacts_named(ck, name)
    active = [c for c in matches if c.active]
    if len(active) > 1:
        exact = [c for c in active if c.name.strip().casefold() == name.casefold()]
        active = exact if len(exact) == 1 else active
    if len(active) == 1:
        draft.sources["contact"] = Source.NOMI_MATCH
        return active[0], None
    if len(active) > 1:
        draft.reasons.append(f"several Nomi {ck}s match '{name}': map the item to one of them")
        return None, None
    if matches:
        draft.reasons.append(
            f"{ck} '{name}' is archived in Nomi: restore it there or map the item to another {ck}"
        )
        return None, None
    if item.confirmed_new_contact:
        draft.sources["contact"] = Source.CONFIRMED_NEW_CONTACT
        return None, name
    if ck == "supplier" and ctx.settings.warn_new_supplier:
        draft.reasons.append(
            f"new supplier '{name}' is not in Nomi: confirm creating it or map the item to an "
            "existing supplier"
        )
        return None, None
    draft.sources["contact"] = Source.NEW_CONTACT
    return None, name


def _resolve_category(
    item: ItemFacts, user_rule: ContactRule | None, ck: str, ctx: RulesContext, draft: _Draft
) -> str | None:
    if item.category_id is not None:
        chosen, source = item.category_id, Source.ITEM
    elif user_rule is not None and user_rule.category_id is not None:
        chosen, source = user_rule.category_id, Source.USER_RULE
    else:
        draft.sources["category"] = Source.NONE
        name = (item.contact_name or "").strip()
        hint = f" or add a {ck} rule for '{name}'" if name else ""
        draft.reasons.append(f"no category: set one on the item{hint}")
        return None
    draft.sources["category"] = source
    origin = _origin(source, ck, user_rule.name if user_rule else None)
    category = ctx.category(chosen)
    wanted = "INCOME" if item.kind == SALES else "EXPENSE"
    if category is None:
        draft.reasons.append(
            f"category {chosen!r} ({origin}) does not exist in Nomi: choose another"
        )
    elif not category.active:
        draft.reasons.append(
            f"category '{category.name}' ({origin}) is archived in Nomi: choose another"
        )
    elif category.type.upper() != wanted:
        draft.reasons.append(
            f"category '{category.name}' ({origin}) is not an {wanted.lower()} category and cannot "
            f"be used on {_kind_words(item.kind)}"
        )
    else:
        return chosen
    return None


def _pick_tax_rate(
    item: ItemFacts,
    user_rule: ContactRule | None,
    nomi_rule: ContactRule | None,
    settings: RulesSettings,
    draft: _Draft,
) -> tuple[str | None, Source]:
    """Apply the precedence table (ranks 1 to 6) to choose a tax rate id and its source."""
    if item.tax_rate_id is not None:
        if settings.use_tax_list:
            return item.tax_rate_id, Source.ITEM
        draft.notes.append("the tax rate set on the item is ignored because 'Use tax list' is off")
    if settings.use_supplier_tax_rates and nomi_rule is not None and nomi_rule.tax_rate_id:
        return nomi_rule.tax_rate_id, Source.NOMI_SUPPLIER_RULE
    if settings.use_tax_list and user_rule is not None and user_rule.tax_rate_id:
        return user_rule.tax_rate_id, Source.USER_RULE
    sales = item.kind == SALES
    zero_code = (
        settings.default_zero_tax_code_sales if sales else settings.default_zero_tax_code_costs
    )
    if item.extracted_tax is not None and item.extracted_tax == 0 and zero_code:
        return zero_code, Source.DEFAULT_ZERO_TAX
    default = settings.default_tax_sales if sales else settings.default_tax_costs
    if default:
        return default, Source.DEFAULT_TAX
    return None, Source.NONE


def _validate_tax_rate(
    rate_id: str, origin: str, kind: str, ctx: RulesContext, draft: _Draft
) -> TaxRateRef | None:
    rate = ctx.tax_rate(rate_id)
    if rate is None:
        draft.reasons.append(
            f"tax rate {rate_id!r} ({origin}) does not exist in Nomi: choose another"
        )
    elif not rate.active:
        draft.reasons.append(
            f"tax rate '{rate.name}' ({origin}) is archived in Nomi: choose another"
        )
    elif not _fits(kind, rate.applies_to):
        only = rate.applies_to.lower()
        draft.reasons.append(
            f"tax rate '{rate.name}' ({origin}) applies to {only} only and cannot be used on "
            f"{_kind_words(kind)}"
        )
    else:
        return rate
    return None


#: The end of the note saying an extracted tax was not published because the rate is 0%
#: (publishing shows these notes on the run's summary).
ZERO_RATE_NOTE = " is a 0% rate: 0 tax is published"


def _amounts(
    item: ItemFacts, rate: TaxRateRef | None, draft: _Draft
) -> tuple[Decimal, Decimal, Decimal]:
    """Return (net, tax, total) for a known total; net + tax == total to the penny."""
    assert item.total is not None
    total = to_money(item.total)
    extracted = None if item.extracted_tax is None else to_money(item.extracted_tax)
    if rate is None:
        draft.sources["tax_amount"] = Source.NONE
        if extracted:
            draft.notes.append(f"extracted tax {extracted} is not published: no tax rate applies")
        net, tax = split_gross(total, Decimal(0))
        return net, tax, total
    if rate.rate == 0:  # zero, exempt, no VAT: no tolerance, whatever was extracted
        matched = extracted is not None and extracted == 0
        draft.sources["tax_amount"] = Source.EXTRACTED if matched else Source.COMPUTED
        if extracted:
            draft.notes.append(
                f"extracted tax {extracted} is not published: '{rate.name}'{ZERO_RATE_NOTE}"
            )
        net, tax = split_gross(total, Decimal(0))
        return net, tax, total
    computed = tax_in_gross(total, rate.rate)
    tolerance = PENNY * max(1, item.line_count)
    if extracted is not None and abs(extracted - computed) <= tolerance:
        tax, draft.sources["tax_amount"] = extracted, Source.EXTRACTED
    else:
        tax, draft.sources["tax_amount"] = computed, Source.COMPUTED
        if extracted is not None:
            draft.notes.append(
                f"extracted tax {extracted} does not match '{rate.name}' on {total}; "
                f"publishing the computed {computed}"
            )
    net, tax = split_gross(total, tax)
    return net, tax, total


def _resolve_payment(
    item: ItemFacts, rule: ContactRule | None, ctx: RulesContext, draft: _Draft
) -> tuple[bool, str | None, str | None]:
    """Return (paid, bank account id, payment method id) as the item publishes."""
    paid, draft.sources["paid"] = item.paid, Source.ITEM
    if paid is None and rule is not None and rule.paid is not None:
        paid, draft.sources["paid"] = rule.paid, Source.USER_RULE
    if paid is None:
        paid, draft.sources["paid"] = False, Source.NONE
    method_id, draft.sources["payment_method"] = item.payment_method_id, Source.ITEM
    if method_id is None and rule is not None and rule.payment_method_id is not None:
        method_id, draft.sources["payment_method"] = rule.payment_method_id, Source.USER_RULE
    if method_id is None:
        draft.sources["payment_method"] = Source.NONE
    if not paid:
        return False, None, method_id
    if item.kind == EXPENSE_CLAIM:
        draft.notes.append("expense claims are published unpaid: the claimant is reimbursed later")
        return False, None, method_id
    method = ctx.payment_method(method_id) if method_id is not None else None
    if method is None:
        draft.notes.append("marked paid but has no payment method: published unpaid")
        return False, None, method_id
    if method.bank_account_id is None:
        draft.notes.append(
            f"marked paid but payment method '{method.name}' is not linked to a Nomi bank "
            "account: published unpaid"
        )
        return False, None, method_id
    bank = ctx.bank_account(method.bank_account_id)
    if bank is None or not bank.active:
        state = "no longer exists" if bank is None else "is archived"
        draft.reasons.append(
            f"payment method '{method.name}' is linked to a Nomi bank account that {state}: "
            "link it to an active bank account or mark the item unpaid"
        )
        return False, None, method_id
    draft.sources["bank_account"] = Source.PAYMENT_METHOD
    return True, bank.nomi_id, method_id


def resolve(item: ItemFacts, ctx: RulesContext) -> Resolution:
    """Resolve what ``item`` publishes to Nomi as, under the rules and lists in ``ctx``.

    Args:
        item: The item's extracted data and the user's item-level edits.
        ctx: The business's connection settings, Nomi reference lists, rules and payment methods.

    Returns:
        A ``Resolution``: ``ready`` with every value to publish and its source, or ``review`` with
        the reasons that block it (partial values are still filled in where known).
    """
    draft = _Draft()
    ck = _contact_kind(item.kind)
    if item.total is None:
        draft.reasons.append("no total: enter the item's total")
    if item.date is None:
        draft.reasons.append("no date: enter the item's date")
    if item.kind == EXPENSE_CLAIM and not (item.claimant or "").strip():
        draft.reasons.append("expense claim without a claimant: choose who is claiming")

    contact, new_name = _resolve_contact(item, ctx, draft)
    names = [n for n in ((item.contact_name or "").strip(), contact.name if contact else "") if n]
    user_rule = ctx.rule(ck, "user", names)
    nomi_rule = ctx.rule(ck, "nomi", names)

    category_id = _resolve_category(item, user_rule, ck, ctx, draft)
    rate_id, rate_source = _pick_tax_rate(item, user_rule, nomi_rule, ctx.settings, draft)
    draft.sources["tax_rate"] = rate_source
    rate: TaxRateRef | None = None
    rate_ok = True
    if rate_id is not None:
        rule_name = (
            nomi_rule.name
            if rate_source == Source.NOMI_SUPPLIER_RULE and nomi_rule
            else (user_rule.name if user_rule else None)
        )
        rate = _validate_tax_rate(
            rate_id, _origin(rate_source, ck, rule_name), item.kind, ctx, draft
        )
        rate_ok = rate is not None

    net = tax = total = None
    if item.total is not None and rate_ok:
        net, tax, total = _amounts(item, rate, draft)

    paid, bank_id, method_id = _resolve_payment(item, user_rule, ctx, draft)

    description, draft.sources["description"] = item.description, Source.ITEM
    if not description and user_rule is not None and user_rule.description:
        description, draft.sources["description"] = user_rule.description, Source.USER_RULE
    elif not description:
        draft.sources["description"] = Source.NONE

    attach = item.has_image and (
        item.kind != EXPENSE_CLAIM or ctx.settings.publish_images_with_expense_claims
    )
    if user_rule is not None and user_rule.auto_publish is not None:
        auto, draft.sources["auto_publish"] = user_rule.auto_publish, Source.USER_RULE
    else:
        auto = ctx.settings.auto_publish and item.kind in (COST, SALES)
        draft.sources["auto_publish"] = Source.SETTING

    return Resolution(
        status=REVIEW if draft.reasons else READY,
        reasons=tuple(draft.reasons),
        notes=tuple(draft.notes),
        sources=dict(draft.sources),
        contact_id=contact.nomi_id if contact else None,
        new_contact_name=new_name,
        category_id=category_id,
        tax_rate_id=rate.nomi_id if rate else None,
        net=net,
        tax=tax,
        total=total,
        paid=paid,
        bank_account_id=bank_id,
        payment_method_id=method_id,
        description=description,
        attach_image=attach,
        auto_publish=auto,
    )
