"""Totals: adjustments applied by phase, order-level ones allocated to lines.

The rule, in one place:

1. Every line's ``subtotal`` is ``unit_price * quantity``.
2. Adjustments are applied sorted by (phase, source center, order added), so
   money never depends on the order in which centers were called.
3. A line-level adjustment changes its line; an order-level one is shared
   out over the lines in proportion to what each line stands at right then
   (largest remainder, :func:`~mallcore.kernel.money.allocate`).
4. A discount never takes a line below zero: it is clamped, and the clamped
   amount is what is recorded.
   A freight waiver (phase ``SHIPPING_DISCOUNT``) comes off the lines'
   shipping only, in proportion to each line's shipping, and never more
   than the shipping: free shipping leaves the goods' value (what a refund
   of the goods gives back) untouched.
5. Each line ends with ``discount`` (sum of negative adjustments, positive
   number), ``shipping`` (freight phase), ``fees`` (other positive ones) and
   ``total = subtotal - discount + shipping + fees``; the order's figures
   are the sums of its lines', so lines always add up to the order.
"""

from __future__ import annotations

from collections.abc import Sequence

from .context import Adjustment, Line, Order, Phase
from .errors import InvalidInput, Rejected
from .money import allocate


def price(order: Order, lines: Sequence[Line], adjustments: list[Adjustment]) -> list[Adjustment]:
    """Compute line and order totals in place; return adjustments in applied order."""
    running: list[int] = []
    for line in lines:
        if line.unit_price is None:
            raise Rejected(f"no center priced SKU {line.sku}", code="sku_unpriced")
        if line.unit_price < 0:
            raise InvalidInput(f"SKU {line.sku} has a negative price", code="price_negative")
        line.subtotal = line.unit_price * line.quantity
        line.discount = line.shipping = line.fees = 0
        running.append(line.subtotal)
    index = {line.line_no: i for i, line in enumerate(lines)}
    ordered = sorted(enumerate(adjustments), key=lambda p: (p[1].phase, p[1].source, p[0]))
    applied: list[Adjustment] = []
    for _, adj in ordered:
        if adj.phase == Phase.SHIPPING_DISCOUNT:
            _waive_freight(lines, index, running, adj)
        elif adj.line_no is not None:
            i = index.get(adj.line_no)
            if i is None:
                raise ValueError(f"adjustment {adj.reason!r} names a line that is not in the order")
            amount = max(adj.amount, -running[i])
            adj.amount = amount
            _book(lines[i], adj.phase, amount)
            running[i] += amount
            adj.allocation = {adj.line_no: amount}
        else:
            amount = max(adj.amount, -sum(running))
            adj.amount = amount
            # |amount| <= sum(running), so no line's share exceeds what it stands at.
            parts = allocate(amount, running)
            adj.allocation = {}
            for i, part in enumerate(parts):
                if part:
                    _book(lines[i], adj.phase, part)
                    running[i] += part
                    adj.allocation[lines[i].line_no] = part
        if adj.amount:
            applied.append(adj)
    for line, value in zip(lines, running, strict=True):
        line.total = value
    order.subtotal = sum(line.subtotal for line in lines)
    order.discount = sum(line.discount for line in lines)
    order.shipping = sum(line.shipping for line in lines)
    order.fees = sum(line.fees for line in lines)
    order.total = sum(line.total for line in lines)
    return applied


def _waive_freight(lines: Sequence[Line], index: dict[int, int], running: list[int], adj: Adjustment) -> None:
    """Take a freight waiver off the shipping booked so far (never goods, never below zero)."""
    # What can be waived on a line is its shipping, but never more than the line stands
    # at: a negative freight-phase adjustment is booked as a discount and may have taken
    # the line below its shipping already.
    shipping = [max(0, min(line.shipping, value)) for line, value in zip(lines, running, strict=True)]
    if adj.amount > 0:
        raise ValueError(f"adjustment {adj.reason!r}: a freight waiver is a negative amount")
    if adj.line_no is not None:
        i = index.get(adj.line_no)
        if i is None:
            raise ValueError(f"adjustment {adj.reason!r} names a line that is not in the order")
        parts = [0] * len(lines)
        parts[i] = max(adj.amount, -shipping[i])
    else:
        parts = allocate(max(adj.amount, -sum(shipping)), shipping) if any(shipping) else [0] * len(lines)
    adj.amount = sum(parts)
    adj.allocation = {}
    for i, part in enumerate(parts):
        if part:
            lines[i].shipping += part
            running[i] += part
            adj.allocation[lines[i].line_no] = part


def _book(line: Line, phase: int, amount: int) -> None:
    if amount < 0:
        line.discount -= amount
    elif phase == Phase.FREIGHT:
        line.shipping += amount
    else:
        line.fees += amount
