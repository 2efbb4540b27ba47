"""Names against lists really synced from the sandbox: the codes docs/intake.md uses resolve, and
the CLI lists them (sandbox over loopback HTTP, a real SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from connector.admin.cli import app
from connector.admin.lookup import (
    ArchivedEntryError,
    UnknownNameError,
    find_bank_account,
    find_category,
    find_contact,
    find_tax_rate,
)
from connector.store.db import make_engine, migrate
from connector.store.db import session as db_session
from connector.store.models import Business
from connector.sync.catalog import LISTS
from connector.sync.lists import SyncStatus, sync_list
from nomi.client import NomiClient
from nomi.tokens import RefreshingTokenProvider
from sandbox.settings import SandboxSettings
from sandbox.testing import running_sandbox
from tests.connector.factories import make_business, make_connection
from tests.nomi.conftest import FAST, ORG, consent, make_oauth


@dataclass
class Synced:
    engine: Engine
    url: str
    business: Business
    tenant_id: str


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Bright Smile's five lists synced in full from the sandbox into a fresh database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('synced')}/connector.db"
    engine = make_engine(url)
    migrate(engine)
    settings = SandboxSettings(test_mode=True, per_minute=0, concurrent=0, token_per_minute=0)
    with running_sandbox(settings) as sandbox:
        tenant_id = sandbox.tenant_id(ORG)
        with db_session(engine) as s:
            business = make_business(s, slug="bright-smile")
            connection = make_connection(s, business=business, nomi_tenant_id=tenant_id)
        oauth = make_oauth(sandbox)
        code, verifier = consent(sandbox, oauth, tenant_id)
        tokens = RefreshingTokenProvider(oauth, oauth.exchange_code(code, verifier))
        with NomiClient(sandbox.base_url, tenant_id, tokens, retry=FAST) as nomi:
            for name in LISTS:
                report = sync_list(
                    engine, nomi, connection_id=connection.id, list_name=name, mode="full"
                )
                assert report.status == SyncStatus.OK, report
        oauth.close()
    try:
        yield Synced(engine, url, business, tenant_id)
    finally:
        engine.dispose()


def test_the_codes_and_names_the_sandbox_seeds_resolve_to_its_ids(synced: Synced) -> None:
    with Session(synced.engine) as db:
        office = find_category(db, synced.business, "453")
        assert office.name == "Office Expenses"
        assert find_category(db, synced.business, "office expenses").nomi_id == office.nomi_id
        assert find_category(db, synced.business, office.nomi_id).code == "453"
        assert find_tax_rate(db, synced.business, "std20").name == "Standard 20%"
        assert find_bank_account(db, synced.business, "****4821").name == "Business Current Account"
        assert find_contact(db, synced.business, "supplier", "royal mail").name == "Royal Mail"
        with pytest.raises(ArchivedEntryError, match="Sundry"):
            find_category(db, synced.business, "499")
        with pytest.raises(ArchivedEntryError, match="pre-2011"):
            find_tax_rate(db, synced.business, "STD175")
        with pytest.raises(UnknownNameError) as typo:
            find_category(db, synced.business, "Telephone and Internet")
    assert "'Telephone & Internet' (code 489)" in typo.value.suggestions


def test_the_cli_lists_the_synced_categories_with_their_codes(synced: Synced) -> None:
    listed = CliRunner().invoke(
        app, ["--database-url", synced.url, "lists", "categories", "--business", "bright-smile"]
    )
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "code\tname\ttype\tstatus\tnomi_id"
    assert len(lines) == 1 + 18  # every seeded category, archived ones too
    office = next(line for line in lines if line.startswith("453\t"))
    assert office.split("\t")[1:4] == ["Office Expenses", "EXPENSE", "ACTIVE"]
    assert "499\tSundry (old)\tEXPENSE\tARCHIVED\t" in listed.output
