"""`nomi-connector --help` starts fast: pandas and Prefect load only when a command needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_cli_loads_neither_pandas_nor_prefect() -> None:
    loaded = _python(
        "import sys, connector.admin.cli; "
        "print(sorted(m for m in ('pandas', 'prefect') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_help_lists_the_command_groups() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "nomi-connector"), "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for group in ("db", "business", "user", "member", "settings", "rules", "items", "history"):
        assert f" {group} " in done.stdout, (group, done.stdout)
