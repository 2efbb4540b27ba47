"""The Nomi sandbox: a FastAPI server that plays Nomi on loopback (OAuth pages, API, faults)."""
