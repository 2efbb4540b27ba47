"""Prefect flows, one per file: what ops run from the UI and what schedules and events start."""
