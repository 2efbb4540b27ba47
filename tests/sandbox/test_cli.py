"""The ``nomi-sandbox`` command (with a persistent file store) and ``python -m sandbox.demo``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox.cli import parse_args

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(db: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            str(BIN / "nomi-sandbox"),
            "--port",
            str(port),
            "--db",
            str(db),
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("nomi-sandbox did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def test_parse_args_defaults() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.db, args.test_mode, args.seed) == (
        "127.0.0.1",
        8765,
        ":memory:",
        False,
        "demo",
    )


def test_the_command_keeps_its_data_in_the_file_across_restarts(tmp_path: Path) -> None:
    db, port = tmp_path / "nomi.db", _free_port()
    process = _serve(db, port, "--test-mode", "--suppliers", "50")
    try:
        base = f"http://127.0.0.1:{port}"
        [tenant, *_] = httpx.get(f"{base}/_admin/tenants").json()
        httpx.post(f"{base}/_admin/tenants/{tenant['id']}/suppliers", json={"count": 5})
    finally:
        _stop(process)
    process = _serve(db, port)
    try:
        assert httpx.get(f"{base}/_admin/tenants").status_code == 404
    finally:
        _stop(process)
    process = _serve(db, port, "--test-mode")
    try:
        records = httpx.get(f"{base}/_admin/tenants").json()
        assert len(records) == 5
        seeded = httpx.post(f"{base}/_admin/tenants/{tenant['id']}/suppliers", json={"count": 1})
        assert seeded.json()["total"] > 50 + 5
    finally:
        _stop(process)


def test_the_demo_runs_and_finds_one_expense() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "replayed=true" in result.stdout
    assert "Expenses in Nomi: 1; duplicates by source_id: none" in result.stdout
