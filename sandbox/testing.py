"""Run a sandbox in a background thread for tests, demos and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from sandbox.app import create_app
from sandbox.seed import tenant_id
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState


@dataclass
class SandboxHandle:
    """A running sandbox: where it listens, an admin client, its settings and state."""

    base_url: str
    admin: httpx.Client
    settings: SandboxSettings
    state: SandboxState

    @property
    def authorize_url(self) -> str:
        """The OAuth authorization endpoint."""
        return f"{self.base_url}/oauth/authorize"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.base_url}/oauth/token"

    @property
    def revoke_url(self) -> str:
        """The OAuth revocation endpoint."""
        return f"{self.base_url}/oauth/revoke"

    @property
    def api_url(self) -> str:
        """The API base URL (``.../api/v1``)."""
        return f"{self.base_url}/api/v1"

    @staticmethod
    def tenant_id(name: str) -> str:
        """The seeded id of an organisation by name."""
        return tenant_id(name)

    def fault(self, fault: str, *, tenant_id: str | None = None, **spec: Any) -> None:
        """Switch a fault on (``POST /_admin/faults``; names and spec keys in docs/sandbox.md).

        Args:
            fault: The fault's name (``server_error``, ``latency``, ``consent_expired``, ...).
            tenant_id: Only this organisation's requests (default: every organisation's).
            **spec: ``path``, ``method``, ``count``, ``probability``, ``params``, ``after``.

        Raises:
            httpx.HTTPStatusError: The sandbox refused it (unknown fault, bad spec).
        """
        body: dict[str, Any] = {"fault": fault, **spec}
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        self.admin.post("/faults", json=body).raise_for_status()

    def clear_faults(self) -> None:
        """Switch every fault off."""
        self.admin.delete("/faults").raise_for_status()


def _admin_prefix(request: httpx.Request) -> None:
    if not request.url.path.startswith("/_admin"):
        request.url = request.url.copy_with(path="/_admin" + request.url.path)


@contextmanager
def running_sandbox(settings: SandboxSettings | None = None) -> Iterator[SandboxHandle]:
    """Start the sandbox with uvicorn on a free loopback port; stop it on exit.

    Args:
        settings: sandbox settings (default: test mode, in-memory, demo seed).

    Yields:
        A ``SandboxHandle``; ``handle.admin`` accepts paths with or without ``/_admin``.

    Raises:
        RuntimeError: the server did not start within 10 seconds.
    """
    settings = settings or SandboxSettings(test_mode=True)
    app = create_app(settings)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="critical", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"nomi-sandbox-{port}"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=base_url, timeout=30, event_hooks={"request": [_admin_prefix]})
    try:
        yield SandboxHandle(base_url, admin, settings, app.state.sandbox)
    finally:
        admin.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.sandbox.store.close()
