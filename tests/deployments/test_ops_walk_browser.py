"""Ops walk the Prefect UI in headless Chromium: connect, a setting, a rule, an import, a publish.

Every action is a Custom-run form filled in and submitted in the browser (the consent pages of
the sandbox too); the API is only polled for the runs' states. The overview artifact of the
business is then opened in the UI and must show what the walk changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.local import free_port, prefect_server, serving_app, serving_deployments
from deployments.serve import load_specs
from tests.deployments.browser_support import (
    UI_TIMEOUT,
    add_items,
    choose,
    deployment_ids,
    open_custom_run,
    submit_run,
    type_text,
    wait_final,
)
from tests.deployments.test_demo import CHROMIUM, CHROMIUM_ARGS, can_browse

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not can_browse(), reason="headless Chromium or Playwright is missing"),
]
BUSINESS = "bright-smile"
ADMIN = "priya@brightsmile.example"
ITEMS_CSV = (
    "external_id,kind,contact_name,reference,date,currency,total,tax_amount,description\n"
    "walk-001,cost,Royal Mail,RM-1,2026-03-02,GBP,12.00,0.00,Stamps\n"
    "walk-002,cost,Royal Mail,RM-2,2026-03-03,GBP,8.50,0.00,Parcel\n"
)


@pytest.fixture
def walk_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A Prefect server, the sandbox, the OAuth callback, the served deployments, a business."""
    from connector.settings import ConnectorSettings
    from deployments.callback import create_callback_app
    from deployments.demo_steps import Demo, save_app_block, seed
    from sandbox.settings import SandboxSettings
    from sandbox.testing import running_sandbox

    home = tmp_path / "home"
    home.mkdir()
    database_url = f"sqlite:///{home / 'connector.db'}"
    monkeypatch.setenv("NOMI_CONNECTOR_HOME", str(home))
    monkeypatch.setenv("NOMI_CONNECTOR_DATABASE_URL", database_url)
    port = free_port()
    # The callback (a uvicorn thread) resumes the run through Prefect: serving_app runs it in a
    # copy of this context (temporary_settings below); the environment serves the served flows.
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    sandbox_settings = SandboxSettings(test_mode=True, db_path=str(home / "sandbox.db"))
    with (
        temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
        prefect_server(tmp_path / "prefect", port=port) as api_url,
        running_sandbox(sandbox_settings) as sandbox,
        serving_app(
            create_callback_app(ConnectorSettings(home=home)), port=free_port(), name="callback"
        ) as callback_url,
    ):
        demo = Demo(home, database_url, sandbox_url=sandbox.base_url, callback_url=callback_url)
        seed(demo)
        save_app_block(demo)
        with serving_deployments(api_url, tmp_path / "serve.log", expected=len(load_specs())):
            yield {"api": api_url, "home": home, "db": database_url, "sandbox": sandbox}


def test_ops_walk_every_action_in_the_prefect_ui(
    walk_servers: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    api = walk_servers["api"]
    ui = api.removesuffix("/api")
    ids = deployment_ids(api)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        step = "start"
        try:
            step = "connect"
            deployment = ids["connect-to-nomi/manual"]
            open_custom_run(page, ui, deployment)
            type_text(page, "Business", BUSINESS)
            type_text(page, "Acting User", ADMIN)
            run = submit_run(page, api, deployment, ui)
            page.get_by_role("button", name="Resume").click(timeout=UI_TIMEOUT)
            link = page.get_by_role("link", name="the Nomi consent page")
            consent_url = link.get_attribute("href", timeout=UI_TIMEOUT)
            assert consent_url, "no consent link in the Resume dialog"
            page.goto(consent_url)
            page.fill("input[name=email]", "owner@brightsmile.example", timeout=UI_TIMEOUT)
            page.fill("input[name=password]", "brightsmile-owner")
            page.locator("form button[type=submit], form input[type=submit]").first.click()
            page.locator("input[name=tenant_id]").first.check(timeout=UI_TIMEOUT)
            page.locator("form button[type=submit], form input[type=submit]").first.click()
            page.locator("button[value=allow], input[value=allow]").first.click(timeout=UI_TIMEOUT)
            page.wait_for_load_state()
            state = wait_final(api, run, timeout=180)
            assert state["type"] == "COMPLETED", state

            step = "settings"
            deployment = ids["change-connection-settings/manual"]
            open_custom_run(page, ui, deployment)
            type_text(page, "Business", BUSINESS)
            type_text(page, "Acting user", ADMIN)
            choose(page, "Publish images with expense claims", "off")
            state = wait_final(api, submit_run(page, api, deployment, ui))
            assert state["type"] == "COMPLETED", state
            assert_setting(walk_servers["db"], publish_images_with_expense_claims=False)

            step = "rule"
            deployment = ids["manage-contact-rules/manual"]
            open_custom_run(page, ui, deployment)
            type_text(page, "Business", BUSINESS)
            type_text(page, "Acting user", ADMIN)
            type_text(page, "Supplier or customer name", "Royal Mail")
            type_text(page, "Category", "Office Expenses")
            type_text(page, "Tax rate", "Exempt")
            state = wait_final(api, submit_run(page, api, deployment, ui))
            assert state["type"] == "COMPLETED", state

            step = "import"
            inbox = walk_servers["home"] / "inbox" / BUSINESS
            inbox.mkdir(parents=True)
            (inbox / "walk.csv").write_text(ITEMS_CSV, encoding="utf-8")
            deployment = ids["import-items/manual"]
            open_custom_run(page, ui, deployment)
            type_text(page, "Business", BUSINESS)
            type_text(page, "Acting user", ADMIN)
            type_text(page, "File", "walk.csv")
            state = wait_final(api, submit_run(page, api, deployment, ui))
            assert state["type"] == "COMPLETED", state

            step = "publish"
            deployment = ids["publish-items-to-nomi/manual"]
            open_custom_run(page, ui, deployment)
            type_text(page, "Business", BUSINESS)
            type_text(page, "Acting User", ADMIN)
            add_items(page, "External Ids", ["walk-001", "walk-002"])
            state = wait_final(api, submit_run(page, api, deployment, ui))
            assert state["type"] == "COMPLETED", state
            assert "published 2 of 2" in state["message"], state
            sandbox = walk_servers["sandbox"]
            tenant = sandbox.tenant_id("Bright Smile Dental Ltd")
            records = sandbox.admin.get(
                "/_admin/records", params={"tenant_id": tenant, "kind": "expense"}
            ).json()
            published = published_ids(walk_servers["db"], ["walk-001", "walk-002"])
            assert len(published) == 2, published  # both items published, with their record
            by_source = {str(r.get("source_id")): str(r.get("id")) for r in records}
            for item_id, record_id in published.items():
                assert by_source.get(item_id) == record_id, (item_id, records)

            step = "overview"
            # The key's page lists each version: the sync wrote one, the publish a newer one.
            page.goto(f"{ui}/artifacts/key/overview-{BUSINESS}")
            page.get_by_text(f"publish-items-{BUSINESS}").first.wait_for(timeout=UI_TIMEOUT)
            page.get_by_text(f"sync-{BUSINESS}").first.wait_for(timeout=UI_TIMEOUT)
            page.goto(f"{ui}/artifacts/artifact/{latest_artifact(api, f'overview-{BUSINESS}')}")
            page.get_by_text("Royal Mail").first.wait_for(timeout=UI_TIMEOUT)
            body = page.inner_text("body")
            assert "Office Expenses" in body, body[-3000:]
            assert "published 2" in body, body[-3000:]
        except Exception:
            page.screenshot(path=str(tmp_path / f"failed-at-{step}.png"), full_page=True)
            raise
        finally:
            browser.close()


def assert_setting(database_url: str, **expected: object) -> None:
    """The business's connection settings hold ``expected``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as db:
        row = db.execute(text("SELECT * FROM connection_settings")).mappings().one()
    engine.dispose()
    assert {k: bool(row[k]) for k in expected} == expected, dict(row)


def published_ids(database_url: str, external_ids: list[str]) -> dict[str, str]:
    """Item id (as Nomi's source_id) -> Nomi record id, of the named items now published."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(database_url)
    query = text(
        "SELECT id, nomi_record_id FROM items WHERE status = 'published' AND external_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    with engine.connect() as db:
        rows = db.execute(query, {"ids": external_ids}).all()
    engine.dispose()
    return {str(uuid.UUID(hex=str(row[0]))): str(row[1]) for row in rows}


def latest_artifact(api_url: str, key: str) -> str:
    """The id of the newest artifact with ``key`` (the one its key's page lists first)."""
    import httpx

    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}
    [row] = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30).json()
    return str(row["id"])
