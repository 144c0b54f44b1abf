"""TMS's part of the customer's tracking page (the ``tracking_page`` hook).

Carrier names in the page's language (``page.carriers``, which the after-sale
center reads for return waybills), and a card per parcel on its way to the
customer (outbound, or a repaired item sent back): the carrier's name and
waybill, its status, the warehouse and goods, and every applied carrier event
newest first, worded in the page's language (a carrier's own description and
location follow as the carrier sent them). The parcel's timeline entries
(``shipment:<id>``) are claimed: the order history does not repeat them.
Return parcels are followed on their after-sale case's card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import TrackingCard, TrackingFact, TrackingPage, TrackingStep

from . import tables as t

if TYPE_CHECKING:
    from .carriers import Carrier

STATUS: dict[str, tuple[str, str]] = {
    "created": ("Waiting for the courier", "待揽收"),
    "booked": ("Pickup booked", "已预约取件"),
    "picked_up": ("Picked up by the courier", "快递员已揽收"),
    "in_transit": ("In transit", "运输中"),
    "out_for_delivery": ("Out for delivery", "派送中"),
    "delivered": ("Delivered", "已签收"),
    "exception": ("Delivery problem", "配送异常"),
    "pickup_failed": ("Pickup failed", "上门取件未成功"),
    "cancelled": ("Cancelled", "已取消"),
    "superseded": ("Replaced by another waybill", "已更换运单"),
}
TO_CUSTOMER = ("outbound", "ship_back")


def _status(page: TrackingPage, code: str) -> str:
    pair = STATUS.get(code)
    return page.t(*pair) if pair else code


def add_parcels(page: TrackingPage, conn: sa.Connection, carriers: dict[str, Carrier]) -> None:
    """Name the carriers, then a section of the parcels coming to the customer (if any)."""
    for code, carrier in carriers.items():
        page.carriers[code] = page.t(*carrier.names())
    order = page.order
    if order.status in ("awaiting_payment", "paid", "cancelled"):
        return
    s, e = t.shipments.c, t.events.c
    rows: Any = conn.execute(
        sa.select(s.id, s.kind, s.carrier, s.tracking_no, s.status, s.warehouse, s.lines)
        .where(s.order_id == order.id, s.kind.in_(TO_CUSTOMER))
        .order_by(s.id)
    ).all()
    if not rows:
        return
    events: dict[int, list[Any]] = {}
    for r in conn.execute(
        sa.select(e.shipment_id, e.status, e.occurred_at, e.location, e.description)
        .where(e.order_id == order.id, e.applied.is_(True))
        .order_by(e.occurred_at.desc(), e.id.desc())
    ):
        events.setdefault(r.shipment_id, []).append(r)
    section = page.section("parcels", page.t("Parcels", "包裹"), rank=20)
    many = len(rows) > 1
    for i, r in enumerate(rows, 1):
        page.claim(f"shipment:{r.id}")
        what = page.t("Repaired item", "维修寄回") if r.kind == "ship_back" else page.t("Parcel", "包裹")
        card = TrackingCard(
            key=f"parcel-{r.id}",
            title=f"{what}{f' {i}' if many else ''} · {page.carrier(r.carrier)}",
            badge=_status(page, r.status),
            status=r.status,
        )
        card.facts.append(
            TrackingFact(label=page.t("Waybill", "运单号"), value=r.tracking_no, kind="waybill")
        )
        goods = ", ".join(f"{page.line_name(line_id)} x{qty}" for line_id, qty in r.lines or [])
        if goods:
            card.facts.append(TrackingFact(label=page.t("Goods", "商品"), value=goods, kind="goods"))
        for ev in events.get(r.id, []):
            # (a carrier whose text only repeats the status code adds nothing)
            said = "" if ev.description.strip().lower() == ev.status else ev.description
            words = [_status(page, ev.status), said, ev.location and f"({ev.location})"]
            card.steps.append(
                TrackingStep(at=page.time(ev.occurred_at), text=" ".join(w for w in words if w))
            )
        section.cards.append(card)
