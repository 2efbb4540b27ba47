"""The raw ASGI layer in front of the API: journal, rate limits, faults, idempotency."""
