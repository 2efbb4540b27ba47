"""Connections to Nomi: consent, OAuth states, checks, which ones to sync, disconnect."""
