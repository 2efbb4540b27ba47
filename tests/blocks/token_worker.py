"""A worker process of the multi-process token test (``python -m tests.blocks.token_worker``).

Its threads call Nomi through one shared `BlockTokenProvider` until the deadline, then it prints one
JSON line: how many calls succeeded and how many failed, by error type.
"""

from __future__ import annotations

import faulthandler
import json
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import cast


def main(app_block: str, credentials_block: str, duration: float, threads: int) -> None:
    """Load the blocks, say ``ready``, wait for ``go`` on stdin, then call for ``duration`` s."""
    from blocks import NomiApp
    from blocks.tokens import BlockTokenProvider
    from nomi.client import NomiClient
    from nomi.errors import NomiError
    from nomi.retry import RetryPolicy

    app = cast(NomiApp, NomiApp.load(app_block))
    tokens = BlockTokenProvider(credentials_block, app, leeway=timedelta(seconds=1))
    tenant_id = tokens.tenant_id
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    retry = RetryPolicy(max_attempts=3, base_delay=0.05)

    def run() -> None:
        with NomiClient(app.api_base_url, tenant_id, tokens, retry=retry) as nomi:
            while time.time() < start_at + duration:
                try:
                    nomi.list_users()
                    outcome = "ok"
                except NomiError as exc:
                    outcome = type(exc).__name__
                except Exception as exc:  # counted, so the test shows what went wrong
                    outcome = f"unexpected {type(exc).__name__}: {exc}"[:200]
                with lock:
                    counts[outcome] += 1
                time.sleep(0.05)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    start_at = time.time()
    faulthandler.dump_traceback_later(duration + 90, exit=True)  # a hang shows its stacks
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sys.stdout.write(json.dumps(dict(counts)) + "\n")
    sys.stdout.flush()
    faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
