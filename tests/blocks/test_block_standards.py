"""Prefect's standard block checks on every block of the connector."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import blocks
from blocks.app import LOGO_URL

LOGO_FILE = Path(blocks.__file__).parent / "nomi-logo.png"


@pytest.fixture(autouse=True)
def _logo_served_from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite downloads the logo; serve our published logo file instead (no network here)."""

    def urlopen(url: str) -> io.BytesIO:
        assert url == LOGO_URL
        return io.BytesIO(LOGO_FILE.read_bytes())

    monkeypatch.setattr("prefect.testing.standard_test_suites.blocks.urlopen", urlopen)


@pytest.mark.parametrize("block", [blocks.NomiApp, blocks.NomiCredentials])
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block


def test_block_type_slugs_are_fixed() -> None:
    assert blocks.NomiApp.get_block_type_slug() == "nomi-app"
    assert blocks.NomiCredentials.get_block_type_slug() == "nomi-credentials"
