"""The blocks register for the UI and load back with their secrets masked in reprs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from pydantic import SecretStr

from blocks import NomiApp, NomiCredentials
from tests.blocks.conftest import make_app

pytestmark = pytest.mark.prefect
REPO = Path(__file__).resolve().parents[2]


def test_prefect_block_register_finds_both_blocks(prefect_server: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    prefect = Path(sys.executable).with_name("prefect")
    done = subprocess.run(
        [str(prefect), "block", "register", "-m", "blocks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        slugs = {t.slug for t in client.read_block_types()}
    assert {"nomi-app", "nomi-credentials"} <= slugs


def test_blocks_round_trip_and_never_print_secrets(prefect_server: None) -> None:
    name = f"app-{uuid.uuid4().hex[:8]}"
    make_app().save(name)
    app = cast(NomiApp, NomiApp.load(name))
    assert app.client_secret.get_secret_value() == "sandbox-client-secret"
    assert "sandbox-client-secret" not in repr(app)
    assert "sandbox-client-secret" not in repr(app.oauth())
    creds = NomiCredentials(
        tenant_id="t1",
        tenant_name="Org",
        access_token=SecretStr("acc-secret"),
        refresh_token=SecretStr("ref-secret"),
        access_token_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    creds.save(f"conn-{name}")
    loaded = cast(NomiCredentials, NomiCredentials.load(f"conn-{name}"))
    refresh_token = loaded.refresh_token
    assert refresh_token is not None
    assert refresh_token.get_secret_value() == "ref-secret"
    for text in (repr(loaded), str(loaded), repr(loaded.refresh_token)):
        assert "acc-secret" not in text
        assert "ref-secret" not in text
