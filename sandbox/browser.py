"""A tiny form-following "browser" that completes the sandbox's consent pages with httpx.

Used by the demo and the tests; it works on any page built from plain HTML forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


@dataclass
class Form:
    """One ``<form>``: where it posts, its inputs and its submit buttons."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """Collects the forms of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record forms, inputs and buttons."""
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").upper()))
        elif self.forms and tag == "input":
            form, name, kind = self.forms[-1], a.get("name", ""), a.get("type", "text")
            if kind == "radio":
                form.radios.setdefault(name, []).append(a.get("value", ""))
                if "checked" in a:
                    form.fields[name] = a.get("value", "")
            elif kind == "submit":
                form.buttons.append((name, a.get("value", "")))
            elif name:
                form.fields[name] = a.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1].buttons.append((a.get("name", ""), a.get("value", "")))


def forms_of(page: str) -> list[Form]:
    """The forms of an HTML page."""
    parser = FormParser()
    parser.feed(page)
    return parser.forms


class ConsentError(RuntimeError):
    """The consent pages did not go as expected."""


def complete_consent(
    http: httpx.Client,
    authorize_url: str,
    *,
    email: str,
    password: str,
    tenant_id: str | None = None,
    decision: str = "allow",
) -> dict[str, str]:
    """Sign in, pick the organisation, press Allow or Deny, and return the redirect's query.

    Args:
        http: a client (redirects are not followed).
        authorize_url: the full ``/oauth/authorize?...`` URL.
        email: sign-in email.
        password: sign-in password.
        tenant_id: the organisation to choose (default: the preselected one).
        decision: ``allow`` or ``deny``.

    Returns:
        The query parameters of the redirect (``code`` and ``state``, or ``error``).

    Raises:
        ConsentError: a page lacked the expected form or the flow ended elsewhere.
    """
    page = http.get(authorize_url)
    if page.status_code != 200:
        raise ConsentError(f"authorize page answered {page.status_code}")
    response = _submit(http, page, {"email": email, "password": password})
    if tenant_id is not None:
        response = _submit(http, response, {"tenant_id": tenant_id})
    else:
        response = _submit(http, response, {})
    response = _submit(http, response, {}, button=("decision", decision))
    if response.status_code != 302:
        raise ConsentError(f"expected a redirect, got {response.status_code}")
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


def _submit(
    http: httpx.Client,
    page: httpx.Response,
    values: dict[str, str],
    button: tuple[str, str] | None = None,
) -> httpx.Response:
    forms = forms_of(page.text)
    if page.status_code != 200 or not forms:
        raise ConsentError(f"no form on the page (status {page.status_code})")
    form = forms[0]
    data = {**form.fields, **values}
    if button is not None:
        if button not in form.buttons:
            raise ConsentError(f"no button {button} on the page")
        data[button[0]] = button[1]
    return http.request(form.method, urljoin(str(page.url), form.action), data=data)
