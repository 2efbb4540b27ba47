"""Serve every deployment of ``deployments/prefect.yaml`` from one local process.

``python -m deployments.serve`` is the embedded default: no work pool or worker, the same
deployments, schedules, concurrency limits and triggers as ``prefect deploy --all`` (read from the
same file), runs executed in subprocesses of this process. Flows whose module does not exist yet
are skipped with a warning, so the entry point works while the flows are being written.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentTriggerTypes, TriggerTypes
from prefect.schedules import Cron, Interval, Schedule
from pydantic import TypeAdapter

from deployments.automations import HEARTBEAT_ENV, HEARTBEAT_SECONDS

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
REPO_ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("deployments.serve")

POLL_ENV = "PREFECT_RUNNER_POLL_FREQUENCY"
POLL_SECONDS = 2.0
"""How often the runner asks the server for runs to start. Prefect's default (10 s) is most of an
on-ready run's delay on a quiet machine; one small API call each time."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as written in ``prefect.yaml``."""

    name: str
    entrypoint: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    concurrency_limit: dict[str, Any] | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The flow file, relative to the repository root (``flows/x.py``)."""
        return self.entrypoint.split(":", 1)[0]

    @property
    def function(self) -> str:
        """The flow function's name."""
        return self.entrypoint.split(":", 1)[1]

    @property
    def module(self) -> str:
        """The flow's importable module (``flows.x``)."""
        return self.path.removesuffix(".py").replace("/", ".")


def load_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """Read the deployments of a ``prefect.yaml``.

    Args:
        path: The file (default: ``deployments/prefect.yaml``).

    Returns:
        One spec per deployment, in file order.
    """
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        DeploymentSpec(
            name=entry["name"],
            entrypoint=entry["entrypoint"],
            description=entry.get("description", ""),
            tags=list(entry.get("tags") or []),
            parameters=dict(entry.get("parameters") or {}),
            schedules=list(entry.get("schedules") or []),
            concurrency_limit=entry.get("concurrency_limit"),
            triggers=list(entry.get("triggers") or []),
        )
        for entry in document["deployments"]
    ]


def schedule_of(config: dict[str, Any]) -> Schedule:
    """The Python schedule equal to one ``schedules:`` entry of ``prefect.yaml``."""
    common: dict[str, Any] = {
        "timezone": config.get("timezone"),
        "active": config.get("active", True),
        "parameters": config.get("parameters") or {},
        "slug": config.get("slug"),
    }
    if "cron" in config:
        return Cron(config["cron"], **common)
    if "interval" in config:
        anchor = config.get("anchor_date")
        return Interval(
            timedelta(seconds=float(config["interval"])),
            anchor_date=datetime.fromisoformat(anchor) if anchor else None,
            **common,
        )
    raise ValueError(f"unsupported schedule (use cron or interval): {config}")


def load_flow(spec: DeploymentSpec) -> Flow[Any, Any]:
    """Import the flow a spec names.

    Raises:
        ModuleNotFoundError: The flow's module does not exist (yet).
        TypeError: The entrypoint names something that is not a flow.
    """
    candidate = getattr(importlib.import_module(spec.module), spec.function)
    if not isinstance(candidate, Flow):
        raise TypeError(f"{spec.entrypoint} is not a Prefect flow")
    return candidate


def runner_deployment(
    spec: DeploymentSpec, flow: Flow[Any, Any], *, with_schedules: bool = True
) -> RunnerDeployment:
    """The served twin of one ``prefect.yaml`` deployment (same schedules, limit and triggers)."""
    limit = spec.concurrency_limit
    adapter: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)
    triggers: list[DeploymentTriggerTypes | TriggerTypes] = [
        adapter.validate_python(trigger) for trigger in spec.triggers
    ]
    deployment = flow.to_deployment(
        name=spec.name,
        description=spec.description or None,
        tags=spec.tags,
        parameters=spec.parameters or None,
        schedules=[schedule_of(s) for s in spec.schedules] if with_schedules else None,
        concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
        triggers=triggers or None,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    assert isinstance(deployment, RunnerDeployment)  # a sync flow builds it synchronously
    return deployment


def available_deployments(
    specs: list[DeploymentSpec], *, only: set[str] | None = None, with_schedules: bool = True
) -> tuple[list[RunnerDeployment], list[str]]:
    """Build the deployments whose flows import; the others are reported, not fatal.

    Args:
        specs: Deployments from ``prefect.yaml``.
        only: Serve only these flow names (``None``: all).
        with_schedules: Attach the schedules (off for tests and the demo).

    Returns:
        The runner deployments, and one line per skipped entrypoint saying why.
    """
    built: list[RunnerDeployment] = []
    skipped: list[str] = []
    for spec in specs:
        try:
            flow = load_flow(spec)
        except (ImportError, AttributeError, TypeError) as error:
            skipped.append(f"{spec.entrypoint}: {error}")
            continue
        if only is not None and flow.name not in only:
            continue
        built.append(runner_deployment(spec, flow, with_schedules=with_schedules))
    return built, skipped


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m deployments.serve", description="Serve the connector's deployments."
    )
    parser.add_argument(
        "--only", action="append", metavar="FLOW", help="serve only this flow (repeatable)"
    )
    parser.add_argument(
        "--no-schedules", action="store_true", help="serve without schedules (manual runs only)"
    )
    parser.add_argument("--limit", type=int, default=None, help="most runs at once")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help=f"look for runs to start this often (default {POLL_SECONDS:g}, or "
        f"{POLL_ENV} when set)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve the deployments until interrupted (Ctrl-C)."""
    from prefect import serve

    args = parse_args(argv)
    # The runs are subprocesses of this one: they send heartbeats as often as the
    # crash-zombie-nomi-runs automation expects (a worker gets it from prefect.yaml's pool).
    os.environ.setdefault(HEARTBEAT_ENV, str(HEARTBEAT_SECONDS))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    deployments, skipped = available_deployments(
        load_specs(),
        only=set(args.only) if args.only else None,
        with_schedules=not args.no_schedules,
    )
    for line in skipped:
        log.warning("not served (flow missing): %s", line)
    if not deployments:
        raise SystemExit("no flow to serve")
    poll = args.poll_seconds or float(os.environ.get(POLL_ENV) or POLL_SECONDS)
    serve(*deployments, limit=args.limit, query_seconds=poll)


if __name__ == "__main__":
    main()
