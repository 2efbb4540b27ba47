"""The rules engine: what an item publishes to Nomi as, and where each value came from.

Pure functions, no I/O. ``resolve(item, ctx)`` applies PRODUCT.md ("Item lifecycle", "Which value
wins", "Publishing to Nomi") to the types of ``connector.rules.facts`` and returns a ``Resolution``:
``ready`` with every value to publish, or ``review`` with reasons a user can read. Every choice the
spec leaves open is written down in docs/rules.md.
"""

from __future__ import annotations

from connector.rules.categories import resolve_category
from connector.rules.contacts import resolve_contact
from connector.rules.draft import Draft, ItemRules
from connector.rules.facts import (
    ItemFacts,
    LineResolution,
    Resolution,
    RulesContext,
    Source,
    TaxRateRef,
)
from connector.rules.lines import common_value, resolve_lines
from connector.rules.payment import resolve_currency, resolve_payment
from connector.rules.taxes import item_amounts, pick_tax_rate, validate_tax_rate
from connector.rules.vocabulary import ItemKind, ItemStatus, contact_kind


def _holds(item: ItemFacts, ctx: RulesContext, draft: Draft) -> None:
    """Hold an item Nomi would refuse in a locked period, and a possible duplicate."""
    lock = ctx.organisation.lock_date if ctx.organisation else None
    if lock is not None and item.date is not None and item.date <= lock:
        draft.reasons.append(
            f"dated {item.date.isoformat()}, on or before Nomi's lock date {lock.isoformat()}: "
            "Nomi refuses records in a locked period (the lock date is moved in Nomi; an admin "
            "can archive the item)"
        )
    for other in item.possible_duplicates:
        record = f" (Nomi record {other.nomi_record_id})" if other.nomi_record_id else ""
        draft.reasons.append(
            f"possible duplicate of {other.external_id}{record}: same {other.same}; an admin "
            "releases it if it is not a duplicate, or archives it"
        )


def resolve(item: ItemFacts, ctx: RulesContext) -> Resolution:
    """Resolve what ``item`` publishes to Nomi as, under the rules and lists in ``ctx``.

    Args:
        item: The item's extracted data and the user's item-level edits.
        ctx: The business's connection settings, Nomi reference lists, rules and payment methods.

    Returns:
        A ``Resolution``: ``ready`` with every value to publish and its source, or ``review`` with
        the reasons that block it (partial values are still filled in where known).
    """
    draft = Draft()
    ck = contact_kind(item.kind)
    if item.total is None:
        draft.reasons.append("no total: enter the item's total")
    if item.date is None:
        draft.reasons.append("no date: enter the item's date")
    if item.kind == ItemKind.EXPENSE_CLAIM and not (item.claimant or "").strip():
        draft.reasons.append("expense claim without a claimant: choose who is claiming")
    _holds(item, ctx, draft)

    contact, new_name = resolve_contact(item, ctx, draft)
    names = [n for n in ((item.contact_name or "").strip(), contact.name if contact else "") if n]
    user_rule = ctx.rule(ck, "user", names)
    nomi_rule = ctx.rule(ck, "nomi", names)

    if item.is_credit_note and not item.creditable:
        draft.reasons.append(
            "an expense claim cannot be a credit note: import the credit as a cost credit note"
        )
    rules = ItemRules(user_rule, nomi_rule, ck)
    lines: tuple[LineResolution, ...] = ()
    net = tax = total = None
    if item.lines:
        lines, net, tax, total = resolve_lines(item, rules, ctx, draft)
        category_id = common_value([line.category_id for line in lines])
        rate_id = common_value([line.tax_rate_id for line in lines])
    else:
        category_id = resolve_category(item, user_rule, ck, ctx, draft)
        rate_id, rate_source = pick_tax_rate(item, user_rule, nomi_rule, ctx.settings, draft)
        draft.sources["tax_rate"] = rate_source
        rate: TaxRateRef | None = None
        rate_ok = True
        if rate_id is not None:
            rate = validate_tax_rate(rate_id, rules.origin(rate_source), item, ctx, draft)
            rate_ok = rate is not None
        rate_id = rate.nomi_id if rate else None
        if item.total is not None and rate_ok:
            net, tax, total = item_amounts(item, rate, draft)

    currency, exchange_rate = resolve_currency(item, ctx, draft)
    paid, bank_id, method_id = resolve_payment(item, user_rule, ctx, draft, currency)

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
