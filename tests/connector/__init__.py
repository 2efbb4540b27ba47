"""Tests of the connector package (database, outbox, access, intake, CLI)."""
