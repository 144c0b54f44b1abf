"""Money: integer minor units with an ISO currency, and the allocation rule.

Every amount in mallcore is an ``int`` of minor units (fen, cents). There is
no float anywhere near money. Order-level adjustments (a spend-X-save-Y
discount, freight, a coupon) are shared out to lines by :func:`allocate`, the
largest-remainder rule, so that the lines always sum to the order exactly and
the refundable amount of any line follows from what was allocated to it.
"""

from __future__ import annotations

from collections.abc import Sequence


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` over ``weights`` by the largest-remainder rule.

    The parts always sum to ``amount`` exactly and each part is within one
    minor unit of its exact proportional share. Ties in the remainder go to
    the earlier weight, so the result depends only on the inputs. A negative
    ``amount`` (a discount) is split like a positive one with the sign kept.
    All-zero weights split evenly.
    """
    n = len(weights)
    if n == 0:
        if amount:
            raise ValueError("cannot allocate a non-zero amount over no weights")
        return []
    # One pass, no recursion: every placement runs this for each order-level adjustment.
    if min(weights) < 0:
        raise ValueError("weights must not be negative")
    if n == 1:
        return [amount]
    negative = amount < 0
    if negative:
        amount = -amount
    total = sum(weights)
    if total == 0:
        weights = [1] * n
        total = n
    parts = [amount * w // total for w in weights]
    short = amount - sum(parts)
    if short:
        # Biggest remainder first; the sort is stable, so ties go to the earlier weight.
        remainders = [amount * w % total for w in weights]
        for i in sorted(range(n), key=remainders.__getitem__, reverse=True)[:short]:
            parts[i] += 1
    return [-part for part in parts] if negative else parts


def share(total: int, quantity: int, units: int) -> int:
    """The amount of ``units`` out of ``quantity`` equal units summing to ``total``.

    Cumulative: ``share(t, q, a) + (share(t, q, a + b) - share(t, q, a))`` is
    what ``a`` then ``b`` units refund, and ``share(t, q, q) == t``, so partial
    refunds of a line can never add up to more than the line.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    if not 0 <= units <= quantity:
        raise ValueError("units out of range")
    return total * units // quantity


# Minor units per major unit; currencies not listed have two decimals.
_EXPONENT = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}

# What people read before an amount; a currency not listed is written by its code.
SYMBOLS = {
    "CNY": "¥",
    "JPY": "JP¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "HKD": "HK$",
    "TWD": "NT$",
    "MOP": "MOP$",
    "SGD": "S$",
    "KRW": "₩",
}


def format_amount(amount: int, currency: str) -> str:
    """``15800, "CNY"`` -> ``"¥158.00"`` (``"XTS 1.00"`` for a currency with no symbol here).

    For messages and pages people read, never for arithmetic.
    """
    digits = _EXPONENT.get(currency, 2)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    symbol = SYMBOLS.get(currency)
    prefix = symbol if symbol is not None else f"{currency} "
    if digits == 0:
        return f"{sign}{prefix}{amount}"
    unit = 10**digits
    return f"{sign}{prefix}{amount // unit}.{amount % unit:0{digits}d}"
