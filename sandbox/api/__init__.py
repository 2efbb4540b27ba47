"""The HTTP API the sandbox plays Nomi with (lists, documents) and its test-mode admin API."""
