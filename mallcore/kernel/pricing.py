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
from operator import attrgetter

from .errors import InvalidInput, Rejected
from .money import allocate
from .types import Adjustment, Line, Order, Phase


def price(order: Order, lines: Sequence[Line], adjustments: list[Adjustment]) -> list[Adjustment]:
    """Compute line and order totals in place; return adjustments in applied order."""
    # Runs on every placement and preview: written for few lines and few adjustments
    # (locals, no per-adjustment helpers), measured with ``mallcore bench --scenario promotion``.
    running: list[int] = []
    for line in lines:
        unit = line.unit_price
        if unit is None:
            raise Rejected(f"no center priced SKU {line.sku}", code="sku_unpriced")
        if unit < 0:
            raise InvalidInput(f"SKU {line.sku} has a negative price", code="price_negative")
        line.subtotal = subtotal = unit * line.quantity
        line.discount = line.shipping = line.fees = 0
        running.append(subtotal)
    applied: list[Adjustment] = []
    if adjustments:
        index = {line.line_no: i for i, line in enumerate(lines)}
        # A stable sort: adjustments of one phase and center keep the order they were added in.
        for adj in sorted(adjustments, key=_phase_and_source):
            phase = adj.phase
            if phase == _SHIPPING_DISCOUNT:
                _waive_freight(lines, index, running, adj)
            elif adj.line_no is not None:
                i = index.get(adj.line_no)
                if i is None:
                    raise ValueError(f"adjustment {adj.reason!r} names a line that is not in the order")
                amount = max(adj.amount, -running[i])
                adj.amount = amount
                _book(lines[i], phase, amount)
                running[i] += amount
                adj.allocation = {adj.line_no: amount}
            else:
                amount = max(adj.amount, -sum(running))
                adj.amount = amount
                # |amount| <= sum(running), so no line's share exceeds what it stands at.
                allocation: dict[int, int] = {}
                for i, part in enumerate(allocate(amount, running)):
                    if part:
                        _book(lines[i], phase, part)
                        running[i] += part
                        allocation[lines[i].line_no] = part
                adj.allocation = allocation
            if adj.amount:
                applied.append(adj)
    subtotal = discount = shipping = fees = total = 0
    for line, value in zip(lines, running, strict=True):
        line.total = value
        subtotal += line.subtotal
        discount += line.discount
        shipping += line.shipping
        fees += line.fees
        total += value
    order.subtotal, order.discount, order.shipping, order.fees, order.total = (
        subtotal,
        discount,
        shipping,
        fees,
        total,
    )
    return applied


_phase_and_source = attrgetter("phase", "source")
_SHIPPING_DISCOUNT = int(Phase.SHIPPING_DISCOUNT)
_FREIGHT = int(Phase.FREIGHT)


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
    elif phase == _FREIGHT:
        line.shipping += amount
    else:
        line.fees += amount
