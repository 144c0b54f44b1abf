"""The after-sale case state machine, in one place.

::

    requested ──► approved ──► (refund_only) refund_pending_review ──► refunded
        │            │                 ▲        │ finance rejects: back to requested (or inspected),
        │            │                 │        │ where a silent merchant ends it as rejected
        │            │                 └────────┴─(no review)──────► refunded
        │            └──► awaiting_return ──► return_shipped ──┐
        │                    │    ▲  └──► pickup_requested ───┤
        │                    │    └── pickup failed ◄─────────┤
        │                    ▼                                ▼
        │                  closed (never shipped)      return_in_transit
        │                                                     ▼
        │                               received ──► inspected ─┬─► refund_pending_review ─► refunded
        │                                                       ├─► replacement_created   (exchange)
        │                                                       ├─► repaired ─► shipped_back (repair)
        │                                                       └─► rejected (inspection failed)
        ├──► rejected
        └──► cancelled (withdrawn by the customer, or the order was cancelled)

``approved`` and ``received`` are steps a case passes through within one
request (other centers hear of them in ``order_after_sale``); a case rests in
the others. Every change goes through :func:`check`, which knows, for each
edge, the case types that may take it.
"""

from __future__ import annotations

from enum import StrEnum

from mallcore.kernel import Conflict


class CaseStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    AWAITING_RETURN = "awaiting_return"
    RETURN_SHIPPED = "return_shipped"
    PICKUP_REQUESTED = "pickup_requested"
    RETURN_IN_TRANSIT = "return_in_transit"
    RECEIVED = "received"
    INSPECTED = "inspected"
    REFUND_PENDING_REVIEW = "refund_pending_review"
    REFUNDED = "refunded"
    REPLACEMENT_CREATED = "replacement_created"
    REPAIRED = "repaired"
    SHIPPED_BACK = "shipped_back"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = CaseStatus

ALL = frozenset({"refund_only", "return_refund", "exchange", "repair"})
# Types whose goods come back to the warehouse.
GOODS_BACK = frozenset({"return_refund", "exchange", "repair"})
# Types that can end in money back (an exchange can be settled as a refund).
MONEY = frozenset({"return_refund", "exchange"})

# from -> {to: case types allowed to take the edge}
TRANSITIONS: dict[CaseStatus, dict[CaseStatus, frozenset[str]]] = {
    S.REQUESTED: {S.APPROVED: ALL, S.REJECTED: ALL, S.CANCELLED: ALL},
    S.APPROVED: {
        S.AWAITING_RETURN: GOODS_BACK,
        S.REFUND_PENDING_REVIEW: frozenset({"refund_only"}),
        S.REFUNDED: frozenset({"refund_only"}),
    },
    S.AWAITING_RETURN: {
        S.RETURN_SHIPPED: GOODS_BACK,
        S.PICKUP_REQUESTED: GOODS_BACK,
        # goods handed in at the desk, with no waybill
        S.RECEIVED: GOODS_BACK,
        S.CLOSED: GOODS_BACK,
        S.CANCELLED: GOODS_BACK,
    },
    S.PICKUP_REQUESTED: {
        S.AWAITING_RETURN: GOODS_BACK,  # pickup failed or expired: rebook or ship it yourself
        S.RETURN_SHIPPED: GOODS_BACK,  # shipped it after all
        S.RETURN_IN_TRANSIT: GOODS_BACK,
        S.RECEIVED: GOODS_BACK,
        S.CANCELLED: GOODS_BACK,
    },
    S.RETURN_SHIPPED: {S.RETURN_IN_TRANSIT: GOODS_BACK, S.RECEIVED: GOODS_BACK},
    S.RETURN_IN_TRANSIT: {S.RECEIVED: GOODS_BACK},
    S.RECEIVED: {S.INSPECTED: GOODS_BACK},
    S.INSPECTED: {
        S.REFUND_PENDING_REVIEW: MONEY,
        S.REFUNDED: MONEY,
        S.REPLACEMENT_CREATED: frozenset({"exchange"}),
        S.REPAIRED: frozenset({"repair"}),
        S.REJECTED: GOODS_BACK,
    },
    S.REFUND_PENDING_REVIEW: {
        S.REFUNDED: ALL - {"repair"},
        # finance rejected the refund: the merchant acts again
        S.REQUESTED: frozenset({"refund_only"}),
        S.INSPECTED: MONEY,
    },
    S.REPAIRED: {S.SHIPPED_BACK: frozenset({"repair"})},
    S.REFUNDED: {},
    S.REPLACEMENT_CREATED: {},
    S.SHIPPED_BACK: {},
    S.REJECTED: {},
    S.CLOSED: {},
    S.CANCELLED: {},
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Passed through within one request; a case never rests there.
TRANSIENT = frozenset({S.APPROVED, S.RECEIVED})
# Cases in these states no longer hold their units: another case may claim them.
RELEASED = frozenset({S.REJECTED, S.CLOSED, S.CANCELLED, S.SHIPPED_BACK})

# Customer-visible wording of each status: (en, zh). The source's own phrases
# where it has them (JD: "商品已经收到且登记检测完毕", "退款申请已提交,等待财务审核").
LABELS: dict[CaseStatus, tuple[str, str]] = {
    S.REQUESTED: ("Waiting for the merchant", "等待商家处理"),
    S.APPROVED: ("Approved by the merchant", "商家已同意"),
    S.REJECTED: ("Rejected", "已拒绝"),
    S.AWAITING_RETURN: ("Waiting for you to send the goods back", "等待买家退货"),
    S.RETURN_SHIPPED: ("Return shipped", "买家已寄出"),
    S.PICKUP_REQUESTED: ("Pickup booked", "已预约上门取件"),
    S.RETURN_IN_TRANSIT: ("Return parcel in transit", "退货运输中"),
    S.RECEIVED: ("Goods received", "商品已收到"),
    S.INSPECTED: ("Goods received and inspected, awaiting processing", "商品已经收到且登记检测完毕,等待处理"),
    S.REFUND_PENDING_REVIEW: ("Refund submitted, awaiting finance review", "退款申请已提交,等待财务审核"),
    S.REFUNDED: ("Refunded", "退款成功"),
    S.REPLACEMENT_CREATED: ("Replacement order created", "换新订单已生成"),
    S.REPAIRED: ("Repaired", "已维修"),
    S.SHIPPED_BACK: ("Repaired goods shipped back", "维修商品已寄回"),
    S.CLOSED: ("Closed", "售后关闭"),
    S.CANCELLED: ("Withdrawn", "已撤销"),
}

TYPE_LABELS: dict[str, tuple[str, str]] = {
    "refund_only": ("Refund only", "仅退款"),
    "return_refund": ("Return and refund", "退货退款"),
    "exchange": ("Exchange", "换货"),
    "repair": ("Repair", "返修"),
}


def can(case_type: str, current: str, target: str) -> bool:
    return case_type in TRANSITIONS[CaseStatus(current)].get(CaseStatus(target), frozenset())


def check(case_type: str, current: str, target: str) -> None:
    """Raise :class:`Conflict` (``invalid_transition``) unless the edge is allowed."""
    if not can(case_type, current, target):
        raise Conflict(
            f"a {case_type} case that is {current} cannot become {target}",
            code="invalid_transition",
            extra={"status": current, "target": target, "type": case_type},
        )


def label(status: str, lang: str) -> str:
    en, zh = LABELS[CaseStatus(status)]
    return zh if lang == "zh" else en
