"""The tax of an item or a line: the rate by precedence, checked against Nomi, and the split.

``pick_tax_rate`` applies ranks 1 to 6 of PRODUCT.md ("Which value wins"); ``split_tax`` turns a
tax-inclusive amount into net and tax to the penny.
"""

from __future__ import annotations

from decimal import Decimal

from connector.rules.draft import Draft, LineScope, kind_words
from connector.rules.facts import (
    ContactRule,
    ItemFacts,
    RulesContext,
    RulesSettings,
    Source,
    TaxRateRef,
)
from connector.rules.money import PENNY, split_gross, tax_in_gross, to_money
from connector.rules.vocabulary import ItemKind


def _fits(kind: str, applies_to: str) -> bool:
    wanted = "SALES" if kind == ItemKind.SALES else "PURCHASES"
    return applies_to.upper() in (wanted, "BOTH")


def pick_tax_rate(
    item: ItemFacts,
    user_rule: ContactRule | None,
    nomi_rule: ContactRule | None,
    settings: RulesSettings,
    draft: Draft,
    line: LineScope | None = None,
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


def validate_tax_rate(
    rate_id: str,
    origin: str,
    item: ItemFacts,
    ctx: RulesContext,
    draft: Draft,
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
            f"on {kind_words(item.kind, item.document_type)}"
        )
    else:
        return rate
    return None


#: The end of the note saying an extracted tax was not published because the rate is 0%
#: (publishing shows these notes on the run's summary).
ZERO_RATE_NOTE = " is a 0% rate: 0 tax is published"


def item_amounts(
    item: ItemFacts, rate: TaxRateRef | None, draft: Draft
) -> tuple[Decimal, Decimal, Decimal]:
    """Return (net, tax, total) for a known total; net + tax == total to the penny."""
    assert item.total is not None
    total = to_money(item.total)
    extracted = None if item.extracted_tax is None else to_money(item.extracted_tax)
    tolerance = PENNY * max(1, item.line_count)
    net, tax = split_tax(total, extracted, rate, tolerance, draft, draft.sources, "")
    return net, tax, total


def split_tax(
    gross: Decimal,
    extracted: Decimal | None,
    rate: TaxRateRef | None,
    tolerance: Decimal,
    draft: Draft,
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
