"""BlockTokenProvider: one refresh per expiry across threads, rotation saved, invalid_grant."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
import pytest
from pydantic import SecretStr

from blocks import NomiCredentials
from blocks.tokens import BlockTokenProvider, forget_cached_credentials, refresh_lock_name
from nomi.errors import ConnectionLostError
from tests.blocks.conftest import make_app

pytestmark = pytest.mark.prefect


class FakeTokenEndpoint:
    """A rotating token endpoint: each refresh token works once (no grace)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current_refresh = "refresh-0"
        self.refreshes = 0
        self.invalid_grants = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        with self.lock:
            if form.get("refresh_token") != self.current_refresh:
                self.invalid_grants += 1
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.refreshes += 1
            self.current_refresh = f"refresh-{self.refreshes}"
            return httpx.Response(
                200,
                json={
                    "access_token": f"access-{self.refreshes}",
                    "refresh_token": self.current_refresh,
                    "expires_in": 1800,
                    "token_type": "Bearer",
                },
            )


def provider(block_name: str, endpoint: FakeTokenEndpoint) -> BlockTokenProvider:
    oauth = make_app().oauth(http=httpx.Client(transport=httpx.MockTransport(endpoint)))
    return BlockTokenProvider(block_name, make_app(), oauth=oauth)


def test_threads_share_one_refresh_and_the_rotated_token_is_saved(block_name: str) -> None:
    endpoint = FakeTokenEndpoint()
    providers = [provider(block_name, endpoint) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda p: p.access_token(), providers * 3))
    assert set(tokens) == {"access-1"}
    assert endpoint.refreshes == 1
    assert endpoint.invalid_grants == 0
    saved = cast(NomiCredentials, NomiCredentials.load(block_name))
    assert saved.refresh_token.get_secret_value() == "refresh-1"
    assert not saved.expires_within(timedelta(minutes=20))


def test_threads_asking_at_once_load_the_block_once(
    block_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's threads all ask for a token as it starts: one Prefect API read between them."""
    from blocks import tokens as tokens_module

    real_load = tokens_module._load
    loads: list[str] = []

    def counted_load(name: str) -> NomiCredentials:
        loads.append(name)
        creds = real_load(name)
        time.sleep(0.2)  # the others ask while the first read is still in flight
        return creds

    monkeypatch.setattr(tokens_module, "_load", counted_load)
    NomiCredentials(
        tenant_id="tenant-1",
        tenant_name="Bright Smile Dental Ltd",
        access_token=SecretStr("access-valid"),
        refresh_token=SecretStr("refresh-0"),
        access_token_expires_at=datetime.now(UTC) + timedelta(hours=1),
    ).save(block_name, overwrite=True)
    endpoint = FakeTokenEndpoint()
    providers = [provider(block_name, endpoint) for _ in range(5)]
    start = threading.Barrier(5)

    def ask(p: BlockTokenProvider) -> str:
        start.wait()
        return p.access_token()

    with ThreadPoolExecutor(5) as pool:
        tokens = list(pool.map(ask, providers))
    assert tokens == ["access-valid"] * 5
    assert loads == [block_name]
    assert endpoint.refreshes == 0


def test_a_rejected_token_is_refreshed_once_even_if_asked_twice(block_name: str) -> None:
    endpoint = FakeTokenEndpoint()
    tokens = provider(block_name, endpoint)
    first = tokens.access_token()
    assert tokens.refresh_after_rejection(first) == "access-2"
    # A second thread rejected the same old token: it gets the new one, no new refresh.
    assert tokens.refresh_after_rejection(first) == "access-2"
    assert endpoint.refreshes == 2


def test_invalid_grant_without_a_peer_rotation_is_a_lost_connection(block_name: str) -> None:
    endpoint = FakeTokenEndpoint()
    endpoint.current_refresh = "someone-else"
    with pytest.raises(ConnectionLostError) as caught:
        provider(block_name, endpoint).access_token()
    assert "refresh-0" not in str(caught.value)


def test_the_refresh_lock_is_a_global_limit_of_one(block_name: str) -> None:
    from prefect.client.orchestration import get_client

    provider(block_name, FakeTokenEndpoint()).access_token()
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(refresh_lock_name(block_name))
    assert limit.limit == 1


def test_a_reconnect_is_picked_up_after_forgetting_the_cache(block_name: str) -> None:
    tokens = provider(block_name, FakeTokenEndpoint())
    assert tokens.access_token() == "access-1"
    creds = cast(NomiCredentials, NomiCredentials.load(block_name))
    creds.access_token = SecretStr("access-reconnected")
    creds.save(block_name, overwrite=True)
    assert tokens.access_token() == "access-1"  # cached in the process
    forget_cached_credentials(block_name)
    assert tokens.access_token() == "access-reconnected"


def test_rotated_tokens_are_saved_even_when_the_prefect_api_fails_for_a_moment(
    block_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = FakeTokenEndpoint()
    monkeypatch.setattr("blocks.tokens.SAVE_BACKOFF_SECONDS", 0.01)
    real_save = NomiCredentials.save
    failures = {"left": 2}

    def flaky_save(self: NomiCredentials, *args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise httpx.HTTPStatusError(
                "503", request=httpx.Request("PUT", "http://p"), response=httpx.Response(503)
            )
        return real_save(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(NomiCredentials, "save", flaky_save)
    assert provider(block_name, endpoint).access_token() == "access-1"
    assert failures["left"] == 0
    monkeypatch.setattr(NomiCredentials, "save", real_save)
    saved = cast(NomiCredentials, NomiCredentials.load(block_name))
    assert saved.refresh_token.get_secret_value() == "refresh-1"
