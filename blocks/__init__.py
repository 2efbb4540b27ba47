"""Prefect blocks of the Nomi connector (registered with ``prefect block register -m blocks``)."""

from __future__ import annotations

from blocks.app import NomiApp
from blocks.credentials import NomiCredentials

__all__ = ["NomiApp", "NomiCredentials"]
