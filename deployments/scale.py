"""Start the scaled-out topology on one machine: API servers and one services process on PostgreSQL
and Redis, process workers on a work pool, each its own process group. docs/scaling.md shows the
same topology over many machines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from deployments.local import QUIET_PREFECT, StartupError, free_port, wait_healthy

PREFECT = [sys.executable, "-m", "prefect"]
SERVER_START = [*PREFECT, "server", "start", "--no-services", "--host", "127.0.0.1"]


@dataclass(frozen=True)
class ScaleSettings:
    """Where the shared state of a scaled-out Prefect lives.

    Attributes:
        database_url: Prefect's PostgreSQL database (``postgresql+asyncpg://user@host/db``).
        redis_url: Redis for messaging, event cache, ordering and leases (``redis://host:6379/0``).
        docket_url: Redis for docket, the background-task queue of the services (another db).
        home: ``PREFECT_HOME`` of the processes started here (logs go to ``home/logs``).
        encryption_key: Fernet key for block secrets (production: set it and back it up).
    """

    database_url: str
    redis_url: str
    docket_url: str
    home: Path
    encryption_key: str | None = None


def server_environment(settings: ScaleSettings) -> dict[str, str]:
    """Environment variables of every API server and services process sharing ``settings``."""
    env = {
        "PREFECT_HOME": str(settings.home.resolve()),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": settings.database_url,
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_SERVER_EVENTS_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": settings.redis_url,
        "PREFECT_SERVER_DOCKET_URL": settings.docket_url,
        "PREFECT_SERVER_UI_ENABLED": "false",
        **QUIET_PREFECT,
    }
    if settings.encryption_key:
        env["PREFECT_SERVER_ENCRYPTION_KEY"] = settings.encryption_key
    return env


def client_environment(api_url: str, home: Path) -> dict[str, str]:
    """Environment variables of a worker or CLI process talking to ``api_url``."""
    return {"PREFECT_HOME": str(home.resolve()), "PREFECT_API_URL": api_url, **QUIET_PREFECT}


def _base_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its Prefect API/server settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_", "PREFECT_REDIS_"))
    }
    env.update(extra)
    return env


@dataclass
class GroupProcess:
    """A child process leading its own process group (its children share the group)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The leader's process id (also the group id)."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the leader runs."""
        return self.process.poll() is None

    def descendants(self) -> list[int]:
        """Process ids of the leader's living descendants (read from ``/proc``)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found: list[int] = []
        frontier = [self.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found.extend(children)
            frontier.extend(children)
        return found

    def kill(self) -> list[int]:
        """SIGKILL the group and every descendant at once (a machine dying); returns their pids."""
        victims = self.descendants()
        _signal_group(self.pid, signal.SIGKILL)
        for pid in victims:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return victims

    def stop(self, grace: float = 15) -> None:
        """SIGTERM the group, then SIGKILL whatever outlives ``grace`` seconds."""
        if not self.alive():
            _signal_group(self.pid, signal.SIGKILL)  # orphans left in the group
            return
        victims = self.descendants()
        _signal_group(self.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        _signal_group(self.pid, signal.SIGKILL)
        for pid in victims:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's log (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group that may be gone already."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_group(
    name: str,
    args: list[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    cwd: Path | None = None,
) -> GroupProcess:
    """Start ``args`` as the leader of a new process group, logging to ``log_dir/<name>.log``.

    Args:
        name: A short name (log file, messages).
        args: The command line.
        env: The whole environment of the process.
        log_dir: Folder of the log file (created if missing).
        cwd: Working directory (default: this process's).

    Returns:
        The started process.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return GroupProcess(name=name, process=process, log_path=log_path)


def upgrade_database(settings: ScaleSettings, *, timeout: float = 240) -> None:
    """Create or upgrade Prefect's tables (``prefect server database upgrade -y``) once per release.

    Raises:
        StartupError: The upgrade failed or timed out.
    """
    env = _base_environment(server_environment(settings))
    try:
        result = subprocess.run(
            [*PREFECT, "server", "database", "upgrade", "-y"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise StartupError(f"prefect server database upgrade took over {timeout:.0f}s") from error
    if result.returncode != 0:
        raise StartupError(f"prefect server database upgrade failed: {result.stderr[-2000:]}")


@dataclass
class Cluster:
    """A running scaled-out Prefect: API servers, one services process, workers."""

    settings: ScaleSettings
    api_urls: list[str]
    processes: list[GroupProcess] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        """Where every process of the cluster logs."""
        return self.settings.home / "logs"

    def client_env(self, server: int = 0, **extra: str) -> dict[str, str]:
        """The whole environment of a client process talking to API server number ``server``."""
        url = self.api_urls[server % len(self.api_urls)]
        return _base_environment({**client_environment(url, self.settings.home), **extra})

    def start_worker(
        self,
        pool: str,
        name: str,
        *,
        limit: int,
        server: int = 0,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> GroupProcess:
        """Start ``prefect worker start --type process`` on ``pool`` talking to one API server.

        Args:
            pool: The work pool (created by the worker if missing).
            name: The worker's name (shown on flow runs as their worker).
            limit: Most flow runs the worker runs at once.
            server: Which API server it talks to (round robin over ``api_urls``).
            cwd: The checkout the flow runs import from.
            env: Extra environment (the connector's settings).

        Returns:
            The worker process.
        """
        worker = start_group(
            f"worker-{name}",
            [
                *PREFECT,
                "worker",
                "start",
                "--pool",
                pool,
                "--type",
                "process",
                "--name",
                name,
                "--limit",
                str(limit),
            ],
            env={**self.client_env(server), **(env or {})},
            log_dir=self.log_dir,
            cwd=cwd,
        )
        self.processes.append(worker)
        return worker

    def logs(self, chars: int = 2000) -> str:
        """The end of every process's log (for failure messages)."""
        return "\n".join(f"--- {p.name} ---\n{p.log_tail(chars)}" for p in self.processes)


@contextmanager
def prefect_cluster(
    settings: ScaleSettings,
    *,
    api_servers: int = 2,
    timeout: float = 180,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Run Prefect API servers and one background-services process on shared PostgreSQL and Redis.

    Args:
        settings: The shared databases and the home folder.
        api_servers: How many ``--no-services`` API server processes to start.
        timeout: Seconds to wait for the database upgrade and each server's ``/api/ready``.
        extra_env: More server settings (e.g. a faster repossessor loop).

    Yields:
        The cluster; every process it started (workers included) is stopped on exit.

    Raises:
        StartupError: A server did not become ready (its log is in the message).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings, timeout=timeout)
    env = _base_environment({**server_environment(settings), **(extra_env or {})})
    cluster = Cluster(settings=settings, api_urls=[])
    with ExitStack() as stack:
        stack.callback(_stop_all, cluster)
        for number in range(api_servers):
            port = free_port()
            server = start_group(
                f"api-{number}",
                [*SERVER_START, "--port", str(port)],
                env=env,
                log_dir=cluster.log_dir,
            )
            cluster.processes.append(server)
            url = f"http://127.0.0.1:{port}/api"
            cluster.api_urls.append(url)
            # One at a time: each server registers the block types at start-up, and two doing it
            # together on an empty database collide (unique violation, the second one exits).
            try:
                wait_healthy(f"{url}/ready", timeout=timeout, process=server.process)
            except StartupError as error:
                raise StartupError(f"{server.name}: {error}\n{server.log_tail()}") from error
        services = start_group(
            "services", [*PREFECT, "server", "services", "start"], env=env, log_dir=cluster.log_dir
        )
        cluster.processes.append(services)
        time.sleep(0.5)
        if not services.alive():
            raise StartupError(f"prefect server services exited:\n{services.log_tail()}")
        yield cluster


def _stop_all(cluster: Cluster) -> None:
    """Stop workers first, then services and API servers."""
    for process in reversed(cluster.processes):
        process.stop()
