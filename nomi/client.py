"""The Nomi API client (sync httpx): connections, the lists and contacts, plus `nomi.documents`.

```python
with NomiClient(base_url, tenant_id, StaticTokenProvider(token)) as nomi:
    suppliers = nomi.iter_suppliers(updated_since=bookmark)
    for supplier in suppliers:
        ...
    bookmark = suppliers.server_time
```
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from nomi.auth import MAX_REFRESHES_PER_REQUEST
from nomi.documents import NomiDocuments
from nomi.models import (
    BankAccount,
    Category,
    ContactCreate,
    Customer,
    NomiUser,
    Organisation,
    OrganisationSettings,
    Supplier,
    TaxRate,
)
from nomi.paging import ListResult
from nomi.retry import RetryPolicy
from nomi.session import API as _API
from nomi.session import records_of, unwrap
from nomi.tokens import StaticTokenProvider, TokenProvider

__all__ = [
    "MAX_REFRESHES_PER_REQUEST",
    "NomiClient",
    "RetryPolicy",
    "StaticTokenProvider",
    "TokenProvider",
]

M = TypeVar("M", bound=BaseModel)
_MAX_PAGE_SIZE = 1000


class NomiClient(NomiDocuments):
    """A client for one Nomi organisation (tenant): typed reads and idempotent writes.

    Args:
        api_base_url: Nomi's base URL, with or without the trailing ``/api/v1``.
        tenant_id: The organisation every call acts for (sent as ``Nomi-Tenant-Id``).
        tokens: Where access tokens come from.
        throttle: The tenant's shared throttle (see `nomi.throttle.throttle_for`); None disables it.
        retry: Bounds of the client's own retries.
        http: An httpx client (tests pass one on a MockTransport); one is made and owned otherwise.
    """

    # ---- reads -------------------------------------------------------------------------------

    def connections(self) -> list[Organisation]:
        """The organisations the current token may act for (``GET /connections``)."""
        body = self._request("GET", "/connections", tenant=False).json()
        return [Organisation.model_validate(row) for row in records_of(body)]

    def delete_connection(self, connection_id: str) -> None:
        """Disconnect one organisation from the token's consent (``DELETE /connections/{id}``).

        ``connection_id`` is the ``id`` of an entry of `connections` (not the tenant id). A
        DELETE repeats safely, so transient failures are retried like a read.

        Raises:
            RejectedError: 404 when the consent no longer holds that connection.
            ConnectionLostError, TransientError: See `nomi.errors`.
        """
        path = f"/connections/{quote(connection_id, safe='')}"
        self._request("DELETE", path, tenant=False, idempotent=True)

    def iter_suppliers(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Supplier]:
        """Stream suppliers page by page (see `iter_list`)."""
        return self.iter_list("/suppliers", Supplier, updated_since, include_archived, page_size)

    def iter_customers(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Customer]:
        """Stream customers page by page (see `iter_list`)."""
        return self.iter_list("/customers", Customer, updated_since, include_archived, page_size)

    def iter_categories(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[Category]:
        """Stream the chart of accounts page by page (see `iter_list`)."""
        return self.iter_list("/categories", Category, updated_since, include_archived, page_size)

    def iter_tax_rates(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[TaxRate]:
        """Stream tax rates page by page (see `iter_list`)."""
        return self.iter_list("/tax-rates", TaxRate, updated_since, include_archived, page_size)

    def iter_bank_accounts(
        self,
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[BankAccount]:
        """Stream bank accounts page by page (see `iter_list`)."""
        return self.iter_list(
            "/bank-accounts", BankAccount, updated_since, include_archived, page_size
        )

    def iter_list(
        self,
        path: str,
        model: type[M],
        updated_since: datetime | None = None,
        include_archived: bool = False,
        page_size: int = 500,
    ) -> ListResult[M]:
        """Stream one list endpoint.

        Args:
            path: The list path under ``/api/v1``, e.g. ``/suppliers``.
            model: The model of one record.
            updated_since: Only records with ``updated_at >= updated_since``.
            include_archived: Include ARCHIVED/DELETED records (tombstones).
            page_size: Records per page (at most 1000).

        Returns:
            A `ListResult`: iterate it once; then ``.server_time`` is the bookmark to keep.

        Raises:
            NomiError: Any failure while paging (`PaginationError` for a repeated page).
        """
        size = max(1, min(page_size, _MAX_PAGE_SIZE))
        params: dict[str, Any] = {"page_size": size}
        if updated_since is not None:
            params["updated_since"] = _iso(updated_since)
        if include_archived:
            params["include_archived"] = "true"

        def fetch(page: int) -> bytes:
            # Raw bytes: `ListResult` parses and validates the whole page in one pass.
            return self._request("GET", _API + path, params={**params, "page": page}).content

        return ListResult(model, fetch, page_size=size, max_pages=1_000_000 // size + 10)

    def list_users(self) -> list[NomiUser]:
        """Every user of the organisation (expense claimants)."""
        return list(self.iter_list("/users", NomiUser, page_size=_MAX_PAGE_SIZE))

    def get_organisation(self) -> OrganisationSettings:
        """The organisation's base currency, lock date and VAT registration (``settings.read``)."""
        body = self._request("GET", _API + "/organisation").json()
        return OrganisationSettings.model_validate(unwrap(body))

    # ---- writes ------------------------------------------------------------------------------

    def create_supplier(self, contact: ContactCreate, idempotency_key: str) -> Supplier:
        """Create a supplier (see `create`)."""
        return self.create("/suppliers", contact, Supplier, idempotency_key)

    def create_customer(self, contact: ContactCreate, idempotency_key: str) -> Customer:
        """Create a customer (see `create`)."""
        return self.create("/customers", contact, Customer, idempotency_key)


def _iso(moment: datetime) -> str:
    """An ISO-8601 UTC timestamp with ``Z``."""
    text = moment.isoformat()
    return text.replace("+00:00", "Z")
