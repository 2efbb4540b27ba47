"""Items with lines: each line's category, tax rate and amounts, and the lines adding up."""

from __future__ import annotations

from decimal import Decimal

from connector.rules.categories import resolve_category
from connector.rules.draft import Draft, ItemRules, LineScope
from connector.rules.facts import ItemFacts, LineResolution, RulesContext, Source, TaxRateRef
from connector.rules.money import PENNY, to_money
from connector.rules.taxes import pick_tax_rate, split_tax, validate_tax_rate


def resolve_line(
    item: ItemFacts, line: LineScope, rules: ItemRules, ctx: RulesContext, draft: Draft
) -> LineResolution:
    """One line's category, tax rate and amounts (net + tax == the line's gross)."""
    category_id = resolve_category(item, rules.user, rules.contact_kind, ctx, draft, line)
    rate_id, rate_source = pick_tax_rate(item, rules.user, rules.nomi, ctx.settings, draft, line)
    line.sources["tax_rate"] = rate_source
    rate: TaxRateRef | None = None
    rate_ok = True
    if rate_id is not None:
        rate = validate_tax_rate(rate_id, rules.origin(rate_source), item, ctx, draft, line.prefix)
        rate_ok = rate is not None
    net = tax = None
    if rate_ok:
        extracted = None if line.facts.tax is None else to_money(line.facts.tax)
        net, tax = split_tax(
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


def common_value(values: list[str | None]) -> str | None:
    """The one value every line has, else None."""
    return values[0] if values and all(v == values[0] for v in values) else None


def resolve_lines(
    item: ItemFacts, rules: ItemRules, ctx: RulesContext, draft: Draft
) -> tuple[tuple[LineResolution, ...], Decimal | None, Decimal | None, Decimal | None]:
    """Resolve every line; (lines, net, tax, total) where the sums are known (None otherwise).

    The lines' gross amounts must add up to the item's total to the penny.
    """
    lines = tuple(
        resolve_line(item, LineScope(n, facts), rules, ctx, draft)
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
