"""The committed OpenAPI document: `python -m sandbox.openapi --write` refreshes it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sandbox.app import create_app
from sandbox.settings import SandboxSettings

PATH = Path(__file__).with_name("openapi.json")


def current() -> dict[str, Any]:
    """The OpenAPI document the app serves (admin routes excluded)."""
    app = create_app(SandboxSettings(test_mode=True, seed="none"))
    try:
        return app.openapi()
    finally:
        app.state.sandbox.store.close()


def render(document: dict[str, Any]) -> str:
    """The canonical text of a document (stable key order, trailing newline)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document, or check that the committed one is current (exit 1 if not)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.openapi")
    parser.add_argument("--write", action="store_true", help="write sandbox/openapi.json")
    args = parser.parse_args(argv)
    text = render(current())
    if args.write:
        PATH.write_text(text)
        return 0
    if not PATH.exists() or PATH.read_text() != text:
        sys.stderr.write("sandbox/openapi.json is out of date: run make openapi\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
