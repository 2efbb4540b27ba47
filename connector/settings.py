"""Connector settings, read from the environment (prefix ``NOMI_CONNECTOR_``).

Built at the edge (CLI, flows) with ``ConnectorSettings()`` and passed inward; never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorSettings(BaseSettings):
    """Where the connector keeps its data.

    Attributes:
        home: Folder for the SQLite database and stored document images (``NOMI_CONNECTOR_HOME``,
            default ``./var``).
        database_url: SQLAlchemy URL (``NOMI_CONNECTOR_DATABASE_URL``); default
            ``sqlite:///<home>/connector.db``. For PostgreSQL use
            ``postgresql+psycopg://user@host:5432/dbname``.
        busy_timeout: Seconds a CLI command waits for a database another writer holds (an
            import, a publish run) before it gives up saying so in one line
            (``NOMI_CONNECTOR_BUSY_TIMEOUT``, default 30; SQLite's busy timeout, PostgreSQL's
            ``lock_timeout``).
    """

    model_config = SettingsConfigDict(env_prefix="NOMI_CONNECTOR_", extra="ignore")

    home: Path = Field(default=Path("./var"), description="Data folder (database, images).")
    database_url: str = Field(default="", description="SQLAlchemy database URL.")
    busy_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds to wait for a busy database."
    )

    @model_validator(mode="after")
    def _default_and_check_url(self) -> ConnectorSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'connector.db'}"
        if not self.database_url.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return self

    @property
    def images_dir(self) -> Path:
        """Folder where imported document images are stored by sha256."""
        return self.home / "images"
