"""Settings of the Nomi sandbox: storage, test mode, every duration and every rate limit."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DAY = 24 * 3600


class SandboxSettings(BaseModel):
    """Everything the sandbox can be told; durations are seconds, a limit of ``0`` means off.

    Example:
        ``SandboxSettings(test_mode=True, access_token_ttl=5, per_minute=0)``
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    test_mode: bool = Field(default=False, description="Serve the admin API under /_admin.")
    db_path: str = Field(default=":memory:", description="SQLite file, or :memory:.")
    seed: str = Field(default="demo", description="Seed data set: demo or none.")
    suppliers: int = Field(default=0, ge=0, description="Extra suppliers bulk-seeded per org.")

    access_token_ttl: float = Field(default=1800, gt=0)
    refresh_grace: float = Field(default=1800, ge=0)
    refresh_idle_ttl: float = Field(default=60 * DAY, gt=0)
    consent_ttl: float = Field(default=365 * DAY, gt=0)
    code_ttl: float = Field(default=600, gt=0)
    idempotency_ttl: float = Field(default=DAY, gt=0)

    per_minute: int = Field(default=60, ge=0, description="Requests per tenant per minute.")
    concurrent: int = Field(default=5, ge=0, description="Requests in flight per tenant.")
    per_day: int = Field(default=5000, ge=0, description="Requests per tenant per day.")
    app_per_minute: int = Field(default=10000, ge=0, description="Requests per minute, app-wide.")
    token_per_minute: int = Field(default=30, ge=0, description="Token endpoint calls per minute.")

    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    tax_tolerance: str = Field(default="0.05", description="Allowed tax rounding error.")
