"""Mirroring Nomi's organisation, reference lists and supplier rules into the connector's tables."""
