"""Seed data that looks like five real UK businesses, and the bulk supplier generator.

The first three are the original demo organisations (their data is relied on by tests); Ostsee
Yachting books in euros and Pennine Print has a recent lock date.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from sandbox.clock import iso
from sandbox.store import Store

NAMESPACE = uuid.UUID("6f1c1f40-2b7e-4d1c-9a51-0d7f6a3c9e11")
SEEDED_AT = "2025-01-06T09:00:00.000000Z"

BRIGHT_SMILE = "Bright Smile Dental Ltd"
HARBOUR = "Harbour Coffee Co"
NORTHWIND = "Northwind Joinery Ltd"
OSTSEE = "Ostsee Yachting Ltd"
PENNINE = "Pennine Print Ltd"
ORGS = [(BRIGHT_SMILE, "BSD", None), (HARBOUR, "HCC", None), (NORTHWIND, "NWJ", "2021-03-31")]
# name, short code, lock date, base currency, lists like, bank accounts
EXTRA_ORGS: list[tuple[str, str, str | None, str, str, str]] = [
    (OSTSEE, "OSY", None, "EUR", NORTHWIND, "euro"),
    (PENNINE, "PPL", "2025-12-31", "GBP", HARBOUR, "sterling"),
]

LOGINS = [
    ("owner@brightsmile.example", "brightsmile-owner", "Priya Shah", [BRIGHT_SMILE]),
    (
        "accountant@ledgerline.example",
        "ledgerline-accountant",
        "Tom Ledger",
        [n for n, _, _ in ORGS] + [n for n, *_ in EXTRA_ORGS],
    ),
]

# code, name, rate, applies_to, status
TAX_RATES = [
    ("STD20", "Standard 20%", "20.00", "BOTH", "ACTIVE"),
    ("RED5", "Reduced 5%", "5.00", "BOTH", "ACTIVE"),
    ("ZERO", "Zero rated 0%", "0.00", "BOTH", "ACTIVE"),
    ("EXEMPT", "Exempt", "0.00", "BOTH", "ACTIVE"),
    ("NOVAT", "No VAT", "0.00", "BOTH", "ACTIVE"),
    ("STD20S", "20% (VAT on Income)", "20.00", "SALES", "ACTIVE"),
    ("STD20P", "20% (VAT on Expenses)", "20.00", "PURCHASES", "ACTIVE"),
    ("STD175", "Standard 17.5% (pre-2011)", "17.50", "BOTH", "ARCHIVED"),
]
# code, name, type, status
CATEGORIES = [
    ("200", "Sales", "INCOME", "ACTIVE"),
    ("260", "Other Revenue", "INCOME", "ACTIVE"),
    ("270", "Interest Income", "INCOME", "ACTIVE"),
    ("310", "Cost of Goods Sold", "EXPENSE", "ACTIVE"),
    ("400", "Advertising & Marketing", "EXPENSE", "ACTIVE"),
    ("404", "Bank Fees", "EXPENSE", "ACTIVE"),
    ("412", "Consulting & Accounting", "EXPENSE", "ACTIVE"),
    ("420", "Entertainment", "EXPENSE", "ACTIVE"),
    ("429", "General Expenses", "EXPENSE", "ACTIVE"),
    ("445", "Light, Power, Heating", "EXPENSE", "ACTIVE"),
    ("449", "Motor Vehicle Expenses", "EXPENSE", "ACTIVE"),
    ("453", "Office Expenses", "EXPENSE", "ACTIVE"),
    ("469", "Rent", "EXPENSE", "ACTIVE"),
    ("473", "Repairs and Maintenance", "EXPENSE", "ACTIVE"),
    ("485", "Subscriptions", "EXPENSE", "ACTIVE"),
    ("489", "Telephone & Internet", "EXPENSE", "ACTIVE"),
    ("493", "Travel - National", "EXPENSE", "ACTIVE"),
    ("499", "Sundry (old)", "EXPENSE", "ARCHIVED"),
]
# name, tax number, default tax code, default category code, status
ContactRow = tuple[str, str | None, str | None, str | None, str]
SUPPLIERS: dict[str, list[ContactRow]] = {
    BRIGHT_SMILE: [
        ("Henry Schein Minerva", "GB123456789", "STD20", "310", "ACTIVE"),
        ("Dental Directory", "GB987654321", "STD20", "310", "ACTIVE"),
        ("British Gas Business", "GB553322110", "RED5", "445", "ACTIVE"),
        ("BT Business", "GB245719348", "STD20", "489", "ACTIVE"),
        ("Royal Mail", None, "EXEMPT", "453", "ACTIVE"),
        ("Staples UK", "GB661234901", None, None, "ACTIVE"),
        ("Amazon EU Sarl", "GB727255821", None, None, "ACTIVE"),
        ("Dentsply Sirona UK", "GB341122987", "STD20", "310", "ARCHIVED"),
    ],
    HARBOUR: [
        ("Bristol Coffee Roasters", "GB445566778", "ZERO", "310", "ACTIVE"),
        ("Brakes Foodservice", "GB112233445", "ZERO", "310", "ACTIVE"),
        ("Octopus Energy", "GB998877665", "RED5", "445", "ACTIVE"),
        ("Square UK", None, "EXEMPT", "404", "ACTIVE"),
        ("Screwfix", "GB232323232", "STD20", "473", "ACTIVE"),
        ("Local Milk Co-op", None, None, None, "ACTIVE"),
    ],
    NORTHWIND: [
        ("Travis Perkins", "GB408556737", "STD20", "310", "ACTIVE"),
        ("Jewson", "GB403577620", "STD20", "310", "ACTIVE"),
        ("Shell UK Fuel", "GB235796532", "STD20", "449", "ACTIVE"),
        ("Vodafone Business", "GB569953277", "STD20", "489", "ACTIVE"),
        ("Axminster Tools", "GB113344556", None, None, "ACTIVE"),
    ],
}
CUSTOMERS: dict[str, list[ContactRow]] = {
    BRIGHT_SMILE: [
        ("NHS England", None, "EXEMPT", "200", "ACTIVE"),
        ("Denplan Ltd", "GB778899001", "EXEMPT", "200", "ACTIVE"),
        ("Private patients", None, None, None, "ACTIVE"),
    ],
    HARBOUR: [
        ("Harbour Deli Ltd", "GB667788990", "STD20S", "200", "ACTIVE"),
        ("Quayside Events", None, "STD20", "260", "ACTIVE"),
        ("Walk-in customers", None, None, None, "ACTIVE"),
    ],
    NORTHWIND: [
        ("Bramble Homes Ltd", "GB334455667", "STD20S", "200", "ACTIVE"),
        ("Oakridge Builders", "GB121314151", "STD20", "200", "ACTIVE"),
        ("Mrs E. Hartley", None, None, None, "ARCHIVED"),
    ],
}
ACCOUNTING_CODES = {"sales": "200", "office": "453", "phone": "489", "archived": "499"}
BANK_ACCOUNTS = [
    ("Business Current Account", "GBP", "****4821", "ACTIVE"),
    ("Business Savings", "GBP", "****7730", "ACTIVE"),
    ("Company Credit Card", "GBP", "****1204", "ACTIVE"),
    ("Old Euro Account", "EUR", "****9051", "ARCHIVED"),
]
EURO_BANK_ACCOUNTS = [
    ("Euro Current Account", "EUR", "****3307", "ACTIVE"),
    ("Sterling Account", "GBP", "****6142", "ACTIVE"),
    ("Dollar Account", "USD", "****8815", "ACTIVE"),
    ("Company Card (EUR)", "EUR", "****2290", "ACTIVE"),
]
BANKS = {"sterling": BANK_ACCOUNTS, "euro": EURO_BANK_ACCOUNTS}
USERS = {
    BRIGHT_SMILE: [
        ("Priya Shah", "priya@brightsmile.example"),
        ("Dr Owen Hughes", "owen@brightsmile.example"),
    ],
    HARBOUR: [
        ("Sam Rivers", "sam@harbourcoffee.example"),
        ("Ana Costa", "ana@harbourcoffee.example"),
    ],
    NORTHWIND: [
        ("Gareth Price", "gareth@northwind.example"),
        ("Lucy Price", "lucy@northwind.example"),
    ],
}


def stable_id(*parts: str) -> str:
    """A deterministic UUID for a seeded thing, so ids survive a restart and can be documented."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def tenant_id(name: str) -> str:
    """The seeded id of an organisation."""
    return stable_id("tenant", name)


def _doc(tenant: str, kind: str, key: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": stable_id(tenant, kind, key),
        **fields,
        "source_id": None,
        "updated_at": SEEDED_AT,
        "version": 1,
    }


def _contacts(
    tid: str,
    rows: list[tuple[str, str | None, str | None, str | None, str]],
    kind: str,
    currency: str = "GBP",
) -> list[dict[str, Any]]:
    return [
        _doc(
            tid,
            kind,
            name,
            name=name,
            status=status,
            tax_number=tax,
            email=None,
            default_tax_rate_id=stable_id(tid, "tax_rate", rate) if rate else None,
            default_category_id=stable_id(tid, "category", cat) if cat else None,
            currency=currency,
        )
        for name, tax, rate, cat, status in rows
    ]


def seed_organisation(
    store: Store,
    name: str,
    *,
    created_at: float,
    short_code: str | None = None,
    lock_date: str | None = None,
    like: str = BRIGHT_SMILE,
    currency: str = "GBP",
    banks: str = "sterling",
) -> str:
    """Seed one organisation with the lists of a demo organisation (``like``); returns its id.

    ``currency`` is its base currency (and its contacts'); ``banks`` picks its bank accounts
    (``sterling``: the demo ones; ``euro``: EUR, GBP and USD accounts).
    """
    tid = tenant_id(name)
    store.add_tenant(
        {
            "id": tid,
            "name": name,
            "short_code": short_code,
            "currency": currency,
            "lock_date": lock_date,
            "created_at": iso(created_at),
        }
    )
    store.put_many(
        "tax_rate",
        tid,
        [
            _doc(tid, "tax_rate", code, code=code, name=n, rate=rate, applies_to=applies, status=st)
            for code, n, rate, applies, st in TAX_RATES
        ],
    )
    store.put_many(
        "category",
        tid,
        [
            _doc(tid, "category", code, code=code, name=n, type=typ, status=st)
            for code, n, typ, st in CATEGORIES
        ],
    )
    store.put_many("supplier", tid, _contacts(tid, SUPPLIERS[like], "supplier", currency))
    store.put_many("customer", tid, _contacts(tid, CUSTOMERS[like], "customer", currency))
    store.put_many(
        "bank_account",
        tid,
        [
            _doc(tid, "bank_account", n, name=n, currency=cur, masked_number=masked, status=st)
            for n, cur, masked, st in BANKS[banks]
        ],
    )
    store.put_many(
        "user",
        tid,
        [
            _doc(tid, "user", email, name=n, email=email, status="ACTIVE")
            for n, email in USERS[like]
        ],
    )
    return tid


def seed_demo(store: Store, *, created_at: float) -> None:
    """Seed the five organisations, their lists and the two sign-ins."""
    for name, short, lock in ORGS:
        seed_organisation(
            store, name, created_at=created_at, short_code=short, lock_date=lock, like=name
        )
    for name, short, lock, currency, like, banks in EXTRA_ORGS:
        seed_organisation(
            store,
            name,
            created_at=created_at,
            short_code=short,
            lock_date=lock,
            like=like,
            currency=currency,
            banks=banks,
        )
    for email, password, name, orgs in LOGINS:
        store.add_login(email, password, name, [tenant_id(o) for o in orgs])


_FIRST = [
    "Acme",
    "Albion",
    "Apex",
    "Beacon",
    "Bridge",
    "Castle",
    "Crown",
    "Delta",
    "Eagle",
    "Forge",
    "Granite",
    "Harbour",
    "Kestrel",
    "Lion",
    "Meridian",
    "Oak",
    "Pennine",
    "Quay",
    "Riverside",
    "Severn",
    "Thames",
    "Union",
    "Vale",
    "Wessex",
    "York",
]
_SECOND = [
    "Supplies",
    "Trading",
    "Wholesale",
    "Logistics",
    "Services",
    "Print",
    "Electrical",
    "Plumbing",
    "Foods",
    "Office",
    "Hire",
    "Timber",
    "Digital",
    "Cleaning",
    "Security",
]
_SUFFIX = ["Ltd", "Limited", "LLP", "& Sons", "Group", "UK Ltd"]


def bulk_suppliers(store: Store, tenant: str, count: int, *, updated_at: str) -> int:
    """Bulk-insert ``count`` generated suppliers for a tenant (100,000 in a few seconds)."""
    rng = random.Random(f"{tenant}:{store.count('supplier', tenant)}")
    start = store.count("supplier", tenant)
    docs = []
    for n in range(start, start + count):
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)} {rng.choice(_SUFFIX)} {n:06d}"
        docs.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "name": name,
                "status": "ACTIVE",
                "tax_number": f"GB{rng.randrange(10**8, 10**9)}",
                "email": None,
                "default_tax_rate_id": None,
                "default_category_id": None,
                "currency": "GBP",
                "source_id": None,
                "updated_at": updated_at,
                "version": 1,
            }
        )
    store.put_many("supplier", tenant, docs)
    return count
