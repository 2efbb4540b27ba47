"""OAuth consent, tokens, the organisations a token acts for, and request authentication."""
