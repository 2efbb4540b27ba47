"""Run every benchmark module of this package (``python -m bench`` or ``make bench``).

Discovers ``bench/*.py`` modules that define ``main()``, runs them one after another (they print
their own ``BENCH ...`` lines) and exits non-zero if any of them raised.
``python -m bench NAME ...`` runs only the named modules.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    """Names of the benchmark modules (every module of this package except the runner)."""
    folder = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(folder)])
        if not m.name.startswith("_") and not m.ispkg
    )


def run(names: list[str]) -> int:
    """Run the named benchmark modules; return how many failed."""
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        main = getattr(module, "main", None)
        if not callable(main):
            continue
        started = time.perf_counter()
        print(f"# bench.{name}", flush=True)
        try:
            main()
        except Exception:
            failed += 1
            traceback.print_exc()
            print(f"BENCH {name} FAILED", flush=True)
        print(f"# bench.{name} took {time.perf_counter() - started:.1f} s", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(1 if run(sys.argv[1:] or discover()) else 0)
