"""Run history: the records, loaders, the report, its artifacts and the export."""
