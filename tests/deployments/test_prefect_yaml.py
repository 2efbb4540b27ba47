"""prefect.yaml as ops rely on it: each flow deployed, schedules, limits, trigger, pull step."""

from __future__ import annotations

import inspect
import typing
from datetime import timedelta

import pytest
from pydantic import BaseModel

from deployments.serve import (
    DeploymentSpec,
    available_deployments,
    load_flow,
    load_specs,
    schedule_of,
)
from tests.deployments.conftest import REPO_ROOT

#: The ops actions of the CLI, one flow (and one manual deployment) each, in flows/ops/.
OPS_FLOWS = (
    "change_connection_settings",
    "manage_contact_rules",
    "manage_payment_methods",
    "add_member",
    "import_items",
    "edit_item",
    "release_duplicate",
)
FLOW_NAMES = {
    "flows/connect_to_nomi.py:connect_to_nomi": "connect-to-nomi",
    "flows/reconnect_to_nomi.py:reconnect_to_nomi": "reconnect-to-nomi",
    "flows/disconnect_from_nomi.py:disconnect_from_nomi": "disconnect-from-nomi",
    "flows/verify_nomi_connection.py:verify_nomi_connection": "verify-nomi-connection",
    "flows/sync_nomi_reference_data.py:sync_nomi_reference_data": "sync-nomi-reference-data",
    "flows/auto_publish_to_nomi.py:auto_publish_to_nomi": "auto-publish-to-nomi",
    "flows/publish_items_to_nomi.py:publish_items_to_nomi": "publish-items-to-nomi",
    "flows/publish_history_report.py:publish_history_report": "publish-history-report",
    "flows/notify_ops.py:notify_ops": "notify-ops",
    **{f"flows/ops/{module}.py:{module}": module.replace("_", "-") for module in OPS_FLOWS},
    "flows/correct_item.py:correct_item": "correct-item",
    "flows/archive_item.py:archive_item": "archive-item",
}
MANUAL = {
    "correct-item",
    "archive-item",
    "connect-to-nomi",
    "reconnect-to-nomi",
    "disconnect-from-nomi",
    "publish-items-to-nomi",
    "sync-nomi-reference-data",
    "notify-ops",
    *(FLOW_NAMES[f"flows/ops/{module}.py:{module}"] for module in OPS_FLOWS),
}
SCHEDULES = {
    "sync-nomi-reference-data": {
        "incremental-every-30-minutes": ("cron", "*/30 * * * *"),
        "full-nightly": ("cron", "15 2 * * *"),
    },
    "auto-publish-to-nomi": {"every-5-minutes": ("interval", 300)},
    "verify-nomi-connection": {"daily": ("cron", "0 6 * * *")},
    "publish-history-report": {"daily": ("cron", "30 6 * * *")},
}
SPECS = load_specs()


def spec_named(flow_name: str, name: str | None = None) -> DeploymentSpec:
    """The flow's deployment (``name`` picks one when the flow has several)."""
    (spec,) = [
        s
        for s in SPECS
        if FLOW_NAMES[s.entrypoint] == flow_name and (name is None or s.name == name)
    ]
    return spec


def flow_or_skip(spec: DeploymentSpec):
    if not (REPO_ROOT / spec.path).exists():
        pytest.skip(f"{spec.path} is not written yet")
    return load_flow(spec)


def test_every_contract_flow_is_deployed_once_and_auto_publish_also_per_business():
    deployed = sorted((FLOW_NAMES[s.entrypoint], s.name) for s in SPECS)
    expected = [(flow, "manual") for flow in MANUAL - {"notify-ops"}]
    expected += [(flow, "scheduled") for flow in SCHEDULES]
    expected += [("notify-ops", "on-connection-expired"), ("auto-publish-to-nomi", "per-business")]
    expected += [("auto-publish-to-nomi", "on-ready")]
    assert deployed == sorted(expected)


def test_per_business_runs_may_run_side_by_side():
    """No deployment-wide limit: the publishing lock, not the deployment, keeps two runs off
    one business (the scale-out test deploys this very entry)."""
    spec = spec_named("auto-publish-to-nomi", "per-business")
    assert spec.concurrency_limit is None
    assert spec.schedules == []
    assert spec.triggers == []


def test_deployments_run_on_the_nomi_connector_process_pool():
    import yaml

    document = yaml.safe_load((REPO_ROOT / "deployments/prefect.yaml").read_text())
    for entry in document["deployments"]:
        assert entry["work_pool"]["name"] == "nomi-connector", entry["name"]
    (step,) = document["pull"]
    assert step == {
        "prefect.deployments.steps.set_working_directory": {
            "directory": "{{ $NOMI_CONNECTOR_REPO }}"
        }
    }


@pytest.mark.parametrize("flow_name", sorted(MANUAL))
def test_manual_deployments_have_no_schedule(flow_name):
    name = None if flow_name == "notify-ops" else "manual"
    assert spec_named(flow_name, name).schedules == []


def test_a_manual_refresh_of_one_business_is_deployed_beside_the_scheduled_sync():
    spec = spec_named("sync-nomi-reference-data", "manual")
    assert "one business" in spec.description
    assert spec.concurrency_limit is None
    assert spec.triggers == []
    form = load_flow(spec).parameters.model_dump_for_openapi()
    assert set(form["definitions"]["SyncParams"]["properties"]) >= {"business", "lists", "mode"}


@pytest.mark.parametrize("flow_name", sorted(SCHEDULES))
def test_scheduled_deployments_carry_the_documented_schedules(flow_name):
    spec = spec_named(flow_name, "scheduled")
    found = {}
    for entry in spec.schedules:
        kind = "cron" if "cron" in entry else "interval"
        found[entry["slug"]] = (kind, entry[kind])
    assert found == SCHEDULES[flow_name]


def test_sync_schedules_choose_incremental_and_full_mode():
    modes = {
        s["slug"]: s["parameters"]["params"]["mode"]
        for s in spec_named("sync-nomi-reference-data", "scheduled").schedules
    }
    assert modes == {"incremental-every-30-minutes": "incremental", "full-nightly": "full"}


def test_auto_publish_cancels_a_sweep_arriving_while_the_last_still_runs():
    assert spec_named("auto-publish-to-nomi", "scheduled").concurrency_limit == {
        "limit": 1,
        "collision_strategy": "CANCEL_NEW",
    }


def test_connection_expired_event_starts_notify_ops():
    (trigger,) = spec_named("notify-ops").triggers
    assert trigger["expect"] == ["nomi.connection.expired"]
    assert trigger["match"] == {"prefect.resource.id": "nomi.connection.*"}
    assert set(trigger["parameters"]["params"]) == {"resource_id", "event", "detail"}


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.entrypoint}/{s.name}" for s in SPECS])
def test_entrypoint_names_the_flow_with_one_params_model(spec):
    flow = flow_or_skip(spec)
    assert flow.name == FLOW_NAMES[spec.entrypoint]
    (parameter,) = inspect.signature(flow.fn).parameters.values()
    assert parameter.name == "params"
    hint = typing.get_type_hints(flow.fn)["params"]
    models = [t for t in (typing.get_args(hint) or (hint,)) if t is not type(None)]
    assert len(models) == 1, hint  # a model, optionally `| None` with a None default
    assert issubclass(models[0], BaseModel)
    assert flow.__doc__ or flow.description, "the UI shows the flow's docstring to ops"


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.entrypoint}/{s.name}" for s in SPECS])
def test_scheduled_parameters_validate_against_the_flow(spec):
    flow = flow_or_skip(spec)
    for schedule in spec.schedules:
        merged = {**spec.parameters, **schedule.get("parameters", {})}
        validated = flow.validate_parameters(merged)
        assert isinstance(validated["params"], BaseModel)
    if spec.parameters:
        flow.validate_parameters(spec.parameters)


def test_served_deployments_copy_the_yaml_schedules_and_limits():
    deployments, skipped = available_deployments(SPECS)
    assert len(deployments) + len(skipped) == len(SPECS)
    for deployment in deployments:
        assert deployment.flow_name is not None
        spec = spec_named(deployment.flow_name, deployment.name)
        slugs = [s.slug for s in deployment.schedules or []]
        assert slugs == [s["slug"] for s in spec.schedules]
        if spec.concurrency_limit:
            assert deployment.concurrency_limit == spec.concurrency_limit["limit"]
            assert deployment.concurrency_options is not None
            assert (
                deployment.concurrency_options.collision_strategy
                == spec.concurrency_limit["collision_strategy"]
            )
        assert len(deployment.triggers) == len(spec.triggers)


def test_interval_and_cron_schedules_convert_like_prefect_deploy():
    interval = schedule_of({"interval": 300, "slug": "x", "parameters": {"params": {}}})
    assert interval.interval == timedelta(minutes=5)
    assert interval.slug == "x"
    cron = schedule_of({"cron": "0 6 * * *", "timezone": "Europe/London", "slug": "daily"})
    assert (cron.cron, cron.timezone) == ("0 6 * * *", "Europe/London")
    with pytest.raises(ValueError, match="unsupported schedule"):
        schedule_of({"rrule": "FREQ=DAILY"})


def test_on_ready_runs_once_per_window_for_every_business_and_watches_past_it():
    """One run per ``within`` window for all businesses (no ``for_each``: one flow-run process
    per window, not one per business); the run watches until ``settle_seconds`` (longer than
    the window) so the events the trigger dropped are covered, and waits for the businesses'
    locks rather than skipping them."""
    spec = spec_named("auto-publish-to-nomi", "on-ready")
    assert spec.concurrency_limit is None  # the next window's run waits on the locks
    (trigger,) = spec.triggers
    assert trigger["expect"] == ["nomi.items.ready"]
    assert "for_each" not in trigger
    assert trigger["match"] == {"prefect.resource.id": "nomi.business.*"}
    assert trigger["posture"] == "Reactive"
    assert trigger["threshold"] == 1
    params = trigger["parameters"]["params"]
    assert params["settle_seconds"] > trigger["within"] > 0
    assert params["lock_wait_seconds"] > params["settle_seconds"]
    assert "business" not in params  # every business with auto-publish on
    form = load_flow(spec).parameters.model_dump_for_openapi()
    assert {"ready_event_at", "settle_seconds"} <= set(
        form["definitions"]["AutoPublishParams"]["properties"]
    )
