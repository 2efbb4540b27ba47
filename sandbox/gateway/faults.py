"""Fault injection: rules switched on through the admin API, matched per tenant, method and path."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_NAMES = frozenset(
    {
        "rate_limit_minute",
        "rate_limit_day",
        "rate_limit_concurrent",
        "rate_limit_app",
        "server_error",
        "latency",
        "connection_reset",
        "commit_then_drop",
        "token_rejected",
        "refresh_revoked",
        "consent_expired",
        "attachment_fail_once",
        "validation",
        "page_drift",
    }
)


@dataclass
class Fault:
    """One fault rule; ``count`` is how many more times it fires (None: until cleared).

    ``after``: how many more matching requests pass untouched before it starts firing (a fault
    "after N successes", e.g. a batch stopping part way).
    """

    id: int
    fault: str
    tenant_id: str | None = None
    method: str | None = None
    path: str | None = None
    count: int | None = None
    probability: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0
    after: int = 0


class FaultRegistry:
    """The active fault rules of one sandbox."""

    def __init__(self, seed: int | None = None) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    def add(
        self,
        fault: str,
        *,
        tenant_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        count: int | None = None,
        probability: float = 1.0,
        params: dict[str, Any] | None = None,
        after: int = 0,
    ) -> Fault:
        """Switch a fault on.

        Raises:
            ValueError: an unknown fault name.
        """
        if fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r}")
        rule = Fault(
            next(self._ids),
            fault,
            tenant_id,
            method.upper() if method else None,
            path,
            count,
            probability,
            dict(params or {}),
            after=after,
        )
        self._faults.append(rule)
        return rule

    def clear(self) -> None:
        """Switch every fault off."""
        self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        """The rules still armed, for inspection."""
        return [asdict(f) for f in self._faults]

    def match(
        self,
        names: str | Iterable[str],
        *,
        tenant_ids: Iterable[str | None] | None,
        method: str,
        path: str,
    ) -> Fault | None:
        """The first armed rule that applies to this request, consuming one firing of it."""
        wanted = {names} if isinstance(names, str) else set(names)
        tenants = set(tenant_ids or ())
        for rule in self._faults:
            if rule.fault not in wanted:
                continue
            if rule.tenant_id is not None and rule.tenant_id not in tenants:
                continue
            if rule.method is not None and rule.method != method.upper():
                continue
            if rule.path is not None and not path.startswith(rule.path):
                continue
            if rule.after > 0:
                rule.after -= 1
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self._faults.remove(rule)
            return rule
        return None
