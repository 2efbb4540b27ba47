"""What a user chose for their items before publishing: who may publish, contact answers, retries.

No Prefect. ``choose_items_to_publish`` is the database side of publish-items-to-nomi: it checks
the acting user is a member, finds the items by the external ids they typed, records their
answers to the new-supplier warning, reassesses what changed, and splits the selection into Ready
items and the others (with why).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col, select

from connector.access import EMAIL_MAX, PermissionDeniedError, audit_refusal, require_actor
from connector.history import records as history
from connector.items.assess import ReassessReport, reassess
from connector.items.context import build_context
from connector.items.lookup import items_by_external_id
from connector.rules.names import normalise_name
from connector.rules.vocabulary import RETRYABLE_ERROR_CODES, ItemStatus, contact_kind
from connector.store.base import table_of, utcnow
from connector.store.models import Business, Item, Membership, User


@dataclass(frozen=True)
class ChosenItems:
    """A publish selection split: Ready item ids (in the order asked) and the others with why.

    ``names`` holds the external id of every chosen item; ``not_ready`` is keyed by external id.
    """

    business_id: uuid.UUID
    ready: list[uuid.UUID]
    names: dict[uuid.UUID, str] = field(default_factory=dict)
    not_ready: dict[str, str] = field(default_factory=dict)


def choose_items_to_publish(
    session: Session,
    *,
    business: Business,
    external_ids: Sequence[str],
    acting_email: str,
    confirm_new_contacts: bool = False,
    map_contacts: dict[str, str] | None = None,
) -> ChosenItems:
    """Check the member, find the items, apply their contact answers, reassess, and split.

    Give it a write session (``session(engine, write=True)``): the member check, the contact
    choices and their reassessment read and then write while auto-publish may be committing.
    Committed.

    Raises:
        PermissionDeniedError: The acting user is unknown or not a member (audited).
        UnknownItemsError: Some external ids name no item of the business (close matches named).
        ValueError: No external id given.
    """
    business_id = business.id
    user = require_member(
        session, business_id=business_id, email=acting_email, action="publish.items"
    )
    chosen = items_by_external_id(session, business, external_ids)
    names = {item.id: item.external_id for item in chosen}
    item_ids = list(names)
    changed = apply_contact_choices(
        session,
        business_id=business_id,
        item_ids=item_ids,
        user_id=user.id,
        confirm_new_contacts=confirm_new_contacts,
        map_contacts=map_contacts or {},
    )
    if changed:
        reassess(session, business_id=business_id, item_ids=changed)
        session.commit()
        for item in chosen:
            session.refresh(item)
    not_ready = {
        names[item.id]: why_not_ready(item) for item in chosen if item.status != ItemStatus.READY
    }
    ready = [item.id for item in chosen if item.status == ItemStatus.READY]
    return ChosenItems(business_id=business_id, ready=ready, names=names, not_ready=not_ready)


def why_not_ready(item: Item) -> str:
    """Why an item that is not Ready is not published, in a person's words."""
    if item.status == ItemStatus.REVIEW:
        return "in review: " + "; ".join(item.review_reasons or ["not assessed"])
    if item.status == ItemStatus.PUBLISHING:
        return "another run is publishing it"
    return f"already {item.status}"


def require_member(session: Session, *, business_id: uuid.UUID, email: str, action: str) -> User:
    """The acting user (email compared normalised), who must be a member of the business (any
    role); refusals, an unknown user's too, are audited.

    Raises:
        PermissionDeniedError: Unknown user or not a member (audited in a transaction of its
            own, as ``require_admin`` does).
    """
    user = require_actor(session, email=email, business_id=business_id, action=action)
    membership = session.exec(
        select(Membership).where(
            Membership.business_id == business_id, Membership.user_id == user.id
        )
    ).first()
    if membership is not None:
        return user
    message = (
        f"user {user.email} may not perform '{action}': they are not a member of this business"
    )
    audit_refusal(
        session,
        action=action,
        business_id=business_id,
        user_id=user.id,
        detail={"reason": message, "email": email[:EMAIL_MAX]},
    )
    raise PermissionDeniedError(message, user_id=user.id, business_id=business_id, action=action)


def apply_contact_choices(
    session: Session,
    *,
    business_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID],
    user_id: uuid.UUID,
    confirm_new_contacts: bool,
    map_contacts: dict[str, str],
) -> list[uuid.UUID]:
    """Record the user's answer to the new-supplier warning on the chosen items (audited).

    A mapping (contact name -> existing Nomi contact id, names compared normalised) wins over a
    confirmation; a confirmation only marks items whose contact Nomi does not have. Only items
    in ``review``/``ready`` with a contact name change; the caller then reassesses them.
    Committed.

    Returns:
        The ids of the items that changed.
    """
    mapping = {normalise_name(name): nomi_id for name, nomi_id in map_contacts.items()}
    mapping.pop("", None)  # a name with nothing to match on maps no item
    if not confirm_new_contacts and not mapping:
        return []
    ctx = build_context(session, business_id)
    rows = session.exec(
        select(Item).where(
            col(Item.id).in_(list(item_ids)),
            Item.business_id == business_id,
            col(Item.status).in_([ItemStatus.REVIEW, ItemStatus.READY]),
        )
    ).all()
    changed: list[uuid.UUID] = []
    for item in rows:
        if not item.contact_name:
            continue
        key = normalise_name(item.contact_name)
        mapped = mapping.get(key) if key else None
        if mapped is not None and mapped != item.contact_mapped_nomi_id:
            item.contact_mapped_nomi_id = mapped
            action, detail = "publish.map_contact", {"nomi_id": mapped}
        elif (
            mapped is None
            and confirm_new_contacts
            and not item.contact_confirmed
            and not ctx.contacts_named(contact_kind(item.kind), item.contact_name)
        ):
            item.contact_confirmed = True
            action, detail = "publish.confirm_new_contact", {}
        else:
            continue
        item.updated_at = utcnow()
        session.add(item)
        history.record_audit(
            session,
            action=action,
            allowed=True,
            business_id=business_id,
            user_id=user_id,
            detail={"item_id": str(item.id), "contact": item.contact_name, **detail},
        )
        changed.append(item.id)
    session.commit()
    return changed


def allow_retry(session: Session, item_ids: Sequence[uuid.UUID]) -> int:
    """Clear Nomi's rejection of Ready items (after an edit) so auto-publish takes them again.

    Only rejections: an item waiting for a reconnect (``connection_expired``) or after a
    transient failure keeps its code, which auto-publish does not hold it back for anyway (and a
    reconnect run looks for ``connection_expired``). The caller commits.

    Returns:
        How many items changed.
    """
    if not item_ids:
        return 0
    table = table_of(Item)
    result = session.connection().execute(
        sa.update(table)
        .where(
            table.c.id.in_(list(item_ids)),
            table.c.status == ItemStatus.READY,
            table.c.last_error_code.is_not(None),
            table.c.last_error_code.not_in(sorted(RETRYABLE_ERROR_CODES)),
        )
        .values(last_error_code=None, last_error_message=None, updated_at=utcnow())
    )
    return int(result.rowcount)


def reassess_after_change(session: Session, business_id: uuid.UUID) -> tuple[ReassessReport, int]:
    """Reassess a business's items after its rules or settings changed; retry what changed.

    An item Nomi rejected keeps its rejection, and auto-publish passes it by, until someone acts
    on it. A rules or settings change that changes what the item would publish as is such an act
    (the usual fix for "category archived" or "tax rate not valid for this account"), so Ready
    items whose values changed lose the rejection and the next auto-publish run takes them. Items
    the change left as they were keep theirs. The caller commits.

    Returns:
        The reassessment, and how many rejected items will be tried again.

    Raises:
        NotConnectedError: The business has no Nomi connection.
    """
    report = reassess(session, business_id=business_id)
    return report, allow_retry(session, report.changed)


def why_not_published(outcome: str, code: str | None, message: str | None) -> str:
    """Why a claimed item of a selection was not published (held, rejected or given back)."""
    detail = message or ""
    if outcome == "held":
        return f"held in review: {detail}" if detail else "held in review"
    if outcome == "rejected":
        return f"rejected by Nomi ({code}): {detail}" if detail else f"rejected by Nomi ({code})"
    if outcome == "given_back":
        return f"given back ({code}), published by a later run" if code else "given back"
    return f"{outcome} ({code})" if code else outcome


def selection_message(published: int, asked: int, not_published: dict[str, str]) -> str:
    """The one line a publish-items run ends with: totals, then each item not published."""
    line = f"published {published} of {asked}"
    if not not_published:
        return line
    named = [f"{external_id} ({why})" for external_id, why in list(not_published.items())[:10]]
    more = f" and {len(not_published) - 10} more" if len(not_published) > 10 else ""
    return f"{line}; not published: {', '.join(named)}{more}"


def selection_markdown(slug: str, published: int, asked: int, not_published: dict[str, str]) -> str:
    """The run's artifact: the totals and a table of every item not published, with why."""
    head = f"# Publish items of `{slug}`\n\nPublished **{published} of {asked}**.\n"
    if not not_published:
        return head + "\nEvery chosen item was published.\n"
    rows = "\n".join(
        f"| `{_cell(external_id)}` | {_cell(why)} |" for external_id, why in not_published.items()
    )
    return f"{head}\n## Not published\n\n| item | why |\n|---|---|\n{rows}\n"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no column breaks)."""
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")
