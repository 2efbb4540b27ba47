"""CPU seconds spent by this process and its child processes over a measured span (Linux /proc).

The publish benchmark prints where each side's CPU went, per item, so a missed ratio can be read
off its own run: the flow runs on one interpreter (one GIL), and on a small machine every process
of a side (the measured one, the sandbox, the Prefect server) shares the same cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: Roles of child processes, by a word of their command line (first match wins).
ROLES = (("sandbox.cli", "sandbox"), ("uvicorn", "prefect"), ("prefect", "prefect"))


@dataclass
class CpuSpan:
    """CPU seconds of one measured span."""

    wall: float = 0.0
    own: float = 0.0  #: this process (the measured side: bench baseline or flow)
    children: dict[str, float] = field(default_factory=dict)  #: by role (``ROLES``)
    machine: float = 0.0  #: every process of the machine, all cores

    def per_item_ms(self, items: int) -> dict[str, float]:
        """Milliseconds of CPU per item: this process, then each child role."""
        per = {"own": self.own, **self.children}
        return {role: 1000 * seconds / max(1, items) for role, seconds in per.items()}

    @property
    def total(self) -> float:
        """CPU seconds of this process and its children."""
        return self.own + sum(self.children.values())


def _cpu_seconds(pid: int | str) -> float:
    """``utime + stime`` of a process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> dict[int, str]:
    """Child processes of ``pid`` by role (processes of no known role are left out)."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = task.read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                command = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            role = next((name for word, name in ROLES if word in command), None)
            if role is not None:
                found[int(kid)] = role
    return found


def _machine_busy() -> float:
    """CPU seconds the machine spent busy since boot (all cores; idle and iowait excluded)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(values) - values[3] - values[4]) / _TICKS


@contextmanager
def measure_cpu() -> Iterator[CpuSpan]:
    """Measure the CPU of this process and its children over the ``with`` block.

    Yields:
        The span, filled in when the block ends.
    """
    me = os.getpid()
    kids = _children(me)
    before = {pid: _cpu_seconds(pid) for pid in kids}
    own, machine = _cpu_seconds(me), _machine_busy()
    span = CpuSpan()
    started = time.perf_counter()
    yield span
    span.wall = time.perf_counter() - started
    span.own = _cpu_seconds(me) - own
    span.machine = _machine_busy() - machine
    for pid, role in kids.items():  # a child that ended meanwhile counts 0 (it is gone)
        spent = max(0.0, _cpu_seconds(pid) - before[pid])
        span.children[role] = span.children.get(role, 0.0) + spent


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
