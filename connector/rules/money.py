"""Money arithmetic: Decimal amounts quantized to the penny, rounded half-up (ties away from 0)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
HUNDRED = Decimal(100)


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantize an amount to the penny, rounding half-up.

    Args:
        value: An amount as a Decimal, an int or a decimal string (never a float).

    Returns:
        The amount with exactly two decimal places.

    Raises:
        TypeError: If ``value`` is a float (floats cannot carry money exactly).
    """
    if isinstance(value, float):
        raise TypeError("money must be a Decimal, an int or a decimal string, not a float")
    return Decimal(value).quantize(PENNY, rounding=ROUND_HALF_UP)


def tax_in_gross(total: Decimal, rate_percent: Decimal) -> Decimal:
    """The tax contained in a tax-inclusive ``total`` at ``rate_percent``, rounded to the penny.

    Args:
        total: The gross (tax-inclusive) amount.
        rate_percent: The tax rate in percent, e.g. ``Decimal("20")``; must not be -100.

    Returns:
        ``total * rate / (100 + rate)`` rounded half-up to the penny.
    """
    return to_money(total * rate_percent / (HUNDRED + rate_percent))


def split_gross(total: Decimal, tax: Decimal) -> tuple[Decimal, Decimal]:
    """Split a gross total into (net, tax) so that net + tax equals the total to the penny."""
    total_p = to_money(total)
    tax_p = to_money(tax)
    return total_p - tax_p, tax_p
