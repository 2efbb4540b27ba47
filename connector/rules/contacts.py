"""Which Nomi contact an item publishes to: the mapped one, one matched by name, or a new one."""

from __future__ import annotations

from connector.rules.draft import Draft
from connector.rules.facts import ContactRef, ItemFacts, RulesContext, Source
from connector.rules.names import normalise_name
from connector.rules.vocabulary import ItemKind, contact_kind


def resolve_contact(
    item: ItemFacts, ctx: RulesContext, draft: Draft
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
