"""The connector's lookup errors, defined once: what was named does not exist or is not connected.

Each says in its message what was named and what to do; the CLI and the flows show it as it is.
"""

from __future__ import annotations


class NotFoundError(LookupError):
    """Something named does not exist: a business, a user, a payment method, a rule."""


class UnknownBusinessError(NotFoundError):
    """No business has the given slug."""


class NotConnectedError(LookupError):
    """The business has no Nomi connection in a status the action needs (none, or not connected)."""
