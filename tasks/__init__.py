"""Prefect tasks: thin, retried steps calling the connector library (one module per capability)."""
