"""The after-sale section of the customer's tracking page (the ``tracking_page`` hook).

One card per case, newest case first: its type and status, the goods, the
refund while money is on its way, **where to send the goods and by when**
(``awaiting_return``), the return parcel (expected from approval, "waiting for
your waybill"; then the waybill and its status), the pickup, the replacement order,
and the case's own steps (``after_sale.*`` entries, newest first; a carrier
scan or a finance entry written with a step is an echo of it, see
:func:`mallcore.kernel.tracking.fold_echoes`). The case's entries and those
of its refunds are claimed, so the order history does not repeat them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mallcore.kernel import LIVE_REFUND_STATUSES, TrackingCard, TrackingFact, TrackingPage
from mallcore.kernel.aftersale import ReturnAddress

from . import states as st
from .states import CaseStatus as S

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .cases.records import Case, CaseRecords

PARCEL_STATUS: dict[str, tuple[str, str]] = {
    # expected, before there is a waybill (ReturnParcelView)
    "awaiting_waybill": ("Waiting for you to ship it and enter the waybill", "待寄出,寄出后请填写运单号"),
    "awaiting_pickup": ("Waiting for the courier to be booked", "正在预约快递员上门"),
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
# is no money on its way: the case's own status and steps say what happens next).
REFUND_STATUS: dict[str, tuple[str, str]] = {
    "requested": ("Requested", "退款申请中"),
    "pending_review": ("Awaiting finance review", "等待财务审核"),
    "approved": ("Approved, being paid out", "审核通过,退款处理中"),
    "refunded": ("Refunded", "退款成功"),
}

# The goods are still with the customer: the page says where to send them.
WAITING_FOR_GOODS = (S.AWAITING_RETURN, S.PICKUP_REQUESTED)


def _label(pairs: dict[str, tuple[str, str]], code: str | None, page: TrackingPage) -> str:
    pair = pairs.get(code or "")
    return page.t(*pair) if pair else (code or "")


def address_lines(address: ReturnAddress) -> list[str]:
    # (a municipality is its own province and city: 上海市 青浦区, not 上海市 上海市 青浦区)
    parts = [p for p in (address.province, address.city, address.district) if p]
    place = " ".join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1])
    return [f"{address.contact} {address.phone}".strip(), place, address.street]


def card(page: TrackingPage, case: Case) -> TrackingCard:
    """One case as its customer follows it."""
    t = page.t
    item = TrackingCard(
        key=f"case-{case.id}",
        title=f"{t(*st.TYPE_LABELS[case.type])} · {t('Request', '售后单')} {case.id}",
        badge=st.label(case.status, page.lang),
        status=case.status,
        note=", ".join(f"{page.line_name(x.line_id, x.sku)} x{x.quantity}" for x in case.lines),
    )
    facts = item.facts
    if case.refund_amount and case.refund_status in LIVE_REFUND_STATUSES:
        facts.append(
            TrackingFact(
                label=t("Refund", "退款"),
                value=f"{page.money(case.refund_amount)} · {_label(REFUND_STATUS, case.refund_status, page)}",
                kind="refund",
            )
        )
    address = case.return_address()
    if address is not None and case.status in WAITING_FOR_GOODS:
        facts.append(
            TrackingFact(label=t("Send to", "寄回地址"), lines=address_lines(address), kind="return-address")
        )
    deadline = case.return_by()
    if deadline is not None:
        facts.append(
            TrackingFact(
                label=t("Ship back by", "请在此前寄出"), value=page.time(deadline), kind="ship-back-by"
            )
        )
    rp = case.parcel_back()
    if rp is not None:
        status = _label(PARCEL_STATUS, rp.status, page)
        if rp.warehouse and address is None and not rp.tracking_no:
            # (no warehouse gave its address: at least say which one it goes to)
            status = f"{status} · {t('to warehouse', '寄往仓库')} {rp.warehouse}"
        waybill = f"{page.carrier(rp.carrier)} {rp.tracking_no}" if rp.carrier and rp.tracking_no else ""
        facts.append(
            TrackingFact(
                label=t("Return parcel", "退货包裹"),
                value=f"{waybill} · {status}" if waybill else status,
                kind=f"return-parcel {'filed' if waybill else 'expected'}",
            )
        )
    pickup = case.pickup
    if pickup is not None and pickup.status != "cancelled":
        window = f"{page.time(pickup.window_start)} - {page.time(pickup.window_end, '%H:%M')}"
        parts = [window, _label(PARCEL_STATUS, pickup.status, page)]
        if pickup.courier:
            parts.append(" ".join(p for p in (pickup.courier, pickup.courier_phone) if p))
        if pickup.code:
            parts.append(f"{t('pickup code', '取件码')} {pickup.code}")
        facts.append(TrackingFact(label=t("Pickup", "上门取件"), value=" · ".join(parts), kind="pickup"))
    if case.replacement_order_id:
        facts.append(
            TrackingFact(
                label=t("Replacement order", "换新订单"),
                value=str(case.replacement_order_id),
                href=page.link(case.replacement_order_id),
                kind="replacement",
            )
        )
    item.steps = page.steps(page.entries(case.ref))
    if case.refund_id is not None:
        page.claim(f"refund:{case.refund_id}")
    return item


def add_cases(page: TrackingPage, conn: sa.Connection, records: CaseRecords) -> None:
    """The after-sale section: every case of the order, newest first (none: no section)."""
    cases = records.load_for_order(conn, page.order.id or 0)
    if not cases:
        return
    section = page.section("after-sales", page.t("After-sale", "售后"), rank=30)
    section.cards.extend(card(page, case) for case in reversed(cases))
