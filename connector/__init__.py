"""The connector library (no Prefect): one package per capability over one database."""
