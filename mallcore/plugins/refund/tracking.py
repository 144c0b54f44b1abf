"""What the tracking page shows: the order, its parcels, every after-sale case.

``GET /track/{order_id}?token=...`` is the link the customer gets in the
order response (``tracking_url``, signed by the kernel). It needs no login,
so it shows only what the customer may see: public timeline entries, no
internal notes, no staff names.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from mallcore.kernel import LIVE_REFUND_STATUSES, NotFound, format_amount

from . import states as st

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

    from . import RefundCenter

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Order tracking",
        "order": "Order",
        "status": "Status",
        "total": "Total",
        "refunded": "Refunded",
        "goods": "Items",
        "parcels": "Parcels",
        "no_parcels": "Not shipped yet.",
        "waybill": "Waybill",
        "warehouse": "From",
        "after_sales": "After-sale",
        "no_cases": "No after-sale requests.",
        "case": "Request",
        "return_parcel": "Return parcel",
        "pickup": "Pickup",
        "pickup_code": "code",
        "replacement": "Replacement order No.",
        "refund": "Refund",
        "history": "Order history",
        "qty": "qty",
    },
    "zh": {
        "title": "订单跟踪",
        "order": "订单",
        "status": "状态",
        "total": "实付",
        "refunded": "已退款",
        "goods": "商品",
        "parcels": "包裹",
        "no_parcels": "尚未发货。",
        "waybill": "运单号",
        "warehouse": "发货仓",
        "after_sales": "售后",
        "no_cases": "暂无售后申请。",
        "case": "售后单",
        "return_parcel": "退货包裹",
        "pickup": "上门取件",
        "pickup_code": "取件码",
        "replacement": "换新订单号",
        "refund": "退款",
        "history": "订单动态",
        "qty": "数量",
    },
}

ORDER_STATUS: dict[str, tuple[str, str]] = {
    "awaiting_payment": ("Awaiting payment", "等待付款"),
    "paid": ("Paid, preparing to ship", "已付款,待发货"),
    "dispatched": ("Handed to the warehouse", "仓库处理中"),
    "shipped": ("Shipped", "已发货"),
    "delivered": ("Delivered", "已签收"),
    "completed": ("Completed", "交易成功"),
    "cancelled": ("Cancelled", "已取消"),
    "closed": ("Closed (refunded)", "交易关闭(已退款)"),
}

PARCEL_STATUS: dict[str, tuple[str, str]] = {
    "created": ("Waiting for pickup", "待揽收"),
    "filed": ("Waybill filed", "已填写运单"),
    "booked": ("Pickup booked", "已预约"),
    "picked_up": ("Picked up", "已揽收"),
    "in_transit": ("In transit", "运输中"),
    "out_for_delivery": ("Out for delivery", "派送中"),
    "delivered": ("Delivered", "已签收"),
    "exception": ("Problem reported", "异常"),
    "stale": ("No movement", "长时间未更新"),
    "requested": ("Requested", "已申请"),
    "failed": ("Failed", "未成功"),
    "cancelled": ("Cancelled", "已取消"),
}

# A case's refund as the customer reads it; only these are shown (a rejected or failed refund
# is no money on its way: the case's own status and timeline say what happens next).
REFUND_STATUS: dict[str, tuple[str, str]] = {
    "requested": ("Requested", "退款申请中"),
    "pending_review": ("Awaiting finance review", "等待财务审核"),
    "approved": ("Approved, being paid out", "审核通过,退款处理中"),
    "refunded": ("Refunded", "退款成功"),
}


def _pick(pair: tuple[str, str] | None, lang: str, fallback: str) -> str:
    if pair is None:
        return fallback
    return pair[1] if lang == "zh" else pair[0]


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str) and len(value) >= 16:
        return value[:16].replace("T", " ")
    return str(value or "")


def _refund(amount: int, status: str | None, currency: str, lang: str) -> dict[str, str] | None:
    """The refund line of a case: only a refund that is live or paid (never a rejected one)."""
    if status not in LIVE_REFUND_STATUSES or not amount:
        return None
    label = REFUND_STATUS.get(status)
    return {
        "amount": format_amount(amount, currency),
        "status": _pick(label, lang, status or ""),
        "code": status or "",
    }


def page_context(kernel: Kernel, center: RefundCenter, order_id: int, lang: str) -> dict[str, Any]:
    with kernel.db.transaction(write=False) as conn:
        order = kernel.orders.load(conn, order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        lines = kernel.orders.load_lines(conn, order_id)
        view = kernel.orders.render(order, lines, [], conn=conn)
        timeline: list[Any] = cast(
            Any, kernel.orders.timeline_entries(conn, order_id, lang=lang, public_only=True)
        )
        cases = center.cases.records.load_for_order(conn, order_id)
    by_ref: dict[str, list[Any]] = {}
    for entry in timeline:
        by_ref.setdefault(entry.ref or "", []).append(entry)
    sku_names = {line.id: line.name or line.sku for line in lines}
    parcels = []
    for shipment in view.shipments:
        events = sorted(
            shipment.events,
            key=lambda e: str(e.get("occurred_at") or e.get("at") or ""),
            reverse=True,
        )
        parcels.append(
            {
                "carrier": shipment.carrier,
                "tracking_no": shipment.tracking_no,
                "status": _pick(PARCEL_STATUS.get(shipment.status), lang, shipment.status),
                "warehouse": shipment.warehouse,
                "goods": [
                    f"{sku_names.get(int(x.get('line_id', 0)), '')} x{x.get('quantity', '')}"
                    for x in shipment.lines
                ],
                "events": [
                    {
                        "at": _time(e.get("occurred_at") or e.get("at")),
                        "text": " ".join(
                            str(p)
                            for p in (
                                _pick(
                                    PARCEL_STATUS.get(str(e.get("status"))), lang, str(e.get("status") or "")
                                ),
                                e.get("description") or "",
                                e.get("location") or "",
                            )
                            if p
                        ),
                    }
                    for e in events
                ],
            }
        )
    case_views = []
    for case in reversed(cases):
        entries = sorted(by_ref.get(case.ref, []), key=lambda e: e.at, reverse=True)
        type_en, type_zh = st.TYPE_LABELS[case.type]
        rp = case.return_parcel
        pickup = case.pickup
        case_views.append(
            {
                "id": case.id,
                "type": type_zh if lang == "zh" else type_en,
                "status": st.label(case.status, lang),
                "status_code": case.status,
                "goods": [f"{sku_names.get(x.line_id, x.sku)} x{x.quantity}" for x in case.lines],
                "refund": _refund(case.refund_amount, case.refund_status, order.currency, lang),
                "return_parcel": None
                if rp is None
                else {
                    "carrier": rp.carrier,
                    "tracking_no": rp.tracking_no,
                    "status": _pick(PARCEL_STATUS.get(rp.status), lang, rp.status),
                },
                "pickup": None
                if pickup is None
                else {
                    "window": f"{_time(pickup.window_start)} - {_time(pickup.window_end)[11:]}",
                    "status": _pick(PARCEL_STATUS.get(pickup.status), lang, pickup.status),
                    "courier": " ".join(p for p in (pickup.courier, pickup.courier_phone) if p),
                    "code": pickup.code,
                },
                "replacement_order_id": case.replacement_order_id,
                "replacement_url": kernel.tracking_url(case.replacement_order_id)
                if case.replacement_order_id
                else None,
                "timeline": [{"at": _time(e.at), "text": e.message} for e in entries],
            }
        )
    history = [
        {"at": _time(e.at), "text": e.message}
        for e in sorted(
            (e for e in timeline if not (e.ref or "").startswith("after_sale:")),
            key=lambda e: e.at,
            reverse=True,
        )
    ]
    return {
        "lang": lang,
        "t": TEXT[lang],
        "order": {
            "id": order.id,
            "status": _pick(ORDER_STATUS.get(order.status), lang, order.status),
            "status_code": order.status,
            "total": format_amount(order.total, order.currency),
            "refunded": format_amount(order.refunded, order.currency) if order.refunded else None,
            "placed_at": _time(order.placed_at),
            "parent_id": order.parent_id,
            "lines": [
                {"name": line.name or line.sku, "sku": line.sku, "quantity": line.quantity} for line in lines
            ],
        },
        "parcels": parcels,
        "cases": case_views,
        "history": history,
    }
