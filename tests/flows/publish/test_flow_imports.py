"""A publish run's process does not import pandas: each flow run is a process of its own, so an
import it does not need is CPU paid on every run (0.4 s of pandas, issue 22's publish-cpu)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "module",
    ["flows.auto_publish_to_nomi", "flows.publish_items_to_nomi", "flows.sync_nomi_reference_data"],
)
def test_a_publish_or_sync_flow_imports_without_pandas(module: str) -> None:
    code = f"import sys, {module}; print('pandas' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
