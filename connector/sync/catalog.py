"""The catalog of Nomi's five reference lists: for each, its table, its client call and its row.

`list_specs` is what `connector.sync.lists.sync_list` syncs; `LISTS` names them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.rules.names import normalise_name
from connector.rules.vocabulary import ListName
from connector.store.base import table_of
from connector.store.models import BankAccount, Category, Customer, Supplier, TaxRate
from connector.sync.writer import ACTIVE, ARCHIVED
from nomi.client import NomiClient
from nomi.paging import ListResult


@dataclass(frozen=True)
class ListSpec:
    """What one list is: its table, its client call and how a Nomi record becomes a row."""

    name: ListName
    table: sa.Table
    fetch: Callable[..., ListResult[Any]]
    columns: tuple[str, ...]
    to_row: Callable[[Any], tuple[Any, ...]]  # values in ``columns`` order


def _status(value: str | None) -> str:
    return ACTIVE if (value or ACTIVE).upper() == ACTIVE else ARCHIVED


def _contact(rec: Any) -> tuple[Any, ...]:
    name = rec.name[:255]
    return (
        name,
        normalise_name(rec.name)[:255],
        _status(rec.status),
        rec.tax_number,
        rec.default_tax_rate_id,
        rec.default_category_id,
        rec.currency,
    )


def _category(rec: Any) -> tuple[Any, ...]:
    return (rec.name[:255], _status(rec.status), rec.code, rec.type)


def _tax_rate(rec: Any) -> tuple[Any, ...]:
    return (rec.name[:255], _status(rec.status), rec.code, rec.rate, rec.applies_to)


def _bank_account(rec: Any) -> tuple[Any, ...]:
    return (rec.name[:255], _status(rec.status), rec.currency, rec.masked_number)


#: The columns the supplier and customer lists write, in ``_contact`` order.
CONTACT_COLUMNS = (
    "name",
    "name_normalised",
    "status",
    "tax_number",
    "default_tax_rate_id",
    "default_category_id",
    "currency",
)


def list_specs() -> dict[str, ListSpec]:
    """Each list by name: its table, client call, columns and row converter."""
    return {
        ListName.SUPPLIERS: ListSpec(
            ListName.SUPPLIERS,
            table_of(Supplier),
            NomiClient.iter_suppliers,
            CONTACT_COLUMNS,
            _contact,
        ),
        ListName.CUSTOMERS: ListSpec(
            ListName.CUSTOMERS,
            table_of(Customer),
            NomiClient.iter_customers,
            CONTACT_COLUMNS,
            _contact,
        ),
        ListName.CATEGORIES: ListSpec(
            ListName.CATEGORIES,
            table_of(Category),
            NomiClient.iter_categories,
            ("name", "status", "code", "type"),
            _category,
        ),
        ListName.TAX_RATES: ListSpec(
            ListName.TAX_RATES,
            table_of(TaxRate),
            NomiClient.iter_tax_rates,
            ("name", "status", "code", "rate", "applies_to"),
            _tax_rate,
        ),
        ListName.BANK_ACCOUNTS: ListSpec(
            ListName.BANK_ACCOUNTS,
            table_of(BankAccount),
            NomiClient.iter_bank_accounts,
            ("name", "status", "currency", "masked_number"),
            _bank_account,
        ),
    }


LISTS: tuple[str, ...] = tuple(name.value for name in ListName)
