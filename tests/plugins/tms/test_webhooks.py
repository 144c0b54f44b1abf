"""The carrier webhook refuses forgeries and stale signatures, ignores replays,
keeps unknown waybills for review and tolerates events out of order."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import Center, hookimpl
from mallcore.kernel.signing import HEADER, sign

from .support import carrier_secret, order_status, paid_order, rows, shop_kernel, signed, snapshot


def at(minutes: int) -> str:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return (base + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def shipped(mallcore: Any) -> tuple[Any, int, str, Any]:
    """A kernel with one dispatched order; (kernel, order id, waybill, carrier client)."""
    kernel = shop_kernel(
        mallcore,
        settings={"tms": {"carriers": {"sf": {"webhook_secret": "sf-secret", "waybill_prefix": "SF"}}}},
    )
    order = paid_order(mallcore, kernel, [("A", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    view = merchant.post(f"/orders/{order['id']}/dispatch").json()
    return kernel, order["id"], view["shipments"][0]["tracking_no"], mallcore.client(kernel, None)


def test_forged_signature_is_refused_and_changes_nothing(shipped):
    kernel, oid, no, carrier = shipped
    before = snapshot(kernel)
    event = {"tracking_no": no, "status": "picked_up", "occurred_at": at(0)}
    r = signed(carrier, "sandbox", event, secret="not-the-secret")
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    # signed for another carrier's secret
    r = signed(carrier, "sandbox", event, secret="sf-secret")
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    # a valid signature over a different body
    raw = msgspec.json.encode(event)
    header = sign(carrier_secret(carrier), raw)
    tampered = raw.replace(b"picked_up", b"delivered")
    r = carrier.post("/tms/webhooks/sandbox", content=tampered, headers={HEADER: header})
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    r = carrier.post("/tms/webhooks/sandbox", content=raw)
    assert (r.status_code, r.json()["code"]) == (401, "signature_missing")
    assert snapshot(kernel) == before
    assert order_status(kernel, oid) == "dispatched"


# Past the 300 s window with room for a loaded machine to take a while to check it.
@pytest.mark.parametrize("skew", [-330, 330, -3600])
def test_stale_or_future_timestamp_is_refused(shipped, skew):
    kernel, _oid, no, carrier = shipped
    before = snapshot(kernel)
    event = {"tracking_no": no, "status": "picked_up", "occurred_at": at(0)}
    r = signed(carrier, "sandbox", event, timestamp=int(time.time()) + skew)
    assert (r.status_code, r.json()["code"]) == (401, "signature_expired")
    assert snapshot(kernel) == before


def test_replays_are_ignored(shipped):
    kernel, _oid, no, carrier = shipped
    event = {"tracking_no": no, "status": "picked_up", "occurred_at": at(0), "description": "Collected"}
    raw = msgspec.json.encode(event)
    header = sign(carrier_secret(carrier), raw)
    first = carrier.post("/tms/webhooks/sandbox", content=raw, headers={HEADER: header})
    assert first.json()["result"] == "applied"
    after_first = snapshot(kernel)
    # the same request again, byte for byte (inside the 300 s window)
    again = carrier.post("/tms/webhooks/sandbox", content=raw, headers={HEADER: header})
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    # the same event re-signed later: known by its content
    again = signed(carrier, "sandbox", event, timestamp=int(time.time()) + 5)
    assert again.json()["result"] == "duplicate"
    assert snapshot(kernel) == after_first
    # with an event id: the id decides, whatever else changed in the resend
    e1 = {"tracking_no": no, "status": "in_transit", "occurred_at": at(5), "event_id": "sf-1"}
    assert signed(carrier, "sandbox", e1).json()["result"] == "applied"
    before = snapshot(kernel)
    resent = {**e1, "description": "resent with other text"}
    assert signed(carrier, "sandbox", resent).json()["result"] == "duplicate"
    assert snapshot(kernel) == before
    assert len(rows(kernel, "tms_events")) == 2


def test_unknown_carrier_and_bad_bodies(shipped):
    kernel, _oid, no, carrier = shipped
    before = snapshot(kernel)
    event = {"tracking_no": no, "status": "picked_up", "occurred_at": at(0)}
    r = signed(carrier, "nobody", event, secret="x")
    assert (r.status_code, r.json()["code"]) == (404, "carrier_unknown")
    r = signed(carrier, "sandbox", {}, body=b"{not json")
    assert (r.status_code, r.json()["code"]) == (400, "malformed_json")
    r = signed(carrier, "sandbox", {**event, "status": "teleported"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_event")
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "picked_up"})
    assert r.status_code == 422
    assert snapshot(kernel) == before


def test_a_signature_header_with_non_ascii_characters_is_refused_not_500(shipped):
    kernel, _oid, no, carrier = shipped
    before = snapshot(kernel)
    raw = msgspec.json.encode({"tracking_no": no, "status": "picked_up", "occurred_at": at(0)})
    t = int(time.time())
    for header in (f"t={t},v1=\u00e9\u00e9", f"t={t},v1=abc\u4e2d"):
        r = carrier.post(
            "/tms/webhooks/sandbox", content=raw, headers=[(HEADER.encode(), header.encode("utf-8"))]
        )
        assert (r.status_code, r.json()["code"]) == (401, "signature_invalid"), r.text
    assert snapshot(kernel) == before


def test_a_configured_carrier_has_its_own_secret(mallcore, shipped):
    kernel, _oid, _no, carrier = shipped
    event = {"tracking_no": "SF000000000001", "status": "in_transit", "occurred_at": at(0)}
    sandbox_secret = carrier_secret(carrier, "sandbox")
    assert signed(carrier, "sf", event, secret=sandbox_secret).status_code == 401  # not sf's secret
    assert signed(carrier, "sf", event, secret="sf-secret").json()["result"] == "kept_for_review"
    alice = mallcore.client(kernel, "customer", "alice")
    codes = {c["code"]: c for c in alice.get("/tms/carriers").json()}
    assert (codes["sf"]["waybill_prefix"], codes["sf"]["webhooks"], codes["sf"]["pickup"]) == (
        "SF",
        True,
        False,
    )
    assert codes["sandbox"]["pickup"] is True


def test_unknown_waybill_is_kept_for_review(mallcore, shipped):
    kernel, oid, _no, carrier = shipped
    before = snapshot(kernel)
    event = {
        "tracking_no": "SBX999999999999",
        "status": "delivered",
        "occurred_at": at(0),
        "location": "Depot 9",
    }
    r = signed(carrier, "sandbox", event)
    assert (r.status_code, r.json()["result"]) == (200, "kept_for_review")
    assert signed(carrier, "sandbox", event).json()["result"] == "duplicate"
    after = snapshot(kernel)
    assert after["tms_unknown_events"] != before["tms_unknown_events"]
    assert {k: v for k, v in after.items() if k != "tms_unknown_events"} == {
        k: v for k, v in before.items() if k != "tms_unknown_events"
    }

    admin = mallcore.client(kernel, "admin", "root")
    platform = mallcore.client(kernel, "warehouse", "ops", platform=True)
    shop_staff = mallcore.client(kernel, "merchant", "m1", shop="s1")
    [kept] = admin.get("/tms/unknown-events").json()
    assert (kept["tracking_no"], kept["status"], kept["location"]) == (
        "SBX999999999999",
        "delivered",
        "Depot 9",
    )
    assert [k["id"] for k in platform.get("/tms/unknown-events").json()] == [kept["id"]]
    # unknown waybills belong to no shop: shop staff are refused as such, customers for their role
    for client, code in (
        (shop_staff, "platform_only"),
        (mallcore.client(kernel, "customer", "alice"), "role_required"),
    ):
        refused = [
            client.get("/tms/unknown-events"),
            client.post(f"/tms/unknown-events/{kept['id']}/retry"),
            client.post(f"/tms/unknown-events/{kept['id']}/dismiss", json={"note": "mine"}),
        ]
        assert [(403, code)] * 3 == [(r.status_code, r.json()["code"]) for r in refused]
    r = admin.post(f"/tms/unknown-events/{kept['id']}/retry")
    assert (r.status_code, r.json()["code"]) == (409, "waybill_unknown")
    r = admin.post(f"/tms/unknown-events/{kept['id']}/dismiss", json={"note": "not ours"})
    assert r.status_code == 200, r.text
    assert (r.json()["resolution"], r.json()["resolved_by"], r.json()["note"]) == (
        "dismissed",
        "root",
        "not ours",
    )
    assert admin.get("/tms/unknown-events").json() == []
    assert [k["id"] for k in admin.get("/tms/unknown-events", params={"resolved": True}).json()] == [
        kept["id"]
    ]
    assert order_status(kernel, oid) == "dispatched"


def test_a_late_in_transit_does_not_undo_delivery(shipped):
    kernel, oid, no, carrier = shipped
    for status, minute in (("picked_up", 0), ("delivered", 30)):
        signed(carrier, "sandbox", {"tracking_no": no, "status": status, "occurred_at": at(minute)})
    assert order_status(kernel, oid) == "delivered"
    # sent before delivery, arriving after it
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "in_transit", "occurred_at": at(10)})
    assert (r.json()["result"], r.json()["status"]) == ("recorded", "delivered")
    # even one stamped after delivery (a carrier's mistake) cannot undo it
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "exception", "occurred_at": at(40)})
    assert r.json()["result"] == "recorded"
    [shipment] = rows(kernel, "tms_shipments")
    assert shipment.status == "delivered"
    assert order_status(kernel, oid) == "delivered"
    assert [(e.status, e.applied) for e in rows(kernel, "tms_events")] == [
        ("picked_up", True),
        ("delivered", True),
        ("in_transit", False),
        ("exception", False),
    ]


def test_events_arriving_in_any_order(shipped):
    kernel, oid, no, carrier = shipped
    # delivered first (nothing else yet): the order goes straight through shipped to delivered
    order_of_arrival = [("in_transit", 20), ("picked_up", 0), ("out_for_delivery", 40)]
    for status, minute in order_of_arrival:
        signed(carrier, "sandbox", {"tracking_no": no, "status": status, "occurred_at": at(minute)})
    [shipment] = rows(kernel, "tms_shipments")
    assert shipment.status == "out_for_delivery"
    assert order_status(kernel, oid) == "shipped"
    # the parcel went back to the depot after a failed attempt: newer, so it applies
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "in_transit", "occurred_at": at(50)})
    assert r.json()["result"] == "applied"
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "delivered", "occurred_at": at(45)})
    assert r.json()["result"] == "applied"  # delivery always counts, even if stamped earlier
    assert order_status(kernel, oid) == "delivered"
    kinds = [e.kind for e in order_timeline(kernel, oid)]
    assert (kinds.count("order.shipped"), kinds.count("order.delivered")) == (1, 1)


def test_delivered_first_ships_and_delivers(shipped):
    kernel, oid, no, carrier = shipped
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "delivered", "occurred_at": at(0)})
    assert r.json()["result"] == "applied"
    kinds = [e.kind for e in order_timeline(kernel, oid)]
    assert kinds[-2:] == ["order.shipped", "order.delivered"]
    # the picked_up that never came before arrives now: history only
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "picked_up", "occurred_at": at(-30)})
    assert r.json()["result"] == "recorded"
    staff = [e for e in order_timeline(kernel, oid) if e.kind == "shipment.picked_up"]
    assert [e.public for e in staff] == [False]
    assert "late event" in staff[0].message


def order_timeline(kernel: Any, order_id: int) -> list[Any]:
    with kernel.db.transaction(write=False) as conn:
        return kernel.order_views.timeline_entries(conn, order_id, public_only=False)  # type: ignore[no-any-return]


def test_a_carrier_clock_ahead_of_ours_does_not_block_later_events(shipped):
    kernel, _oid, no, carrier = shipped
    future = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    signed(carrier, "sandbox", {"tracking_no": no, "status": "picked_up", "occurred_at": future})
    now = datetime.now(UTC).isoformat()
    r = signed(carrier, "sandbox", {"tracking_no": no, "status": "in_transit", "occurred_at": now})
    assert r.json()["result"] == "applied"
    assert rows(kernel, "tms_shipments")[0].status == "in_transit"


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_that_cannot_be_stored_is_refused(mallcore, shipped, when):
    kernel, oid, no, carrier = shipped
    before = snapshot(kernel)
    for tracking_no in (no, "SBX000000000001"):  # a known and an unknown waybill
        r = signed(
            carrier, "sandbox", {"tracking_no": tracking_no, "status": "in_transit", "occurred_at": when}
        )
        assert (r.status_code, r.json()["code"]) == (422, "occurred_at_invalid"), r.text
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    [shipment] = rows(kernel, "tms_shipments")
    r = merchant.post(
        f"/tms/shipments/{shipment.id}/events", json={"status": "in_transit", "occurred_at": when}
    )
    assert (r.status_code, r.json()["code"]) == (422, "occurred_at_invalid"), r.text
    assert snapshot(kernel) == before
    assert order_status(kernel, oid) == "dispatched"


class FlakyDelivery(Center):
    """A center whose delivery bookkeeping hits a unique-key clash once (e.g. a racing writer)."""

    name = "flaky"
    failures = 1

    @hookimpl
    def order_deliver(self, ctx: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise IntegrityError("INSERT INTO flaky_ledger ...", {}, Exception("unique constraint"))


def test_an_event_that_failed_is_not_reported_as_a_duplicate(mallcore):
    kernel = shop_kernel(mallcore, extra=[FlakyDelivery])
    order = paid_order(mallcore, kernel, [("A", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    no = merchant.post(f"/orders/{order['id']}/dispatch").json()["shipments"][0]["tracking_no"]
    carrier = mallcore.client(kernel, None)
    event = {"tracking_no": no, "status": "delivered", "occurred_at": at(0), "event_id": "ev-1"}
    r = signed(carrier, "sandbox", event)
    # Nothing was recorded: the carrier must hear a failure it resends on (a 5xx).
    assert (r.status_code, r.json()["code"]) == (503, "retry_later"), r.text
    assert rows(kernel, "tms_events") == []
    assert order_status(kernel, order["id"]) == "dispatched"
    r = signed(carrier, "sandbox", event)
    assert (r.status_code, r.json()["result"]) == (200, "applied")
    assert order_status(kernel, order["id"]) == "delivered"


def test_the_sandbox_routes_are_off_unless_turned_on(mallcore):
    from mallcore.plugins.tms import TmsSettings

    assert TmsSettings().sandbox_routes is False
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "tms"], settings={"tms": {"sandbox_routes": False}}
    )
    mallcore.product(kernel, skus=[("A", 1000, 100)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post("/tms/sandbox/SBX00000001/advance", json={"status": "delivered"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
