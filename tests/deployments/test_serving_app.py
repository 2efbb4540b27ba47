"""The callback's uvicorn thread uses the Prefect settings of the code that started it.

A fresh thread sees Prefect's process-global settings, which a session test harness points at its
own server: the OAuth callback then resumed runs on the wrong Prefect (``ObjectNotFound``) and the
browser walk's connect stayed Paused in the full suite while it passed on its own.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.local import free_port, serving_app

CALLER_API = "http://127.0.0.1:9/caller-api"


def settings_app() -> FastAPI:
    """An app that answers with the Prefect API URL its handlers see (sync, as the callback's)."""
    app = FastAPI()

    @app.get("/api-url")
    def api_url() -> dict[str, str | None]:
        return {"api_url": PREFECT_API_URL.value()}

    return app


def test_the_served_app_sees_the_callers_prefect_settings() -> None:
    with (
        temporary_settings({PREFECT_API_URL: CALLER_API}),
        serving_app(settings_app(), port=free_port(), name="settings") as url,
    ):
        answer = httpx.get(f"{url}/api-url", timeout=10).json()
    assert answer == {"api_url": CALLER_API}
