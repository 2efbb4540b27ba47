"""The layout rules of issue 18: short modules, small folders, flow functions that fit a screen.

Checked over the product's folders (``tests/`` and the Alembic migrations are not): every module
at most 400 lines, every folder at most 12 modules (``__init__.py`` not counted), every ``@flow``
function at most 60 lines (from its ``def`` to its last line, decorators not counted). The rules
and the allowlist are described in docs/ARCHITECTURE.md ("Layout rules").
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("blocks", "tasks", "flows", "deployments", "nomi", "connector", "sandbox", "bench")
EXCLUDED = ("connector/store/migrations",)
MAX_MODULE_LINES = 400
MAX_FOLDER_MODULES = 12
MAX_FLOW_LINES = 60
#: How far an allowlisted module (lines) or folder (modules) may still grow past its size below.
MODULE_GROWTH = 40
FOLDER_GROWTH = 4
#: Over (or at) a limit and being split by other work: name -> its size when listed, lines for a
#: module, modules for a folder. Remove an entry once its module or folder is within the limit
#: (empty since December 2026).
ALLOWLIST: dict[str, int] = {}


def _excluded(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return "__pycache__" in path.parts or any(
        relative == e or relative.startswith(e + "/") for e in EXCLUDED
    )


def _folders() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        top = ROOT / name
        found += [top, *(p for p in sorted(top.rglob("*")) if p.is_dir())]
    return [folder for folder in found if not _excluded(folder)]


def _modules() -> list[Path]:
    return [module for folder in _folders() for module in sorted(folder.glob("*.py"))]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _is_flow(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "flow"
    return isinstance(target, ast.Name) and target.id == "flow"


def _flow_functions(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of each function of ``path`` decorated with ``@flow``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_flow(d) for d in node.decorator_list)
    ]


def _over(name: str, size: int, limit: int, growth: int) -> str | None:
    """Why ``name`` of ``size`` breaks its limit (the allowlist's ceiling if it has one)."""
    if name in ALLOWLIST:
        ceiling = ALLOWLIST[name] + growth
        if size > ceiling:
            return f"{name}: {size} (allowlisted at {ALLOWLIST[name]}, ceiling {ceiling})"
        return None
    return f"{name}: {size} (limit {limit})" if size > limit else None


def test_every_module_has_at_most_400_lines() -> None:
    found = [_over(_name(m), _lines(m), MAX_MODULE_LINES, MODULE_GROWTH) for m in _modules()]
    too_long = [reason for reason in found if reason]
    assert not too_long, "modules over the line limit (split them):\n" + "\n".join(too_long)


def test_every_folder_has_at_most_12_modules() -> None:
    found = []
    for folder in _folders():
        count = sum(1 for m in folder.glob("*.py") if m.name != "__init__.py")
        found.append(_over(_name(folder), count, MAX_FOLDER_MODULES, FOLDER_GROWTH))
    too_big = [reason for reason in found if reason]
    assert not too_big, "folders over the module limit (make a subpackage):\n" + "\n".join(too_big)


def test_every_flow_function_has_at_most_60_lines() -> None:
    too_long = [
        f"{_name(module)}:{function}: {lines} lines (limit {MAX_FLOW_LINES})"
        for module in _modules()
        for function, lines in _flow_functions(module)
        if lines > MAX_FLOW_LINES
    ]
    assert not too_long, "flow functions over the line limit (move work into tasks):\n" + "\n".join(
        too_long
    )


def test_the_checks_see_the_flows_and_every_checked_folder() -> None:
    flows = [f for m in _modules() for f, _ in _flow_functions(m)]
    assert "auto_publish_to_nomi" in flows
    assert all((ROOT / name).is_dir() for name in CHECKED)
    assert not any(_name(m).startswith("tests/") for m in _modules())


def test_every_allowlist_entry_names_a_module_or_folder_that_exists() -> None:
    missing = [name for name in ALLOWLIST if not (ROOT / name).exists()]
    assert not missing, f"stale allowlist entries (remove them): {missing}"
