"""The committed OpenAPI document matches the served one; a bounded schemathesis fuzz of the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from sandbox import openapi
from sandbox.testing import SandboxHandle
from tests.sandbox.conftest import BSD


def test_the_committed_openapi_document_is_the_served_one(sandbox: SandboxHandle) -> None:
    served = httpx.get(f"{sandbox.base_url}/openapi.json").json()
    assert openapi.render(served) == openapi.PATH.read_text(), "run: make openapi"
    assert openapi.main([]) == 0


def test_admin_routes_are_not_in_the_public_schema(sandbox: SandboxHandle) -> None:
    paths = httpx.get(f"{sandbox.base_url}/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/_admin")]
    assert {"/api/v1/suppliers", "/api/v1/expenses", "/connections"} <= set(paths)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_api_finds_no_server_error_and_nothing_off_schema(
    sandbox: SandboxHandle,
    connect: Callable[..., dict[str, Any]],
    mode: GenerationMode,
) -> None:
    headers = {"Authorization": f"Bearer {connect()['access_token']}", "Nomi-Tenant-Id": BSD}
    schema: BaseSchema = schemathesis.openapi.from_url(f"{sandbox.base_url}/openapi.json")
    schema = schema.exclude(path_regex="^/oauth").exclude(method="DELETE")
    wanted = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 15
    for operation in operations:

        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            case.call_and_validate(base_url=sandbox.base_url, headers=headers, checks=wanted)

        run()
    fuzzed = [r for r in sandbox.state.requests if r["path"].startswith("/api/v1")]
    assert len(fuzzed) >= 3 * len(operations)
    assert {r["status"] for r in fuzzed} >= {200, 400}
