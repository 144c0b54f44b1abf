"""Return parcels ("我已寄出") and pickups (上门取件), told to the after-sale center.

The after-sale steps are driven here the way the refund center drives them
(``order_after_sale`` inside the step's stage), and a temporary center
records what TMS reports through ``after_sale_parcel``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Center, MallcoreError, OrderContext, Rejected, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine, ParcelEvent, Pickup, ReturnParcel

from .support import paid_order, rows, shop_kernel, signed


class Desk(Center):
    """Stands in for the refund center: remembers every parcel event."""

    name = "desk"
    heard: list[ParcelEvent]

    def __init__(self) -> None:
        super().__init__()
        self.heard = []

    @hookimpl
    def after_sale_parcel(self, ctx: OrderContext, event: ParcelEvent) -> None:
        assert ctx.order.id == event.order_id
        self.heard.append(event)


def at(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(hours=1) + timedelta(minutes=minutes)).isoformat()


def delivered_order(mallcore: Any, **kwargs: Any) -> tuple[Any, dict[str, Any], Desk]:
    kernel = shop_kernel(mallcore, extra=[Desk], **kwargs)
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 2)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    view = merchant.post(f"/orders/{order['id']}/dispatch").json()
    no = view["shipments"][0]["tracking_no"]
    merchant.post(f"/tms/sandbox/{no}/advance", json={"status": "delivered"})
    view = merchant.get(f"/orders/{order['id']}").json()
    assert view["status"] == "delivered"
    return kernel, view, kernel.centers["desk"]


def step(kernel: Any, view: dict[str, Any], status: str, case_id: int = 7, **fields: Any) -> AfterSaleCase:
    line = view["lines"][1]
    case = AfterSaleCase(
        id=case_id,
        order_id=view["id"],
        type="return_refund",
        status=status,
        previous=None,
        customer=view["customer"],
        shop=view["shop"],
        lines=[CaseLine(line_id=line["id"], sku=line["sku"], quantity=1)],
        **fields,
    )
    with kernel.orders.stage("after_sale", view["id"], SYSTEM) as ctx:
        kernel.hook.order_after_sale(ctx=ctx, case=case)
    return case


def test_a_return_waybill_is_tracked_and_reported_to_the_case(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    parcel = ReturnParcel(carrier="sandbox", tracking_no="RET123456", phone="13900000000", warehouse="SH")
    step(kernel, view, "return_shipped", return_parcel=parcel)
    alice = mallcore.client(kernel, "customer", "alice")
    [ret] = alice.get("/tms/shipments", params={"case_id": 7}).json()
    assert (ret["kind"], ret["status"], ret["warehouse"], ret["tracking_no"]) == (
        "return",
        "created",
        "SH",
        "RET123456",
    )
    assert ret["lines"] == [{"line_id": view["lines"][1]["id"], "quantity": 1}]
    # filing the same waybill again changes nothing
    step(kernel, view, "return_shipped", return_parcel=parcel)
    assert len(alice.get("/tms/shipments", params={"case_id": 7}).json()) == 1

    carrier = mallcore.client(kernel, None)
    for i, status in enumerate(("picked_up", "in_transit")):
        r = signed(carrier, "sandbox", {"tracking_no": "RET123456", "status": status, "occurred_at": at(i)})
        assert r.json()["result"] == "applied"
    r = signed(
        carrier,
        "sandbox",
        {"tracking_no": "RET123456", "status": "delivered", "occurred_at": at(9), "warehouse": "BJ"},
    )
    assert r.json()["result"] == "applied"
    assert [(e.status, e.kind, e.case_id, e.wrong_warehouse) for e in desk.heard] == [
        ("picked_up", "return", 7, False),
        ("in_transit", "return", 7, False),
        ("delivered", "return", 7, True),  # it landed at BJ, not SH
    ]
    assert desk.heard[-1].warehouse == "BJ"
    # the order itself stays delivered: return parcels never move it
    assert alice.get(f"/orders/{view['id']}").json()["status"] == "delivered"
    case_timeline = alice.get(f"/orders/{view['id']}/timeline", params={"ref": "after_sale:7"}).json()
    assert [e["kind"] for e in case_timeline] == [
        "shipment.return_filed",
        "shipment.picked_up",
        "shipment.in_transit",
        "shipment.delivered",
    ]
    assert case_timeline[1]["message"].startswith("Return parcel RET123456 picked up by")
    zh = alice.get(
        f"/orders/{view['id']}/timeline", params={"ref": "after_sale:7"}, headers={"Accept-Language": "zh"}
    ).json()
    assert zh[0]["message"].startswith("退货包裹RET123456")
    # the order view lists it beside the outbound parcel
    order = alice.get(f"/orders/{view['id']}").json()
    assert [(p["case_id"], p["status"]) for p in order["extra"]["after_sale_parcels"]] == [(7, "delivered")]
    assert len(order["shipments"]) == 1


def test_events_that_came_before_the_waybill_was_filed_are_applied(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    carrier = mallcore.client(kernel, None)
    r = signed(carrier, "sandbox", {"tracking_no": "EARLY0001", "status": "picked_up", "occurred_at": at(0)})
    assert r.json()["result"] == "kept_for_review"
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="EARLY0001")
    )
    [ret] = rows(kernel, "tms_shipments", kind="return")
    assert ret.status == "picked_up"
    assert [e.status for e in desk.heard] == ["picked_up"]
    [kept] = rows(kernel, "tms_unknown_events")
    assert kept.resolution == "applied"


def test_a_kept_event_the_carrier_sent_again_leaves_the_review_queue(mallcore, monkeypatch):
    kernel, view, desk = delivered_order(mallcore)
    carrier = mallcore.client(kernel, None)
    event = {"tracking_no": "EARLY0002", "status": "picked_up", "occurred_at": at(0), "event_id": "e-1"}
    assert signed(carrier, "sandbox", event).json()["result"] == "kept_for_review"
    # The waybill is filed, but the process stops before it applies the kept event...
    monkeypatch.setattr(kernel.centers["tms"].tracker, "adopt", lambda *args: 0)
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="EARLY0002")
    )
    # ...and the carrier sends the event again, which applies at once.
    assert signed(carrier, "sandbox", event).json()["result"] == "applied"
    admin = mallcore.client(kernel, "admin", "root")
    [kept] = admin.get("/tms/unknown-events").json()
    r = admin.post(f"/tms/unknown-events/{kept['id']}/retry")
    assert (r.status_code, r.json()["result"]) == (200, "duplicate")
    assert admin.get("/tms/unknown-events").json() == []
    [resolved] = rows(kernel, "tms_unknown_events")
    assert (resolved.resolution, resolved.resolved_by) == ("duplicate", "root")
    assert [e.status for e in desk.heard] == ["picked_up"]


def test_a_waybill_tracked_for_another_parcel_is_refused(mallcore):
    kernel, view, _desk = delivered_order(mallcore)
    outbound = view["shipments"][0]["tracking_no"]
    with pytest.raises(MallcoreError) as refused:
        step(
            kernel,
            view,
            "return_shipped",
            return_parcel=ReturnParcel(carrier="sandbox", tracking_no=outbound),
        )
    assert refused.value.code == "waybill_in_use"
    assert rows(kernel, "tms_shipments", kind="return") == []


def test_a_corrected_waybill_supersedes_one_that_never_moved(mallcore):
    kernel, view, _desk = delivered_order(mallcore)
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="TYPO0001")
    )
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="RIGHT0001")
    )
    assert [(r.tracking_no, r.status) for r in rows(kernel, "tms_shipments", kind="return")] == [
        ("TYPO0001", "superseded"),
        ("RIGHT0001", "created"),
    ]


def window(hours_from_now: float = 2) -> tuple[datetime, datetime]:
    start = datetime.now(UTC) + timedelta(hours=hours_from_now)
    return start, start + timedelta(hours=2)


def test_pickup_is_booked_fails_and_is_rebooked(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    start, end = window()
    address = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}
    case = step(
        kernel, view, "pickup_requested", pickup=Pickup(window_start=start, window_end=end, address=address)
    )
    first = case.pickup
    assert first is not None
    assert (first.status, first.attempts) == ("booked", 1)
    assert first.courier and first.courier_phone and first.code and len(first.code) == 6
    assert first.tracking_no and first.tracking_no.startswith("SBX")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post(f"/tms/sandbox/{first.tracking_no}/advance", json={"status": "pickup_failed"})
    assert r.json()["result"] == "applied"
    assert [(e.kind, e.status) for e in desk.heard] == [("pickup", "pickup_failed")]

    # the customer asks again: booked again, attempt 2
    case = step(
        kernel, view, "pickup_requested", pickup=Pickup(window_start=start, window_end=end, address=address)
    )
    second = case.pickup
    assert second is not None
    assert (second.status, second.attempts) == ("booked", 2)
    assert second.tracking_no != first.tracking_no
    r = merchant.post(f"/tms/sandbox/{second.tracking_no}/advance")
    assert r.json()["status"] == "picked_up"
    assert [(e.kind, e.status, e.tracking_no) for e in desk.heard][-1] == (
        "pickup",
        "picked_up",
        second.tracking_no,
    )
    booked = [
        e
        for e in merchant.get(f"/orders/{view['id']}/timeline").json()
        if e["kind"] == "shipment.pickup_booked"
    ]
    assert len(booked) == 2
    assert "(attempt 2)" in booked[1]["message"]
    assert f"pickup code {second.code}" in booked[1]["message"]
    # once picked up, no more bookings
    with pytest.raises(MallcoreError) as refused:
        step(
            kernel,
            view,
            "pickup_requested",
            pickup=Pickup(window_start=start, window_end=end, address=address),
        )
    assert refused.value.code == "pickup_done"


def test_rebooking_cancels_an_open_booking(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    start, end = window()
    for _ in range(2):
        step(kernel, view, "pickup_requested", pickup=Pickup(window_start=start, window_end=end, address={}))
    assert [r.status for r in rows(kernel, "tms_shipments", kind="pickup")] == ["cancelled", "booked"]
    # a late event on the cancelled booking is history only
    old = rows(kernel, "tms_shipments", kind="pickup")[0]
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post(f"/tms/sandbox/{old.tracking_no}/advance", json={"status": "pickup_failed"})
    assert r.json()["result"] == "recorded"
    assert desk.heard == []


def test_a_pickup_needs_a_carrier_that_takes_them(mallcore):
    kernel, view, _desk = delivered_order(
        mallcore, settings={"tms": {"carriers": {"yto": {"webhook_secret": "y"}}}}
    )
    start, end = window()
    for carrier, code in (("yto", "pickup_unsupported"), ("nobody", "carrier_unknown")):
        with pytest.raises(MallcoreError) as refused:
            step(
                kernel,
                view,
                "pickup_requested",
                pickup=Pickup(window_start=start, window_end=end, address={}, carrier=carrier),
            )
        assert refused.value.code == code
    with pytest.raises(MallcoreError) as refused:
        step(kernel, view, "pickup_requested", pickup=Pickup(window_start=end, window_end=start, address={}))
    assert refused.value.code == "pickup_window_invalid"
    assert rows(kernel, "tms_shipments", kind="pickup") == []


def age(kernel: Any, hours: float) -> None:
    """Pretend every watched return parcel was last seen ``hours`` ago."""
    table = kernel.metadatas["tms"].tables["tms_shipments"]
    with kernel.db.transaction() as conn:
        conn.execute(
            table.update()
            .where(table.c.watch_from.is_not(None))
            .values(watch_from=datetime.now(UTC) - timedelta(hours=hours))
        )


def test_a_return_waybill_that_never_moves_is_flagged_once(mallcore):
    kernel, view, desk = delivered_order(mallcore, settings={"tms": {"stale_return_after_hours": 48}})
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="SLEEPY01")
    )
    age(kernel, 47)
    assert kernel.jobs.run("tms.stale_returns") == 0
    age(kernel, 49)
    assert kernel.jobs.run("tms.stale_returns") == 1
    assert kernel.jobs.run("tms.stale_returns") == 0  # flagged once
    assert [(e.status, e.case_id, e.tracking_no) for e in desk.heard] == [("stale", 7, "SLEEPY01")]
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    [flagged] = merchant.get("/tms/shipments", params={"stale": True}).json()
    assert flagged["tracking_no"] == "SLEEPY01"
    entries = merchant.get(f"/orders/{view['id']}/timeline", params={"ref": "after_sale:7"}).json()
    assert entries[-1]["kind"] == "shipment.stale"
    assert entries[-1]["message"] == "Return parcel SLEEPY01 has shown no movement for 48 hours"
    # it moves: no longer stale, the clock restarts
    merchant.post("/tms/sandbox/SLEEPY01/advance")
    assert rows(kernel, "tms_shipments", tracking_no="SLEEPY01")[0].stale_at is None
    assert kernel.jobs.run("tms.stale_returns") == 0


class Grumpy(Center):
    """A center that cannot take the stale news of one case right now."""

    name = "grumpy"
    case_id = 7

    @hookimpl
    def after_sale_parcel(self, ctx: OrderContext, event: ParcelEvent) -> None:
        if event.case_id == self.case_id:
            raise Rejected("case locked", code="case_locked")


def test_a_stale_flag_refused_for_one_case_does_not_hold_up_the_others(mallcore):
    kernel = shop_kernel(mallcore, extra=[Grumpy], settings={"tms": {"stale_return_after_hours": 1}})
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 2)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    merchant.post(f"/orders/{order['id']}/dispatch")
    view = merchant.get(f"/orders/{order['id']}").json()
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="STUCK001")
    )
    step(
        kernel,
        view,
        "return_shipped",
        case_id=8,
        return_parcel=ReturnParcel(carrier="sandbox", tracking_no="LATE0001"),
    )
    age(kernel, 2)
    assert kernel.jobs.run("tms.stale_returns") == 1
    assert rows(kernel, "tms_shipments", tracking_no="LATE0001")[0].stale_at is not None
    assert rows(kernel, "tms_shipments", tracking_no="STUCK001")[0].stale_at is None
    kernel.centers["grumpy"].case_id = None
    assert kernel.jobs.run("tms.stale_returns") == 1
    assert rows(kernel, "tms_shipments", tracking_no="STUCK001")[0].stale_at is not None


def test_no_stale_flag_once_the_case_is_over(mallcore):
    kernel, view, _desk = delivered_order(mallcore, settings={"tms": {"stale_return_after_hours": 1}})
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="DONE0001")
    )
    start, end = window()
    step(
        kernel,
        view,
        "pickup_requested",
        case_id=8,
        pickup=Pickup(window_start=start, window_end=end, address={}),
    )
    step(kernel, view, "received")
    step(kernel, view, "cancelled", case_id=8)
    age(kernel, 5)
    assert kernel.jobs.run("tms.stale_returns") == 0
    assert [r.status for r in rows(kernel, "tms_shipments", kind="pickup")] == ["cancelled"]
    with kernel.db.transaction(write=False) as conn:
        table = kernel.metadatas["tms"].tables["tms_shipments"]
        watched = conn.execute(sa.select(sa.func.count()).where(table.c.watch_from.is_not(None))).scalar()
    assert watched == 0


def test_shipping_it_yourself_or_giving_up_cancels_the_open_pickup(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    start, end = window()
    step(kernel, view, "pickup_requested", pickup=Pickup(window_start=start, window_end=end, address={}))
    step(
        kernel, view, "return_shipped", return_parcel=ReturnParcel(carrier="sandbox", tracking_no="SELF0001")
    )
    assert [(r.kind, r.status) for r in rows(kernel, "tms_shipments", case_id=7)] == [
        ("pickup", "cancelled"),
        ("return", "created"),
    ]
    step(
        kernel,
        view,
        "pickup_requested",
        case_id=8,
        pickup=Pickup(window_start=start, window_end=end, address={}),
    )
    step(kernel, view, "awaiting_return", case_id=8)  # the window passed without the courier
    [pickup] = rows(kernel, "tms_shipments", case_id=8)
    assert (pickup.status, pickup.watch_from) == ("cancelled", None)


def test_a_repaired_item_going_back_is_tracked(mallcore):
    kernel, view, desk = delivered_order(mallcore)
    step(kernel, view, "shipped_back", data={"ship_back": {"carrier": "sandbox", "tracking_no": "BACK0001"}})
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post("/tms/sandbox/BACK0001/advance", json={"status": "delivered"})
    assert r.json()["result"] == "applied"
    assert desk.heard == []  # not a return parcel: the case is not told
    entry = merchant.get(f"/orders/{view['id']}/timeline", params={"ref": "after_sale:7"}).json()[-1]
    assert entry["message"].startswith("Repaired item BACK0001 delivered")
