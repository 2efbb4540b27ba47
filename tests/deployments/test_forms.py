"""Every deployment's form as the Prefect UI builds it: no "type None" toggles, words shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from deployments.serve import load_flow, load_specs

SPECS = load_specs()
#: A ``<placeholder>`` the UI's markdown would swallow as an HTML tag.
PLACEHOLDER = re.compile(r"<[^<>\s]+>")


def form_of(spec: Any) -> dict[str, Any]:
    """The parameter schema the deployment's Custom-run form is built from."""
    return load_flow(spec).parameters.model_dump_for_openapi()


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object of a JSON schema, with where it is."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def nullable_plain_fields(schema: dict[str, Any]) -> list[str]:
    """Fields shown with a "Property is type None" toggle where a plain optional would serve.

    That is ``X | None``: an ``anyOf`` with a null branch (the UI shows 'Property is type
    "None"' under it), whatever the other branch is.
    """
    found = []
    for path, node in walk(schema):
        branches = node.get("anyOf") or node.get("oneOf") or []
        if not any(branch.get("type") == "null" for branch in branches):
            continue
        found.append(path)
    return found


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.entrypoint}/{s.name}" for s in SPECS])
def test_no_form_field_is_a_string_or_none_toggle(spec):
    assert nullable_plain_fields(form_of(spec)) == []


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.entrypoint}/{s.name}" for s in SPECS])
def test_form_descriptions_have_no_placeholder_the_markdown_would_swallow(spec):
    texts = [spec.description]
    texts += [
        node[key]
        for _, node in walk(form_of(spec))
        for key in ("description", "title")
        if isinstance(node.get(key), str)
    ]
    assert [t for t in texts if PLACEHOLDER.search(t)] == []


@pytest.mark.parametrize(
    "spec",
    [s for s in SPECS if s.entrypoint.startswith("flows/ops/")],
    ids=lambda s: s.entrypoint,
)
def test_every_ops_form_field_has_a_title_and_a_description(spec):
    schema = form_of(spec)
    (model,) = schema["definitions"].values()
    assert {"business"} <= set(model["properties"])
    for name, field in model["properties"].items():
        assert field.get("title"), name
        assert field.get("description"), name
    assert "acting_user" in model["properties"]


def test_the_check_sees_a_string_or_none_field():
    """The check itself: ``str | None`` and ``date | None`` are refused, a plain field is not."""
    schema = {
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "b": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "c": {"type": "string", "default": ""},
        }
    }
    assert nullable_plain_fields(schema) == ["/properties/a", "/properties/b"]
