"""Deploying and running against the session Prefect server: `prefect deploy --all`, serve, Run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from deployments.automations import HEARTBEAT_ENV, HEARTBEAT_SECONDS
from deployments.serve import load_specs
from tests.deployments.conftest import REPO_ROOT, wait_for

pytestmark = pytest.mark.prefect

PREFECT_YAML = REPO_ROOT / "deployments/prefect.yaml"


def existing_flows_yaml(tmp_path: Path) -> Path:
    """The real prefect.yaml when every flow exists, else a copy without the missing ones."""
    document = yaml.safe_load(PREFECT_YAML.read_text())
    kept = [
        d for d in document["deployments"] if (REPO_ROOT / d["entrypoint"].split(":")[0]).exists()
    ]
    if len(kept) == len(document["deployments"]):
        return PREFECT_YAML
    document["deployments"] = kept
    copy = tmp_path / "prefect.yaml"
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return copy


async def _read_deployments(names: list[str]):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {name: await client.read_deployment_by_name(name) for name in names}


async def _automations_of(deployment_id: uuid.UUID):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_resource_related_automations(f"prefect.deployment.{deployment_id}")


@pytest.mark.slow
def test_prefect_deploy_all_creates_every_deployment_with_its_schedules(subprocess_env, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(
                WorkPoolCreate(name="nomi-connector", type="process"), overwrite=True
            )

    asyncio.run(create_pool())
    prefect_file = existing_flows_yaml(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(prefect_file),
        ],
        cwd=REPO_ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    from tests.deployments.test_prefect_yaml import FLOW_NAMES

    specs = [s for s in load_specs(prefect_file)]
    names = [f"{FLOW_NAMES[s.entrypoint]}/{s.name}" for s in specs]
    found = asyncio.run(_read_deployments(names))
    for spec, name in zip(specs, names, strict=True):
        deployment = found[name]
        assert deployment.work_pool_name == "nomi-connector"
        # Workers send heartbeats as often as the zombie automation expects them.
        assert deployment.job_variables == {"env": {HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)}}, name
        assert deployment.entrypoint == spec.entrypoint
        assert deployment.pull_steps == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": subprocess_env["NOMI_CONNECTOR_REPO"]
                }
            }
        ]
        slugs = {s.slug: s for s in deployment.schedules}
        assert set(slugs) == {s["slug"] for s in spec.schedules}, name
        for wanted in spec.schedules:
            got = slugs[wanted["slug"]]
            if "cron" in wanted:
                assert got.schedule.cron == wanted["cron"]
                assert got.schedule.timezone == wanted["timezone"]
            else:
                assert got.schedule.interval.total_seconds() == wanted["interval"]
            assert got.parameters == wanted.get("parameters", {})
        if spec.concurrency_limit:
            assert deployment.global_concurrency_limit is not None
            assert deployment.global_concurrency_limit.limit == spec.concurrency_limit["limit"]
            assert deployment.concurrency_options is not None
            assert (
                deployment.concurrency_options.collision_strategy
                == spec.concurrency_limit["collision_strategy"]
            )
        else:  # per-business: runs side by side
            assert deployment.global_concurrency_limit is None, name
        automations = asyncio.run(_automations_of(deployment.id))
        assert len(automations) == len(spec.triggers), name
        for automation, trigger in zip(automations, spec.triggers, strict=True):
            assert automation.trigger.expect == set(trigger["expect"])


def test_a_served_deployment_runs_to_completion_like_the_run_button(serve_process):
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    serve_process("--only", "notify-ops", "--no-schedules")
    business = f"biz-{uuid.uuid4().hex[:6]}"

    def served() -> bool:
        name = "notify-ops/on-connection-expired"
        try:
            deployment = asyncio.run(_read_deployments([name]))[name]
        except Exception:
            return False
        return deployment.entrypoint == "flows.notify_ops.notify_ops"  # the served twin

    wait_for(served, timeout=60, what="the served deployment")
    run = run_deployment(
        "notify-ops/on-connection-expired",
        parameters={"params": {"resource_id": f"nomi.connection.{business}", "detail": "test"}},
        timeout=90,
    )
    assert isinstance(run, FlowRun)
    assert run.state is not None
    assert run.state.is_completed(), run.state
    assert run.name == f"notify-ops-{business}"

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def artifact():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[f"connection-alert-{business}"])
                )
            )

    (alert,) = asyncio.run(artifact())
    assert alert.flow_run_id == run.id
    assert "reconnect-to-nomi" in str(alert.data)


def test_served_sync_deployment_fills_the_lists_from_the_sandbox(
    serve_process, subprocess_env, connector_db, connect_business, nomi_app, db_session_for
):
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from sqlmodel import select

    from connector.store.models import Supplier

    if not (REPO_ROOT / "flows/sync_nomi_reference_data.py").exists():
        pytest.skip("flows/sync_nomi_reference_data.py is not written yet")
    business = connect_business()
    serve_process(
        "--only",
        "sync-nomi-reference-data",
        "--no-schedules",
        env={**subprocess_env, "NOMI_CONNECTOR_DATABASE_URL": connector_db},
    )
    name = "sync-nomi-reference-data/scheduled"

    def served() -> bool:
        try:
            deployment = asyncio.run(_read_deployments([name]))[name]
        except Exception:
            return False
        return deployment.entrypoint == "flows.sync_nomi_reference_data.sync_nomi_reference_data"

    wait_for(served, timeout=60, what="the served sync deployment")
    run = run_deployment(
        name,
        parameters={"params": {"business": business.slug, "mode": "full", "app_block": nomi_app}},
        timeout=120,
    )
    assert isinstance(run, FlowRun)
    assert run.state is not None
    assert run.state.is_completed(), run.state
    with db_session_for() as s:
        names = {row.name for row in s.exec(select(Supplier))}
    assert "Henry Schein Minerva" in names
