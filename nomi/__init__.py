"""nomi package."""
