"""Local plumbing for the demo and ``make ui``: a Prefect server subprocess and loopback web apps.

Everything listens on 127.0.0.1 and stops when its context manager exits.
"""

from __future__ import annotations

import contextvars
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

SERVER_COMMAND = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}


class StartupError(RuntimeError):
    """A local server did not come up."""


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on 127.0.0.1, otherwise any free port."""
    candidates = [preferred, 0] if preferred else [0]
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port or 0))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise StartupError("no free port on 127.0.0.1")


def prefect_environment(prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment variables of a process using the local Prefect home (and server, if given)."""
    env = {"PREFECT_HOME": str(prefect_home.resolve()), **QUIET_PREFECT}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def wait_healthy(url: str, *, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    """Poll ``url`` until it answers 200.

    Raises:
        StartupError: The process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StartupError(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise StartupError(f"{url} did not answer within {timeout:.0f}s")


@contextmanager
def prefect_server(prefect_home: Path, *, port: int, timeout: float = 120) -> Iterator[str]:
    """Run ``prefect server start`` on 127.0.0.1 with its own ``PREFECT_HOME``.

    Args:
        prefect_home: The server's home (its SQLite database lives there); created if missing.
        port: Port to listen on.
        timeout: Seconds to wait for ``/api/health``.

    Yields:
        The API URL (``http://127.0.0.1:<port>/api``); the server is stopped on exit.

    Raises:
        StartupError: The server did not become healthy (see ``<prefect_home>/server.log``).
    """
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(prefect_environment(prefect_home))
    # The UI asks this URL for the API; its default is port 4200 whatever --port says, so a demo
    # on a free port showed "Can't connect to Server API at http://127.0.0.1:4200/api".
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    log_path = prefect_home / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C reaches only us, and we stop the server
            # after what still talks to it (a serving runner pauses its deployments on the way
            # out; with the server gone at the same moment the demo hung after Ctrl-C).
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        try:
            wait_healthy(f"{api_url}/health", timeout=timeout, process=process)
        except StartupError as error:
            raise StartupError(f"{error}; see {log_path}") from error
        yield api_url
    finally:
        drain_prefect_workers()
        stop_process(process)


def drain_prefect_workers() -> None:
    """Send this process's buffered logs and events before the server goes away."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:  # the worker never started
            pass
        drained = EventsWorker.drain_all()
        if inspect.isawaitable(drained):
            await drained

    run_coro_as_sync(drain())


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 15) -> None:
    """Terminate a child process, killing it if it outlives ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


SERVE_COMMAND = [sys.executable, "-m", "deployments.serve"]
#: How often the serving runner looks for runs to start (Prefect's default is 10 s).
RUNNER_POLL_SECONDS = "1"


def ready_deployments(api_url: str) -> dict[str, str]:
    """``<flow>/<deployment>`` -> status of every deployment the server knows."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        rows = client.post("/deployments/filter", json={}).json()
    return {f"{flows.get(d['flow_id'], '?')}/{d['name']}": d["status"] for d in rows}


@contextmanager
def serving_deployments(
    api_url: str, log_path: Path, *, expected: int, timeout: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """Serve the deployments of ``prefect.yaml`` without schedules in a child process.

    The demo's own runs go through these deployments (``run_deployment``), so the Prefect UI
    shows each run under its deployment; the child executes them in its own subprocesses.

    Args:
        api_url: The Prefect API the child serves against.
        log_path: Where the child's output (and its runs' logs) go.
        expected: How many deployments must be polled (status ``READY``) before yielding.
        timeout: Seconds to wait for that.

    Raises:
        StartupError: The child exited, or the deployments were not ready in time.
    """
    env = dict(
        os.environ, PREFECT_API_URL=api_url, PREFECT_RUNNER_POLL_FREQUENCY=RUNNER_POLL_SECONDS
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*SERVE_COMMAND, "--no-schedules"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops this child in turn
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise StartupError(
                    f"deployments.serve exited ({process.returncode}); see {log_path}"
                )
            statuses = ready_deployments(api_url)
            if len(statuses) >= expected and all(s == "READY" for s in statuses.values()):
                break
            if time.monotonic() > deadline:
                raise StartupError(f"deployments not ready within {timeout:.0f}s: {statuses}")
            time.sleep(0.5)
        yield process
    finally:
        stop_serving(process)


def stop_serving(process: subprocess.Popen[bytes], *, grace: float = 30) -> None:
    """Stop a serving runner as Ctrl-C does (SIGINT), killing it if it outlives ``grace``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def serving_app(app: Any, *, port: int, name: str) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a background thread on 127.0.0.1 (access log off).

    The thread runs in a copy of the caller's context, so the app's Prefect calls use the caller's
    Prefect settings (a ``temporary_settings`` API URL), not the process-global ones; a new thread
    would otherwise see the global context, which a test harness may point at another server.

    Yields:
        The base URL; the server is stopped on exit.

    Raises:
        StartupError: The app did not start within 10 seconds.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(server.run,), daemon=True, name=name)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise StartupError(f"{name} did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ui_main(argv: list[str] | None = None) -> None:
    """``make ui``: reopen the demo's Prefect UI (same ``PREFECT_HOME``) until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m deployments.local")
    parser.add_argument("--home", default=os.environ.get("NOMI_CONNECTOR_HOME", "./var"))
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args(argv)
    prefect_home = Path(args.home) / "prefect"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(prefect_environment(prefect_home))
    os.execve(sys.executable, [*SERVER_COMMAND, "--port", str(args.port)], env)  # noqa: S606


if __name__ == "__main__":
    ui_main()
