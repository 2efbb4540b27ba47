"""Every deployment's Custom-run form, opened in headless Chromium as ops open it.

A real ``prefect server start`` (with its UI) and ``deployments.serve`` serving every deployment
of ``prefect.yaml``; for each deployment the form must show the title of each field of its
``params`` model (an optional one as "Title (Optional)"), and no "Property is type None" toggle.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.local import free_port, prefect_server, serving_deployments
from deployments.serve import load_flow, load_specs
from tests.deployments.test_demo import CHROMIUM, CHROMIUM_ARGS, can_browse

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not can_browse(), reason="headless Chromium or Playwright is missing"),
]
SPECS = load_specs()
#: What the UI writes under an ``X | None`` field: 'Property is type "None"'.
NONE_TOGGLE = re.compile(r'Property is type "?None"?')


def field_titles() -> dict[str, list[str]]:
    """``<flow>/<deployment>`` -> the titles of its ``params`` fields, as the schema gives them."""
    titles: dict[str, list[str]] = {}
    for spec in SPECS:
        flow = load_flow(spec)
        hint = typing.get_type_hints(flow.fn)["params"]
        (model,) = [t for t in (typing.get_args(hint) or (hint,)) if t is not type(None)]
        properties = model.model_json_schema()["properties"]
        titles[f"{flow.name}/{spec.name}"] = [
            field.get("title", name.replace("_", " ").title()) for name, field in properties.items()
        ]
    return titles


def deployment_ids(api_url: str) -> dict[str, str]:
    """``<flow>/<deployment>`` -> deployment id."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        rows = client.post("/deployments/filter", json={}).json()
    return {f"{flows[d['flow_id']]}/{d['name']}": d["id"] for d in rows}


def forms_as_chromium_shows_them(
    ui: str, ids: dict[str, str], titles: dict[str, list[str]], shots: Path
) -> dict[str, Any]:
    """Open each Custom-run form; the titles it lacks and whether a None toggle shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    found: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            for name, deployment_id in sorted(ids.items()):
                page.goto(f"{ui}/deployments/deployment/{deployment_id}/run")
                missing = []
                for title in titles[name]:
                    try:
                        label = re.compile(rf"^{re.escape(title)}( \(Optional\))?$")
                        page.get_by_text(label).first.wait_for(timeout=20_000)
                    except PlaywrightTimeout:
                        missing.append(title)
                body = page.inner_text("body")
                page.screenshot(path=str(shots / f"{name.replace('/', '--')}.png"), full_page=True)
                found[name] = {"missing": missing, "none_toggle": bool(NONE_TOGGLE.search(body))}
        finally:
            browser.close()
    return found


def test_every_deployment_form_shows_its_fields_titles_and_no_none_toggle(tmp_path: Path) -> None:
    titles = field_titles()
    port = free_port()
    with (
        # This process drains its logs to that server on the way out, not to a temporary one.
        temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
        prefect_server(tmp_path / "prefect", port=port) as api_url,
        serving_deployments(api_url, tmp_path / "serve.log", expected=len(SPECS)),
    ):
        ids = deployment_ids(api_url)
        assert sorted(ids) == sorted(titles)
        shown = forms_as_chromium_shows_them(api_url.removesuffix("/api"), ids, titles, tmp_path)

    assert {name: s["missing"] for name, s in shown.items() if s["missing"]} == {}
    assert [name for name, s in shown.items() if s["none_toggle"]] == []
