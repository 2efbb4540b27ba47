"""``lists`` commands: a business's Nomi lists as mirrored here, with the codes and names that
the other commands (and the deployments' forms) take instead of Nomi ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import typer

from connector.admin.businesses import get_business
from connector.admin.commands.base import BUSINESS_HELP, database, table
from connector.admin.lookup import Entry, labels, list_entries
from connector.rules.vocabulary import ListName
from connector.store.models import BankAccount, Business, Category, Customer, Supplier, TaxRate

lists_app = typer.Typer(
    help="The business's Nomi lists as last synced (codes and names other commands take).",
    no_args_is_help=True,
)

CONTAINING_HELP = "Only entries whose code or name contains this text (case-insensitive)."
JSON_HELP = "One JSON object per line instead of tab-separated columns."

Columns = tuple[Sequence[str], Callable[[Entry], Sequence[object]]]


def _categories(_: dict[str, dict[str, str]]) -> Columns:
    def row(e: Entry) -> Sequence[object]:
        assert isinstance(e, Category)
        return (e.code, e.name, e.type, e.status, e.nomi_id)

    return ("code", "name", "type", "status", "nomi_id"), row


def _tax_rates(_: dict[str, dict[str, str]]) -> Columns:
    def row(e: Entry) -> Sequence[object]:
        assert isinstance(e, TaxRate)
        return (e.code, e.name, e.rate, e.applies_to, e.status, e.nomi_id)

    return ("code", "name", "rate", "applies_to", "status", "nomi_id"), row


def _bank_accounts(_: dict[str, dict[str, str]]) -> Columns:
    def row(e: Entry) -> Sequence[object]:
        assert isinstance(e, BankAccount)
        return (e.name, e.masked_number, e.currency, e.status, e.nomi_id)

    return ("name", "masked_number", "currency", "status", "nomi_id"), row


def _contacts(words: dict[str, dict[str, str]]) -> Columns:
    categories, taxes = words["categories"], words["tax_rates"]

    def row(e: Entry) -> Sequence[object]:
        assert isinstance(e, Supplier | Customer)
        category, tax = e.default_category_id, e.default_tax_rate_id
        return (
            e.name,
            e.tax_number,
            categories.get(category, category) if category else None,
            taxes.get(tax, tax) if tax else None,
            e.currency,
            e.status,
            e.nomi_id,
        )

    headers = ("name", "tax_number", "default_category", "default_tax_rate", "currency")
    return (*headers, "status", "nomi_id"), row


_COLUMNS: dict[ListName, Callable[[dict[str, dict[str, str]]], Columns]] = {
    ListName.CATEGORIES: _categories,
    ListName.TAX_RATES: _tax_rates,
    ListName.BANK_ACCOUNTS: _bank_accounts,
    ListName.SUPPLIERS: _contacts,
    ListName.CUSTOMERS: _contacts,
}


def _print(ctx: typer.Context, list_name: ListName, slug: str, containing: str | None,
           as_json: bool) -> None:  # fmt: skip
    with database(ctx, write=False) as db:
        business: Business = get_business(db, slug)
        words: dict[str, dict[str, str]] = {"categories": {}, "tax_rates": {}}
        if list_name in (ListName.SUPPLIERS, ListName.CUSTOMERS):
            words = {
                "categories": labels(db, business, ListName.CATEGORIES),
                "tax_rates": labels(db, business, ListName.TAX_RATES),
            }
        headers, row = _COLUMNS[list_name](words)
        entries = list_entries(db, business, list_name, containing=containing)
        table(headers, (row(e) for e in entries), as_json=as_json)


def _command(list_name: ListName, command: str, summary: str) -> None:
    def listed(
        ctx: typer.Context,
        business: str = typer.Option(..., "--business", help=BUSINESS_HELP),
        containing: str | None = typer.Option(None, "--containing", help=CONTAINING_HELP),
        as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        _print(ctx, list_name, business, containing, as_json)

    listed.__doc__ = summary
    lists_app.command(command)(listed)


for _name, _command_name, _summary in [
    (ListName.CATEGORIES, "categories", "Categories: code, name, type (EXPENSE or INCOME)."),
    (
        ListName.TAX_RATES,
        "tax-rates",
        "Tax rates: code, name, rate in percent, what it applies to.",
    ),
    (ListName.SUPPLIERS, "suppliers", "Suppliers, with their default category and tax rate."),
    (ListName.CUSTOMERS, "customers", "Customers, with their default category and tax rate."),
    (ListName.BANK_ACCOUNTS, "bank-accounts", "Bank accounts: name, masked number, currency."),
]:
    _command(_name, _command_name, _summary)
