"""How an item is paid: the currency it publishes in, and paid or not, from which bank account."""

from __future__ import annotations

from decimal import Decimal

from connector.rules.draft import Draft
from connector.rules.facts import ContactRule, ItemFacts, RulesContext, Source
from connector.rules.vocabulary import ItemKind


def resolve_currency(
    item: ItemFacts, ctx: RulesContext, draft: Draft
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


def resolve_payment(
    item: ItemFacts,
    rule: ContactRule | None,
    ctx: RulesContext,
    draft: Draft,
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
