"""The rules engine: what an item publishes to Nomi as, and where each value came from.

Pure functions, no I/O. ``resolve(item, ctx)`` applies PRODUCT.md ("Item lifecycle", "Which value
wins", "Publishing to Nomi") to the types of ``connector.rules.facts`` and returns a ``Resolution``:
``ready`` with every value to publish, or ``review`` with reasons a user can read. Every choice the
spec leaves open is written down in docs/rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from connector.rules.facts import (
    ContactRef,
    ContactRule,
    ItemFacts,
    LineFacts,
    LineResolution,
    Resolution,
    RulesContext,
    RulesSettings,
    Source,
    TaxRateRef,
)
from connector.rules.money import PENNY, split_gross, tax_in_gross, to_money
from connector.rules.names import normalise_name
from connector.rules.vocabulary import DocumentType, ItemKind, ItemStatus, contact_kind

_SOURCE_WORDS = {
    Source.ITEM: "set on the item",
    Source.LINE: "set on the line",
    Source.NOMI_SUPPLIER_RULE: "from the Nomi supplier tax rate",
    Source.USER_RULE: "from the rule",
    Source.DEFAULT_ZERO_TAX: "the default tax code for a zero tax amount",
    Source.DEFAULT_TAX: "the default tax",
}


@dataclass
class _Draft:
    """Mutable scratch state of one resolution."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _fits(kind: str, applies_to: str) -> bool:
    wanted = "SALES" if kind == ItemKind.SALES else "PURCHASES"
    return applies_to.upper() in (wanted, "BOTH")


_KIND_WORDS = {
    ItemKind.COST: "a cost item",
    ItemKind.SALES: "a sales item",
    ItemKind.EXPENSE_CLAIM: "an expense claim",
}


_CREDIT_WORDS = {
    ItemKind.COST: "a supplier credit note",
    ItemKind.SALES: "a customer credit note",
    ItemKind.EXPENSE_CLAIM: "an expense claim",
}


def _kind_words(kind: str, document_type: str = DocumentType.INVOICE) -> str:
    words = _CREDIT_WORDS if document_type == DocumentType.CREDIT_NOTE else _KIND_WORDS
    return words[ItemKind(kind)]


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
    ck = contact_kind(item.kind)
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
        if item.kind == ItemKind.SALES:
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
    item: ItemFacts,
    user_rule: ContactRule | None,
    ck: str,
    ctx: RulesContext,
    draft: _Draft,
    line: _LineScope | None = None,
) -> str | None:
    """The category of the item, or of one of its lines (its edit first, then the item's)."""
    sources = draft.sources if line is None else line.sources
    where = "" if line is None else line.prefix
    if line is not None and line.facts.category_id is not None:
        chosen, source = line.facts.category_id, Source.LINE
    elif item.category_id is not None:
        chosen, source = item.category_id, Source.ITEM
    elif user_rule is not None and user_rule.category_id is not None:
        chosen, source = user_rule.category_id, Source.USER_RULE
    else:
        sources["category"] = Source.NONE
        name = (item.contact_name or "").strip()
        hint = f" or add a {ck} rule for '{name}'" if name else ""
        on = "on the line or the item" if line is not None else "on the item"
        draft.reasons.append(f"{where}no category: set one {on}{hint}")
        return None
    sources["category"] = source
    origin = _origin(source, ck, user_rule.name if user_rule else None)
    category = ctx.category(chosen)
    wanted = "INCOME" if item.kind == ItemKind.SALES else "EXPENSE"
    if category is None:
        draft.reasons.append(
            f"{where}category {chosen!r} ({origin}) does not exist in Nomi: choose another"
        )
    elif not category.active:
        draft.reasons.append(
            f"{where}category '{category.name}' ({origin}) is archived in Nomi: choose another"
        )
    elif category.type.upper() != wanted:
        draft.reasons.append(
            f"{where}category '{category.name}' ({origin}) is not an {wanted.lower()} category "
            f"and cannot be used on {_kind_words(item.kind, item.document_type)}"
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
    line: _LineScope | None = None,
) -> tuple[str | None, Source]:
    """Apply the precedence table (ranks 1 to 6) to choose a tax rate id and its source.

    For a line, rank 1 is the line's edit, then the item's; rank 4 looks at the line's tax.
    """
    edits = [(item.tax_rate_id, Source.ITEM, "item")]
    if line is not None:
        edits.insert(0, (line.facts.tax_rate_id, Source.LINE, "line"))
    for edit, source, where in edits:
        if edit is None:
            continue
        if settings.use_tax_list:
            return edit, source
        note = f"the tax rate set on the {where} is ignored because 'Use tax list' is off"
        prefix = line.prefix if line is not None and source == Source.LINE else ""
        if prefix + note not in draft.notes:
            draft.notes.append(prefix + note)
    if settings.use_supplier_tax_rates and nomi_rule is not None and nomi_rule.tax_rate_id:
        return nomi_rule.tax_rate_id, Source.NOMI_SUPPLIER_RULE
    if settings.use_tax_list and user_rule is not None and user_rule.tax_rate_id:
        return user_rule.tax_rate_id, Source.USER_RULE
    sales = item.kind == ItemKind.SALES
    zero_code = (
        settings.default_zero_tax_code_sales if sales else settings.default_zero_tax_code_costs
    )
    extracted = item.extracted_tax if line is None else line.facts.tax
    if extracted is not None and extracted == 0 and zero_code:
        return zero_code, Source.DEFAULT_ZERO_TAX
    default = settings.default_tax_sales if sales else settings.default_tax_costs
    if default:
        return default, Source.DEFAULT_TAX
    return None, Source.NONE


def _validate_tax_rate(
    rate_id: str,
    origin: str,
    item: ItemFacts,
    ctx: RulesContext,
    draft: _Draft,
    where: str = "",
) -> TaxRateRef | None:
    """The rate when it exists, is active and fits the document's side (a credit note is on
    the side of its kind: purchases for a supplier credit note, sales for a customer one)."""
    rate = ctx.tax_rate(rate_id)
    if rate is None:
        draft.reasons.append(
            f"{where}tax rate {rate_id!r} ({origin}) does not exist in Nomi: choose another"
        )
    elif not rate.active:
        draft.reasons.append(
            f"{where}tax rate '{rate.name}' ({origin}) is archived in Nomi: choose another"
        )
    elif not _fits(item.kind, rate.applies_to):
        only = rate.applies_to.lower()
        draft.reasons.append(
            f"{where}tax rate '{rate.name}' ({origin}) applies to {only} only and cannot be used "
            f"on {_kind_words(item.kind, item.document_type)}"
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
    tolerance = PENNY * max(1, item.line_count)
    net, tax = _split(total, extracted, rate, tolerance, draft, draft.sources, "")
    return net, tax, total


def _split(
    gross: Decimal,
    extracted: Decimal | None,
    rate: TaxRateRef | None,
    tolerance: Decimal,
    draft: _Draft,
    sources: dict[str, str],
    where: str,
) -> tuple[Decimal, Decimal]:
    """Split a tax-inclusive ``gross`` (an item's total or a line's net + tax) into (net, tax)
    under ``rate``: the extracted tax when it fits the rate within ``tolerance``, else computed;
    net + tax == gross to the penny. ``where`` prefixes the notes ("line 2: ")."""
    if rate is None:
        sources["tax_amount"] = Source.NONE
        if extracted:
            draft.notes.append(
                f"{where}extracted tax {extracted} is not published: no tax rate applies"
            )
        return split_gross(gross, Decimal(0))
    if rate.rate == 0:  # zero, exempt, no VAT: no tolerance, whatever was extracted
        matched = extracted is not None and extracted == 0
        sources["tax_amount"] = Source.EXTRACTED if matched else Source.COMPUTED
        if extracted:
            draft.notes.append(
                f"{where}extracted tax {extracted} is not published: '{rate.name}'{ZERO_RATE_NOTE}"
            )
        return split_gross(gross, Decimal(0))
    computed = tax_in_gross(gross, rate.rate)
    if extracted is not None and abs(extracted - computed) <= tolerance:
        tax, sources["tax_amount"] = extracted, Source.EXTRACTED
    else:
        tax, sources["tax_amount"] = computed, Source.COMPUTED
        if extracted is not None:
            draft.notes.append(
                f"{where}extracted tax {extracted} does not match '{rate.name}' on {gross}; "
                f"publishing the computed {computed}"
            )
    return split_gross(gross, tax)


@dataclass
class _LineScope:
    """One line being resolved: its facts, number (from 1) and the sources found for it."""

    number: int
    facts: LineFacts
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"line {self.number}: "


@dataclass(frozen=True)
class _Rules:
    """The contact rules that apply to one item, and the words naming where a rate came from."""

    user: ContactRule | None
    nomi: ContactRule | None
    contact_kind: str

    def origin(self, source: Source) -> str:
        name = (
            self.nomi.name
            if source == Source.NOMI_SUPPLIER_RULE and self.nomi
            else (self.user.name if self.user else None)
        )
        return _origin(source, self.contact_kind, name)


def _resolve_line(
    item: ItemFacts, line: _LineScope, rules: _Rules, ctx: RulesContext, draft: _Draft
) -> LineResolution:
    """One line's category, tax rate and amounts (net + tax == the line's gross)."""
    category_id = _resolve_category(item, rules.user, rules.contact_kind, ctx, draft, line)
    rate_id, rate_source = _pick_tax_rate(item, rules.user, rules.nomi, ctx.settings, draft, line)
    line.sources["tax_rate"] = rate_source
    rate: TaxRateRef | None = None
    rate_ok = True
    if rate_id is not None:
        rate = _validate_tax_rate(rate_id, rules.origin(rate_source), item, ctx, draft, line.prefix)
        rate_ok = rate is not None
    net = tax = None
    if rate_ok:
        extracted = None if line.facts.tax is None else to_money(line.facts.tax)
        net, tax = _split(
            to_money(line.facts.gross), extracted, rate, PENNY, draft, line.sources, line.prefix
        )
    return LineResolution(
        number=line.number,
        description=line.facts.description,
        category_id=category_id,
        tax_rate_id=rate_id,
        net=net,
        tax=tax,
        sources=dict(line.sources),
    )


def _common(values: list[str | None]) -> str | None:
    """The one value every line has, else None."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _resolve_lines(
    item: ItemFacts, rules: _Rules, ctx: RulesContext, draft: _Draft
) -> tuple[tuple[LineResolution, ...], Decimal | None, Decimal | None, Decimal | None]:
    """Resolve every line; (lines, net, tax, total) where the sums are known (None otherwise).

    The lines' gross amounts must add up to the item's total to the penny.
    """
    lines = tuple(
        _resolve_line(item, _LineScope(n, facts), rules, ctx, draft)
        for n, facts in enumerate(item.lines, start=1)
    )
    for name in ("category", "tax_rate", "tax_amount"):
        draft.sources[name] = Source.LINES
    gross = sum((to_money(f.gross) for f in item.lines), Decimal("0.00"))
    if item.total is None:
        return lines, None, None, None
    total = to_money(item.total)
    if gross != total:
        draft.reasons.append(
            f"the lines add up to {gross}, not the total {total}: correct the lines or the total"
        )
        return lines, None, None, None
    if any(line.net is None or line.tax is None for line in lines):
        return lines, None, None, total
    net = sum((line.net for line in lines if line.net is not None), Decimal("0.00"))
    tax = sum((line.tax for line in lines if line.tax is not None), Decimal("0.00"))
    return lines, net, tax, total


def _currency(
    item: ItemFacts, ctx: RulesContext, draft: _Draft
) -> tuple[str | None, Decimal | None]:
    """The currency the item publishes in and the exchange rate it carries (``None``: Nomi's).

    An exchange rate on an item in the organisation's base currency is not published (a note
    says so, unless it is 1); a rate of 0 or less blocks the item.
    """
    currency = (item.currency or "").upper() or None
    rate = item.exchange_rate
    if rate is not None and rate <= 0:
        draft.reasons.append(f"exchange rate {rate} must be more than 0: correct it or remove it")
        return currency, None
    base = ctx.organisation.base_currency.upper() if ctx.organisation else None
    if rate is not None and base is not None and currency in (None, base):
        if rate != 1:
            draft.notes.append(
                f"exchange rate {rate} is not published: {base} is the organisation's base currency"
            )
        return currency, None
    return currency, rate


def _resolve_payment(
    item: ItemFacts,
    rule: ContactRule | None,
    ctx: RulesContext,
    draft: _Draft,
    currency: str | None = None,
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
    if item.kind == ItemKind.EXPENSE_CLAIM:
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
    base = ctx.organisation.base_currency.upper() if ctx.organisation else None
    held = (bank.currency or "").upper()
    if base is not None and currency is not None and held and held not in (currency, base):
        also = "" if currency == base else f" or {base}"
        draft.reasons.append(
            f"payment method '{method.name}' pays from bank account '{bank.name}' in {held}: an "
            f"item in {currency} is paid from an account in {currency}{also}; choose another "
            "payment method or mark the item unpaid"
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
    ck = contact_kind(item.kind)
    if item.total is None:
        draft.reasons.append("no total: enter the item's total")
    if item.date is None:
        draft.reasons.append("no date: enter the item's date")
    if item.kind == ItemKind.EXPENSE_CLAIM and not (item.claimant or "").strip():
        draft.reasons.append("expense claim without a claimant: choose who is claiming")

    contact, new_name = _resolve_contact(item, ctx, draft)
    names = [n for n in ((item.contact_name or "").strip(), contact.name if contact else "") if n]
    user_rule = ctx.rule(ck, "user", names)
    nomi_rule = ctx.rule(ck, "nomi", names)

    if item.is_credit_note and not item.creditable:
        draft.reasons.append(
            "an expense claim cannot be a credit note: import the credit as a cost credit note"
        )
    rules = _Rules(user_rule, nomi_rule, ck)
    lines: tuple[LineResolution, ...] = ()
    net = tax = total = None
    if item.lines:
        lines, net, tax, total = _resolve_lines(item, rules, ctx, draft)
        category_id = _common([line.category_id for line in lines])
        rate_id = _common([line.tax_rate_id for line in lines])
    else:
        category_id = _resolve_category(item, user_rule, ck, ctx, draft)
        rate_id, rate_source = _pick_tax_rate(item, user_rule, nomi_rule, ctx.settings, draft)
        draft.sources["tax_rate"] = rate_source
        rate: TaxRateRef | None = None
        rate_ok = True
        if rate_id is not None:
            rate = _validate_tax_rate(rate_id, rules.origin(rate_source), item, ctx, draft)
            rate_ok = rate is not None
        rate_id = rate.nomi_id if rate else None
        if item.total is not None and rate_ok:
            net, tax, total = _amounts(item, rate, draft)

    currency, exchange_rate = _currency(item, ctx, draft)
    paid, bank_id, method_id = _resolve_payment(item, user_rule, ctx, draft, currency)

    description, draft.sources["description"] = item.description, Source.ITEM
    if not description and user_rule is not None and user_rule.description:
        description, draft.sources["description"] = user_rule.description, Source.USER_RULE
    elif not description:
        draft.sources["description"] = Source.NONE

    attach = item.has_image and (
        item.kind != ItemKind.EXPENSE_CLAIM or ctx.settings.publish_images_with_expense_claims
    )
    if user_rule is not None and user_rule.auto_publish is not None:
        auto, draft.sources["auto_publish"] = user_rule.auto_publish, Source.USER_RULE
    else:
        auto = ctx.settings.auto_publish and item.kind in (ItemKind.COST, ItemKind.SALES)
        draft.sources["auto_publish"] = Source.SETTING

    return Resolution(
        status=ItemStatus.REVIEW if draft.reasons else ItemStatus.READY,
        reasons=tuple(draft.reasons),
        notes=tuple(draft.notes),
        sources=dict(draft.sources),
        contact_id=contact.nomi_id if contact else None,
        new_contact_name=new_name,
        category_id=category_id,
        tax_rate_id=rate_id,
        net=net,
        tax=tax,
        total=total,
        paid=paid,
        bank_account_id=bank_id,
        payment_method_id=method_id,
        description=description,
        attach_image=attach,
        auto_publish=auto,
        document_type=item.document_type,
        currency=currency,
        exchange_rate=exchange_rate,
        lines=lines,
    )
