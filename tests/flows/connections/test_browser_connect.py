"""connect-to-nomi driven through Nomi's consent pages by headless Chromium (Debian's build)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connector.rules.vocabulary import ConnectionStatus
from connector.store.models import Connection
from sandbox.seed import BRIGHT_SMILE, LOGINS
from sandbox.testing import SandboxHandle
from tests.flows.connections.test_connect_support import (
    CallbackServer,
    Member,
    app_block,
    authorize_link,
    callback,
    make_member,
    start_paused,
)

__all__ = ["app_block", "callback", "make_member"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACCOUNTANT_EMAIL, ACCOUNTANT_PASSWORD = LOGINS[1][0], LOGINS[1][1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def test_an_accountant_connects_a_client_business_in_a_real_browser(
    app_block: str,
    callback: CallbackServer,
    sandbox: SandboxHandle,
    make_member: Callable[..., Member],
    db_session_for: Callable[[], Session],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    member = make_member()
    run, _ = start_paused("connect", app_block, member.slug, member.email)
    tenant = sandbox.tenant_id(BRIGHT_SMILE)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(authorize_link(member.slug))
            page.fill("input[name=email]", ACCOUNTANT_EMAIL)
            page.fill("input[name=password]", ACCOUNTANT_PASSWORD)
            page.click("button[type=submit]")
            page.check(f"input[name=tenant_id][value='{tenant}']")
            page.click("button[type=submit]")
            page.click("button[name=decision][value=allow]")
            page.wait_for_load_state()
            assert page.url.startswith(callback.redirect_uri)
            assert "Nomi authorization received" in page.content()
        finally:
            browser.close()

    final = run.join()
    assert final.is_completed(), final.message
    with db_session_for() as s:
        connection = s.exec(
            select(Connection).where(Connection.business_id == member.business_id)
        ).one()
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.nomi_tenant_id == tenant
