"""The `NomiCredentials` block: the token set of one connection (one Nomi organisation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks.app import DOCS_URL, LOGO_URL
from nomi.models import Organisation, TokenSet


class NomiCredentials(Block):
    """The tokens of one connection to a Nomi organisation; rotated tokens are saved back here.

    Example:
        Read the connection's tokens (use `blocks.tokens.BlockTokenProvider` to call Nomi):
        ```python
        from blocks import NomiCredentials

        credentials = NomiCredentials.load("BLOCK_NAME")
        print(credentials.tenant_name, credentials.access_token_expires_at)
        ```
    """

    _block_type_name = "Nomi Credentials"
    _block_type_slug = "nomi-credentials"
    _logo_url = LOGO_URL  # type: ignore[assignment]
    _documentation_url = DOCS_URL  # type: ignore[assignment]
    _description = "OAuth tokens of one connection to a Nomi organisation (refreshed and rotated)."

    tenant_id: str = Field(
        title="Tenant ID", description="Id of the Nomi organisation (sent as Nomi-Tenant-Id)."
    )
    tenant_name: str = Field(title="Organisation", description="Name of the Nomi organisation.")
    access_token: SecretStr = Field(
        title="Access token", description="Current OAuth access token (short-lived)."
    )
    refresh_token: SecretStr = Field(
        title="Refresh token", description="Current OAuth refresh token (rotates on every use)."
    )
    access_token_expires_at: datetime = Field(
        title="Access token expires at", description="When the access token expires (UTC)."
    )
    refresh_token_expires_at: datetime | None = Field(
        default=None,
        title="Refresh token expires at",
        description="When the refresh token expires if unused (UTC).",
    )
    scopes: list[str] = Field(
        default_factory=list, title="Granted scopes", description="Scopes granted by the user."
    )
    consent_expires_at: datetime | None = Field(
        default=None,
        title="Consent expires at",
        description="When the user's consent expires and a reconnect is needed (UTC).",
    )

    @classmethod
    def from_tokens(
        cls,
        tokens: TokenSet,
        organisation: Organisation,
        consent_expires_at: datetime | None = None,
    ) -> NomiCredentials:
        """A new credentials block for a freshly connected organisation.

        Raises:
            ValueError: The token set has no refresh token (``offline_access`` was not granted).
        """
        if tokens.refresh_token is None:
            raise ValueError("no refresh token: was offline_access granted?")
        return cls(
            tenant_id=organisation.tenant_id,
            tenant_name=organisation.tenant_name,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_token_expires_at=tokens.expires_at,
            refresh_token_expires_at=tokens.refresh_token_expires_at,
            scopes=tokens.scopes,
            consent_expires_at=consent_expires_at,
        )

    def apply(self, tokens: TokenSet) -> None:
        """Take over a refreshed token set (then ``save(overwrite=True)``)."""
        self.access_token = tokens.access_token
        if tokens.refresh_token is not None:
            self.refresh_token = tokens.refresh_token
        self.access_token_expires_at = tokens.expires_at
        if tokens.refresh_token_expires_at is not None:
            self.refresh_token_expires_at = tokens.refresh_token_expires_at
        if tokens.scopes:
            self.scopes = tokens.scopes

    def expires_within(self, leeway: timedelta) -> bool:
        """True when the access token expires within ``leeway`` from now."""
        expires = self.access_token_expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires - leeway <= datetime.now(UTC)
