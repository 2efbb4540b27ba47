"""The `NomiApp` block: our OAuth app registration with Nomi (one per Nomi environment)."""

from __future__ import annotations

import httpx
from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from nomi.oauth import DEFAULT_SCOPES, NomiOAuth

DOCS_URL = "https://github.com/nomi-connector/nomi-connector/blob/main/docs/client.md"
LOGO_URL = (
    "https://raw.githubusercontent.com/nomi-connector/nomi-connector/main/blocks/nomi-logo.png"
)


class NomiApp(Block):
    """The connector's OAuth app registered with Nomi: client credentials and Nomi's URLs.

    Example:
        Build the OAuth client of the app:
        ```python
        from blocks import NomiApp

        app = NomiApp.load("BLOCK_NAME")
        oauth = app.oauth()
        verifier, _ = oauth.new_pkce()
        url = oauth.authorization_url(state=oauth.new_state(), code_verifier=verifier)
        ```
    """

    _block_type_name = "Nomi App"
    _block_type_slug = "nomi-app"
    _logo_url = LOGO_URL  # type: ignore[assignment]
    _documentation_url = DOCS_URL  # type: ignore[assignment]
    _description = "OAuth app registration of the Nomi connector (client id, secret and Nomi URLs)."

    client_id: str = Field(title="Client ID", description="OAuth client id issued by Nomi.")
    client_secret: SecretStr = Field(
        title="Client secret", description="OAuth client secret issued by Nomi."
    )
    authorize_url: str = Field(
        title="Authorize URL",
        description="Nomi's authorization page, e.g. https://nomi.example/oauth/authorize.",
    )
    token_url: str = Field(
        title="Token URL",
        description="Nomi's token endpoint, e.g. https://nomi.example/oauth/token.",
    )
    revoke_url: str = Field(
        title="Revoke URL",
        description="Nomi's revocation endpoint, e.g. https://nomi.example/oauth/revoke.",
    )
    api_base_url: str = Field(
        title="API base URL", description="Base URL of the Nomi API, e.g. https://nomi.example."
    )
    redirect_uri: str = Field(
        title="Redirect URI",
        description="Where Nomi sends the user back after consent (registered with Nomi).",
    )
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        title="Scopes",
        description="OAuth scopes requested when connecting an organisation.",
    )

    def oauth(self, http: httpx.Client | None = None) -> NomiOAuth:
        """The OAuth client of this app.

        Args:
            http: An httpx client to use; one is made otherwise.

        Returns:
            A `NomiOAuth` for authorization URLs, code exchange, refresh and revoke.
        """
        return NomiOAuth(
            client_id=self.client_id,
            client_secret=self.client_secret,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            revoke_url=self.revoke_url,
            redirect_uri=self.redirect_uri,
            scopes=self.scopes,
            http=http,
        )
