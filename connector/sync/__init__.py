"""Mirroring Nomi's reference lists and supplier rules into the connector's tables."""
