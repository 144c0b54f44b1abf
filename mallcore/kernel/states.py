"""The order state machine, in one place (docs/architecture.md, "States").

::

    awaiting_payment ─► paid ─► dispatched ─► shipped ─► delivered ─► completed
           │             │          └──────────┬─┘          │            │
           ▼             ▼                     ▼            ▼            ▼
       cancelled     cancelled               closed       closed       closed

``cancelled`` is reachable only before dispatch; ``closed`` means every line
was refunded (from paid onwards). Every change goes through :func:`check`.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import Conflict


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    DISPATCHED = "dispatched"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    CLOSED = "closed"


S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.AWAITING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.DISPATCHED, S.CANCELLED, S.CLOSED}),
    S.DISPATCHED: frozenset({S.SHIPPED, S.DELIVERED, S.CLOSED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.CLOSED}),
    S.DELIVERED: frozenset({S.COMPLETED, S.CLOSED}),
    S.COMPLETED: frozenset({S.CLOSED}),
    S.CANCELLED: frozenset(),
    S.CLOSED: frozenset(),
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

# Customer-visible wording of each status, for the timeline (en, zh).
MESSAGES: dict[OrderStatus, tuple[str, str]] = {
    S.AWAITING_PAYMENT: ("Order placed, awaiting payment", "订单已提交,等待付款"),
    S.PAID: ("Payment received", "已付款"),
    S.DISPATCHED: ("Order handed to the warehouse for shipping", "仓库已接单,正在出库"),
    S.SHIPPED: ("Parcel picked up by the carrier", "快递已揽收"),
    S.DELIVERED: ("Parcel delivered", "已签收"),
    S.COMPLETED: ("Order completed", "交易成功"),
    S.CANCELLED: ("Order cancelled", "订单已取消"),
    S.CLOSED: ("Order closed: fully refunded", "交易关闭(已全额退款)"),
}


def can(current: str, target: str) -> bool:
    return OrderStatus(target) in TRANSITIONS[OrderStatus(current)]


def check(current: str, target: str) -> None:
    """Raise :class:`Conflict` (code ``invalid_transition``) unless allowed."""
    if not can(current, target):
        raise Conflict(
            f"an order that is {current} cannot become {target}",
            code="invalid_transition",
            extra={"status": current, "target": target},
        )
