"""An item's publish plan: every request body and idempotency key, built before its first Nomi call.

Built once per publish attempt from the claimed item and its resolution, so the same item,
generation and resolution always send the same bodies under the same keys (Nomi then replays
instead of creating). Only the ids Nomi gives back during the attempt (a new contact, the
claimant's user) are filled in later, by ``Plan.body_for``. An item becomes one of four Nomi
records (``record_type``): an expense, a sales invoice, a supplier or a customer credit note.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from connector.publishing.outbox import idempotency_key
from connector.publishing.payloads import (
    attachment_name,
    contact_body,
    contact_key,
    customer_credit_note_body,
    expense_body,
    generation_step,
    payment_body,
    sales_invoice_body,
    supplier_credit_note_body,
)
from connector.rules.facts import Resolution
from connector.rules.vocabulary import AttemptStep, ItemKind, contact_kind, record_step
from connector.store.models import Item
from nomi.models import (
    ContactCreate,
    CustomerCreditNoteCreate,
    ExpenseCreate,
    PaymentCreate,
    SalesInvoiceCreate,
    SupplierCreditNoteCreate,
)

#: The body of a credit note (supplier or customer).
CreditNoteCreate = SupplierCreditNoteCreate | CustomerCreditNoteCreate
#: The body that creates an item's Nomi record.
RecordCreate = ExpenseCreate | SalesInvoiceCreate | CreditNoteCreate


@dataclass(frozen=True)
class NewContact:
    """The contact an item creates in Nomi (one key per connection, kind and name)."""

    kind: str
    name: str
    key: str
    body: ContactCreate


@dataclass(frozen=True)
class Plan:
    """What one publish attempt of an item sends, and under which keys."""

    resolution: Resolution
    is_sales: bool
    record_step: str
    record_type: str
    record_key: str
    new_contact: NewContact | None
    expense: ExpenseCreate | None
    sales_invoice: SalesInvoiceCreate | None
    credit_note: CreditNoteCreate | None
    attachment_key: str
    attachment_name: str
    payment_key: str
    payment: PaymentCreate | None

    def invoice_for(self, customer_id: str) -> SalesInvoiceCreate:
        """The sales invoice's body, to the customer known by now."""
        assert self.sales_invoice is not None
        return self.sales_invoice.model_copy(update={"customer_id": customer_id})

    def expense_for(self, supplier_id: str | None, user_id: str | None) -> ExpenseCreate:
        """The expense's body, with the supplier and (claims only) claimant known by now."""
        assert self.expense is not None
        ids: dict[str, str | None] = {"supplier_id": supplier_id}
        if self.expense.kind == "claim":
            ids["user_id"] = user_id
        return self.expense.model_copy(update=ids)

    def credit_note_for(self, contact_id: str) -> CreditNoteCreate:
        """The credit note's body, to the supplier or customer known by now."""
        assert self.credit_note is not None
        field = "customer_id" if self.is_sales else "supplier_id"
        return self.credit_note.model_copy(update={field: contact_id})

    def body_for(self, contact_id: str | None, user_id: str | None) -> RecordCreate:
        """The record's body with the ids learned during the attempt.

        Raises:
            Held: An invoice or credit note with no contact to address it to.
        """
        if self.expense is not None:
            return self.expense_for(contact_id, user_id)
        if contact_id is None:
            raise Held("no customer to invoice" if self.is_sales else "no supplier to credit")
        if self.credit_note is not None:
            return self.credit_note_for(contact_id)
        return self.invoice_for(contact_id)


class Held(Exception):
    """The item cannot be published as it stands (goes back to review with this reason).

    ``code`` (a ``HoldCode``) goes on the attempt row when the reason is one of the known ones.
    """

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.code = code


def plan_item(
    item: Item, res: Resolution, connection_id: uuid.UUID, *, applies_to_id: str | None = None
) -> Plan:
    """The plan of a claimed item whose resolution is ready.

    Args:
        item: The claimed item (its ``publish_generation`` is in every key).
        res: Its resolution (``is_ready``).
        connection_id: The business's connection (in the new contact's key).
        applies_to_id: For a credit note, the Nomi id of the record it credits (if known).

    Returns:
        The plan; the record body holds ``res.contact_id`` (and the stored claimant id) until
        ``invoice_for`` / ``expense_for`` fill in the ids learned during the attempt.

    Raises:
        UnmatchableNameError: The new contact's name has no letter or digit.
    """
    is_sales = item.kind == ItemKind.SALES
    step = record_step(item.kind, item.document_type)

    def key(of: str) -> str:
        return idempotency_key(
            item.id, item.publish_generation, generation_step(of, item.record_generation or 0)
        )

    new_contact = None
    if res.contact_id is None and res.new_contact_name is not None:
        kind, name = contact_kind(item.kind), res.new_contact_name
        new_contact = NewContact(
            kind, name, contact_key(connection_id, kind, name), contact_body(name, item.currency)
        )
    contact_id = res.contact_id or ""
    expense: ExpenseCreate | None = None
    invoice: SalesInvoiceCreate | None = None
    credit: CreditNoteCreate | None = None
    if step == AttemptStep.EXPENSE:
        expense = expense_body(
            item, res, contact_id=res.contact_id, user_id=item.claimant_nomi_user_id
        )
    elif step == AttemptStep.SALES_INVOICE:
        invoice = sales_invoice_body(item, res, contact_id=contact_id)
    elif step == AttemptStep.SUPPLIER_CREDIT_NOTE:
        credit = supplier_credit_note_body(
            item, res, contact_id=contact_id, applies_to_id=applies_to_id
        )
    else:
        credit = customer_credit_note_body(
            item, res, contact_id=contact_id, applies_to_id=applies_to_id
        )
    return Plan(
        resolution=res,
        is_sales=is_sales,
        record_step=step,
        record_type=step,
        record_key=key(step),
        new_contact=new_contact,
        expense=expense,
        sales_invoice=invoice,
        credit_note=credit,
        attachment_key=key(AttemptStep.ATTACHMENT),
        attachment_name=attachment_name(item),
        payment_key=key(AttemptStep.PAYMENT),
        payment=payment_body(item, res),
    )
