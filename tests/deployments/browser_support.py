"""Driving the Prefect UI's Custom-run forms in headless Chromium, as ops fill them in.

The UI renders a deployment's ``params`` model as nested schema-form properties: each has a
header with its title (``Title (Optional)`` when it has a default) and a body holding its control
(a textarea for text, a select button for a choice, an "Add item" list for a list of strings).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

#: How long one element may take to appear on a loaded 2-core machine (milliseconds).
UI_TIMEOUT = 120_000


def deployment_ids(api_url: str) -> dict[str, str]:
    """``<flow>/<deployment>`` -> deployment id."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        rows = client.post("/deployments/filter", json={}).json()
    return {f"{flows[d['flow_id']]}/{d['name']}": d["id"] for d in rows}


def form_field(page: Page, title: str) -> Locator:
    """The body (the control) of the form property titled ``title`` (optional or not)."""
    label = (
        "span[contains(concat(' ', @class, ' '), ' schema-form-property__label ')]"
        f"[normalize-space()='{title}' or starts-with(normalize-space(), '{title} (')]"
    )
    header = f"div[contains(@class, 'p-label__header')][.//{label}]"
    prop = f"//div[contains(concat(' ', @class, ' '), ' schema-form-property ')][{header}]"
    return page.locator(f"xpath={prop}/div[contains(@class, 'p-label__body')]").first


def type_text(page: Page, title: str, value: str) -> None:
    """Type ``value`` into the text field titled ``title`` (replacing what it holds)."""
    control = form_field(page, title).locator("textarea, input").first
    control.wait_for(timeout=UI_TIMEOUT)
    control.fill(value)


def choose(page: Page, title: str, option: str) -> None:
    """Pick ``option`` in the select titled ``title``."""
    button = form_field(page, title).locator("button.p-select-button__control").first
    button.scroll_into_view_if_needed(timeout=UI_TIMEOUT)
    button.click(timeout=UI_TIMEOUT)
    options = page.locator(".p-select-option")
    try:
        options.first.wait_for(timeout=5000)
    except Exception:  # the click did not open the menu (it does not always): the keyboard does
        button.focus()
        page.keyboard.press("ArrowDown")
    options.filter(has_text=re.compile(rf"^\s*{re.escape(option)}\s*$")).first.click(
        timeout=UI_TIMEOUT
    )


def add_items(page: Page, title: str, values: list[str]) -> None:
    """Add each of ``values`` to the list field titled ``title`` ("Add item", then type)."""
    body = form_field(page, title)
    controls = body.locator("textarea, input[type=text]")
    for index, value in enumerate(values):
        body.get_by_role("button", name="Add item").click(timeout=UI_TIMEOUT)
        control = controls.nth(index)
        control.wait_for(timeout=UI_TIMEOUT)
        control.fill(value)
        control.press("Tab")  # the form takes a list item's value when it loses focus
    # A busy machine can re-render the list between two items: what shows is what is sent.
    deadline = time.monotonic() + UI_TIMEOUT / 1000
    while (shown := [controls.nth(i).input_value() for i in range(len(values))]) != values:
        assert time.monotonic() < deadline, f"{title!r} shows {shown}, not {values}"
        for index, value in enumerate(values):
            if shown[index] != value:
                controls.nth(index).fill(value)
                controls.nth(index).press("Tab")
        page.wait_for_timeout(250)


def open_custom_run(page: Page, ui: str, deployment_id: str) -> None:
    """Open a deployment's Custom-run form and wait until its fields show."""
    page.goto(f"{ui}/deployments/deployment/{deployment_id}/run")
    page.locator(".schema-form-property__label").first.wait_for(timeout=UI_TIMEOUT)


def submit_run(page: Page, api_url: str, deployment_id: str, ui: str) -> str:
    """Press Submit on a Custom-run form, then open the new flow run's page; returns its id.

    The UI answers Submit with a toast and the deployment's page; the toast's "View run" is
    re-rendered while that page loads, so the run is found through the API and opened by URL.
    """
    before = set(flow_run_ids(api_url, deployment_id))
    page.get_by_role("button", name="Submit", exact=True).click(timeout=UI_TIMEOUT)
    deadline = time.monotonic() + UI_TIMEOUT / 1000
    while not (new := set(flow_run_ids(api_url, deployment_id)) - before):
        # The form's own complaint (a field it refused) says why, if it gave one.
        assert time.monotonic() < deadline, (
            f"Submit created no flow run; the page at {page.url} reads: "
            f"{page.inner_text('body')[-2000:]}"
        )
        page.wait_for_timeout(500)
    (run_id,) = new
    page.goto(f"{ui}/runs/flow-run/{run_id}")
    return run_id


def flow_run_ids(api_url: str, deployment_id: str) -> list[str]:
    """The ids of a deployment's flow runs."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200}
    rows = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=30).json()
    return [row["id"] for row in rows]


def run_state(api_url: str, run_id: str) -> dict[str, str]:
    """A flow run's state: its type, name and message."""
    state = httpx.get(f"{api_url}/flow_runs/{run_id}", timeout=30).json()["state"] or {}
    return {k: str(state.get(k) or "") for k in ("type", "name", "message")}


def wait_final(api_url: str, run_id: str, timeout: float = 120) -> dict[str, str]:
    """A flow run's state once it is final (or the last one seen after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        state = run_state(api_url, run_id)
        if state["type"] in FINAL or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
