"""The ``nomi-sandbox`` console command."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="nomi-sandbox", description="Run the Nomi sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default=":memory:", help="SQLite file or :memory:")
    parser.add_argument("--test-mode", action="store_true", help="serve the admin API (/_admin)")
    parser.add_argument("--seed", choices=("demo", "none"), default="demo")
    parser.add_argument("--suppliers", type=int, default=0, help="extra suppliers per organisation")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    settings = SandboxSettings(
        test_mode=args.test_mode, db_path=args.db, seed=args.seed, suppliers=args.suppliers
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
