"""The state of one running sandbox, built by the app factory and shared by its parts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.auth.tokens import TokenService
from sandbox.clock import Clock
from sandbox.gateway.faults import FaultRegistry
from sandbox.gateway.idempotency import IdempotencyKeys
from sandbox.gateway.limits import RateLimiter
from sandbox.settings import SandboxSettings
from sandbox.store import Store


@dataclass
class SandboxState:
    """Settings, clock, store and the services built on them (one per app)."""

    settings: SandboxSettings
    clock: Clock
    store: Store
    tokens: TokenService
    faults: FaultRegistry
    limits: RateLimiter
    keys: IdempotencyKeys
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50_000))
    attachment_failed: set[str] = field(default_factory=set)
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: SandboxSettings) -> SandboxState:
        """Wire the services of a sandbox around one store and one clock."""
        clock, store = Clock(), Store(settings.db_path)
        return cls(
            settings=settings,
            clock=clock,
            store=store,
            tokens=TokenService(store, clock, settings),
            faults=FaultRegistry(),
            limits=RateLimiter(settings, clock),
            keys=IdempotencyKeys(store, clock, settings),
        )
