"""What started a publish run comes from Prefect, not a form field: schedule, automation, person."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.flow_engine import run_flow
from prefect.states import Scheduled
from sqlmodel import Session, select

from connector.history.keys import artifact_key
from connector.rules.vocabulary import RunTrigger
from connector.store.db import make_engine
from connector.store.history_tables import PublishRun
from flows.auto_publish_to_nomi import auto_publish_to_nomi
from sandbox.seed import HARBOUR
from tasks.runtime import trigger_of
from tests.flows.conftest import ConnectedBusiness
from tests.flows.publish.support import FAST_LIMITS, artifact_markdown, prepare

pytestmark = pytest.mark.usefixtures("fast_world")


@pytest.mark.parametrize(
    ("auto_scheduled", "created_by", "tags", "reconnect", "expected"),
    [
        (True, None, ["auto-scheduled"], False, RunTrigger.SCHEDULE),
        (False, None, ["auto-scheduled", "nomi"], False, RunTrigger.SCHEDULE),
        (False, "AUTOMATION", [], False, RunTrigger.AUTOMATION),
        (False, None, [], False, RunTrigger.PERSON),  # a Custom or Quick run, the CLI, the API
        (False, "USER", [], False, RunTrigger.PERSON),  # Prefect Cloud names the user
        (True, None, [], True, RunTrigger.RECONNECT),
    ],
)
def test_the_trigger_is_read_from_what_prefect_knows_of_the_run(
    auto_scheduled: bool,
    created_by: str | None,
    tags: list[str],
    reconnect: bool,
    expected: RunTrigger,
) -> None:
    found = trigger_of(
        auto_scheduled=auto_scheduled, created_by=created_by, tags=tags, reconnect=reconnect
    )
    assert found == expected


def _params(business: ConnectedBusiness, nomi_app: str) -> dict[str, Any]:
    limits = FAST_LIMITS.model_dump()
    return {"params": {"business": business.slug, "app_block": nomi_app, "limits": limits}}


def _deployment(parameters: dict[str, Any]) -> uuid.UUID:
    """A deployment of auto-publish-to-nomi with an hourly schedule (nothing serves it)."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(auto_publish_to_nomi)
        return client.create_deployment(
            flow_id,
            name=f"trigger-test-{uuid.uuid4().hex[:6]}",
            parameters=parameters,
            schedules=[
                DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(hours=1)))
            ],
        )


def _scheduled_run(deployment_id: uuid.UUID) -> FlowRun:
    """A run Prefect's scheduler makes from the deployment's schedule."""
    with get_client(sync_client=True) as client:
        client._client.post(f"/deployments/{deployment_id}/schedule", json={"max_runs": 1})
        runs = [r for r in client.read_flow_runs() if r.deployment_id == deployment_id]
    [run] = [r for r in runs if r.auto_scheduled]
    # Due now rather than at the schedule's next slot (the engine waits for a scheduled time).
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)
        return client.read_flow_run(run.id)


def _automation_run(deployment_id: uuid.UUID, parameters: dict[str, Any]) -> FlowRun:
    """A run created the way an automation's run-deployment action creates it."""
    name = base64.b64encode(b"publish when items arrive").decode()
    with get_client(sync_client=True) as client:
        response = client._client.post(
            f"/deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters},
            headers={"Prefect-Automation-Id": str(uuid.uuid4()), "Prefect-Automation-Name": name},
        )
        response.raise_for_status()
        return client.read_flow_run(uuid.UUID(response.json()["id"]))


def _custom_run(deployment_id: uuid.UUID, parameters: dict[str, Any]) -> FlowRun:
    """A Custom run: what the UI's Run > Custom run form (or ``prefect deployment run``) makes."""
    with get_client(sync_client=True) as client:
        return client.create_flow_run_from_deployment(deployment_id, parameters=parameters)


@pytest.mark.timeout(240)
def test_history_records_schedule_automation_and_person_as_prefect_started_each_run(
    connect_business: Callable[..., ConnectedBusiness],
    nomi_app: str,
    connector_db: str,
    tmp_path: Path,
) -> None:
    business, _ = prepare(
        connect_business, nomi_app, connector_db, HARBOUR, tmp_path, costs=1, sales=0, claims=0,
        auto_publish=True,
    )  # fmt: skip
    parameters = _params(business, nomi_app)
    deployment_id = _deployment(parameters)
    runs = {
        RunTrigger.SCHEDULE: _scheduled_run(deployment_id),
        RunTrigger.AUTOMATION: _automation_run(deployment_id, parameters),
        RunTrigger.PERSON: _custom_run(deployment_id, parameters),
    }

    for flow_run in runs.values():
        state: Any = run_flow(
            auto_publish_to_nomi, flow_run=flow_run, parameters=parameters, return_type="state"
        )
        assert state.is_completed(), state

    with Session(make_engine(connector_db)) as s:
        recorded = {row.flow_run_id: row.trigger for row in s.exec(select(PublishRun))}
    assert recorded == {run.id: trigger.value for trigger, run in runs.items()}
    overview = artifact_markdown(artifact_key("overview", business.slug))  # the sweep rewrote it
    assert "(person): published 0" in overview  # the Custom run was the last
