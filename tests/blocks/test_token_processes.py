"""A token expiring under 8 processes x 4 threads: zero invalid_grant, one refresh per expiry."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from blocks import NomiApp, NomiCredentials
from blocks.tokens import ensure_refresh_lock
from nomi.client import NomiClient
from nomi.oauth import NomiOAuth
from nomi.tokens import StaticTokenProvider

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

PROCESSES = 8
THREADS = 4
TTL = 4.0
LEEWAY = 1.0
DURATION = 8.0
REPO = Path(__file__).resolve().parents[2]


def connect(sandbox, app: NomiApp) -> NomiCredentials:
    """Walk the consent pages and build the connection's credentials block."""
    from sandbox.browser import complete_consent

    oauth: NomiOAuth = app.oauth()
    verifier, _ = oauth.new_pkce()
    state = oauth.new_state()
    tenant_id = sandbox.tenant_id("Bright Smile Dental Ltd")
    with httpx.Client() as browser:
        query = complete_consent(
            browser,
            oauth.authorization_url(state, verifier),
            email="owner@brightsmile.example",
            password="brightsmile-owner",
            tenant_id=tenant_id,
        )
    tokens = oauth.exchange_code(query["code"], verifier)
    oauth.close()
    static = StaticTokenProvider(tokens.access_token)
    with NomiClient(sandbox.base_url, tenant_id, static) as nomi:
        (organisation,) = nomi.connections()
    return NomiCredentials.from_tokens(tokens, organisation)


def test_a_token_expiring_under_many_processes_is_refreshed_once_per_expiry(
    prefect_server: None, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from sandbox.settings import SandboxSettings
    from sandbox.testing import running_sandbox

    settings = SandboxSettings(
        test_mode=True,
        per_minute=0,
        concurrent=0,
        token_per_minute=0,
        access_token_ttl=TTL,
        refresh_grace=0,
    )
    suffix = uuid.uuid4().hex[:8]
    with running_sandbox(settings) as sandbox:
        app = NomiApp(
            client_id="nomi-connector-sandbox",
            client_secret=SecretStr("sandbox-client-secret"),
            authorize_url=sandbox.authorize_url,
            token_url=sandbox.token_url,
            revoke_url=sandbox.revoke_url,
            api_base_url=sandbox.base_url,
            redirect_uri="http://127.0.0.1:8765/callback",
        )
        app.save(f"app-{suffix}")
        connect(sandbox, app).save(f"conn-{suffix}")
        ensure_refresh_lock(f"conn-{suffix}")
        connected_at = time.time()
        sandbox.admin.post("/reset-stats").raise_for_status()

        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        argv = [f"app-{suffix}", f"conn-{suffix}", str(DURATION), str(THREADS)]
        logs = [(tmp_path / f"worker-{i}.log").open("w") for i in range(PROCESSES)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.blocks.token_worker", *argv],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[i],
                text=True,
            )
            for i in range(PROCESSES)
        ]
        for i, worker in enumerate(workers):  # each has imported Prefect and loaded the blocks
            assert worker.stdout is not None
            ready = worker.stdout.readline().strip()
            assert ready == "ready", (tmp_path / f"worker-{i}.log").read_text()[-3000:]
        # The token issued at connect time has expired by now: all 32 threads start on it.
        time.sleep(max(0.0, TTL - (time.time() - connected_at)))
        started = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=150) for worker in workers]
        elapsed = time.monotonic() - started
        stats = sandbox.admin.get("/tokens").json()

    results = []
    for i, (worker, (out, _)) in enumerate(zip(workers, outputs, strict=True)):
        logs[i].close()
        assert worker.returncode == 0, (tmp_path / f"worker-{i}.log").read_text()[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    failures = {k: v for r in results for k, v in r.items() if k != "ok"}
    assert failures == {}, (results, stats)
    assert all(r.get("ok", 0) > 0 for r in results), (results, stats)
    assert stats["invalid_grant"] == 0, stats
    # The token was already expired at the start, then lives TTL - LEEWAY seconds per refresh.
    most = 1 + math.ceil(elapsed / (TTL - LEEWAY))
    assert 1 <= stats["refreshed"] <= most, stats
