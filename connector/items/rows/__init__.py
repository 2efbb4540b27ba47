"""One intake row: its fields, its lines and each value, checked and parsed."""
