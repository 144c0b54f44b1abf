"""Eligibility, over-refund attempts, and every forbidden step refused with nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mallcore.kernel import Center, Rejected, hookimpl
from mallcore.plugins.refund import states as st

from .conftest import Shop, make_shop

WAYBILL = {"carrier": "sandbox", "tracking_no": "SF9999999", "phone": "13800000000"}
ADDRESS_IN = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}


def test_return_window_after_delivery(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    line = order["lines"][0]["id"]
    shop.later(days=8)
    r = shop.open(order, "return_refund", [(line, 1)])
    assert r.status_code == 422 and r.json()["code"] == "after_sale_window_expired"
    assert r.json()["window_days"] == 7
    # warranty repairs have their own, longer window
    assert shop.open(order, "repair", [(line, 1)], reason="quality").status_code == 201


def test_eligibility_by_order_status(shop: Shop) -> None:
    unpaid = shop.order([("TEE-M", 1)], pay=False)
    r = shop.open(unpaid, "refund_only", [(unpaid["lines"][0]["id"], 1)])
    assert r.status_code == 409 and r.json()["code"] == "order_not_eligible"
    paid = shop.order([("TEE-M", 1)])
    r = shop.open(paid, "return_refund", [(paid["lines"][0]["id"], 1)])
    assert r.status_code == 409 and r.json()["code"] == "order_not_delivered"
    r = shop.open(paid, "refund_only", [(paid["lines"][0]["id"], 1)], reason="made_up")
    assert (
        r.status_code == 422 and r.json()["code"] == "reason_unknown" and "no_reason" in r.json()["reasons"]
    )
    r = shop.open(paid, "refund_only", [(10**9, 1)])
    assert r.status_code == 422 and r.json()["code"] == "line_unknown"
    r = shop.merchant.post(
        "/after-sales",
        json={
            "order_id": paid["id"],
            "type": "refund_only",
            "lines": [{"line_id": 1, "quantity": 1}],
            "reason": "other",
        },
    )
    assert r.status_code == 403
    assert shop.admin.get("/after-sales").json() == []


def test_quantities_beyond_what_other_cases_hold_are_refused(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    line = order["lines"][0]["id"]
    r = shop.open(order, "return_refund", [(line, 3)])
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available"
    assert r.json()["available"] == 2
    first = shop.open(order, "return_refund", [(line, 2)]).json()
    r = shop.open(order, "refund_only", [(line, 1)])
    assert r.status_code == 409 and r.json()["available"] == 0
    # a rejected case gives its units back
    assert (
        shop.merchant.post(f"/after-sales/{first['id']}/reject", json={"reason": "used"}).status_code == 200
    )
    second = shop.open(order, "return_refund", [(line, 1)])
    assert second.status_code == 201
    third = shop.open(order, "exchange", [(line, 1)])
    assert third.status_code == 201
    assert shop.open(order, "repair", [(line, 1)]).status_code == 409


def test_refunded_units_cannot_be_refunded_again(shop: Shop) -> None:
    order = shop.order([("TEE-M", 1), ("MUG", 1)])
    tee = order["lines"][0]["id"]
    assert shop.open(order, "refund_only", [(tee, 1)]).json()["status"] == "refunded"
    r = shop.open(order, "refund_only", [(tee, 1)])
    assert r.status_code == 409
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == 7900 <= o["paid"]


def test_idempotent_open_and_step(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    line = order["lines"][0]["id"]
    body = {
        "order_id": order["id"],
        "type": "return_refund",
        "lines": [{"line_id": line, "quantity": 1}],
        "reason": "no_reason",
    }
    a = shop.alice.post("/after-sales", json=body, headers={"Idempotency-Key": "k1"})
    b = shop.alice.post("/after-sales", json=body, headers={"Idempotency-Key": "k1"})
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert b.headers.get("Idempotent-Replayed") == "true"
    assert len(shop.alice.get("/after-sales").json()) == 1
    case_id = a.json()["id"]
    x = shop.merchant.post(f"/after-sales/{case_id}/approve", headers={"Idempotency-Key": "k2"})
    y = shop.merchant.post(f"/after-sales/{case_id}/approve", headers={"Idempotency-Key": "k2"})
    assert x.status_code == y.status_code == 200 and x.json() == y.json()


# -- every forbidden step ---------------------------------------------------------------------

ACTIONS: dict[str, tuple[str, Callable[[Shop, int], Any]]] = {
    "approve": ("merchant", lambda s, c: s.merchant.post(f"/after-sales/{c}/approve")),
    "reject": ("merchant", lambda s, c: s.merchant.post(f"/after-sales/{c}/reject", json={"reason": "no"})),
    "cancel": ("customer", lambda s, c: s.alice.post(f"/after-sales/{c}/cancel")),
    "return-shipment": (
        "customer",
        lambda s, c: s.alice.post(f"/after-sales/{c}/return-shipment", json=WAYBILL),
    ),
    "pickup": (
        "customer",
        lambda s, c: s.alice.post(
            f"/after-sales/{c}/pickup",
            json={
                "window_start": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "window_end": (datetime.now(UTC) + timedelta(hours=4)).isoformat(),
            },
        ),
    ),
    "receive": (
        "warehouse",
        lambda s, c: s.warehouse.post(f"/after-sales/{c}/receive", json={"passed": True}),
    ),
    "repaired": ("warehouse", lambda s, c: s.warehouse.post(f"/after-sales/{c}/repaired")),
    "ship-back": (
        "warehouse",
        lambda s, c: s.warehouse.post(
            f"/after-sales/{c}/ship-back", json={"carrier": "sandbox", "tracking_no": "BACK0001"}
        ),
    ),
}

# What each action would make of a case in a state (None: the action is for another state).
TARGET: dict[str, Callable[[str, str], str | None]] = {
    "approve": lambda type_, status: "approved" if status != "inspected" else "refunded",
    "reject": lambda type_, status: "rejected",
    "cancel": lambda type_, status: "cancelled",
    "return-shipment": lambda type_, status: "return_shipped",
    "pickup": lambda type_, status: "pickup_requested",
    "receive": lambda type_, status: "received",
    "repaired": lambda type_, status: "repaired",
    "ship-back": lambda type_, status: "shipped_back",
}


def _reach(shop: Shop, type_: str, status: str) -> tuple[dict[str, Any], int]:
    """A fresh delivered order with one case of ``type_`` brought to ``status``."""
    order = shop.delivered_order([("TEE-M", 1)])
    line = order["lines"][0]["id"]
    case = shop.open(order, type_, [(line, 1)], reason="quality").json()
    cid = case["id"]
    path = {
        "requested": [],
        "rejected": ["reject"],
        "refunded": ["approve"] if type_ == "refund_only" else ["approve", "return-shipment", "receive"],
        "awaiting_return": ["approve"],
        "cancelled": ["cancel"],
        "return_shipped": ["approve", "return-shipment"],
        "pickup_requested": ["approve", "pickup"],
        "inspected": ["approve", "return-shipment", "receive"],
        "repaired": ["approve", "return-shipment", "receive", "repaired"],
        "shipped_back": ["approve", "return-shipment", "receive", "repaired", "ship-back"],
        "replacement_created": ["approve", "return-shipment", "receive"],
    }[status]
    for action in path:
        r = ACTIONS[action][1](shop, cid)
        assert r.status_code == 200, (action, r.text)
    assert shop.case(cid)["status"] == status
    return order, cid


CASES = [
    ("refund_only", "requested"),
    ("refund_only", "refunded"),
    ("refund_only", "rejected"),
    ("return_refund", "requested"),
    ("return_refund", "awaiting_return"),
    ("return_refund", "return_shipped"),
    ("return_refund", "pickup_requested"),
    ("return_refund", "refunded"),
    ("return_refund", "cancelled"),
    ("exchange", "replacement_created"),
    ("repair", "inspected"),
    ("repair", "repaired"),
    ("repair", "shipped_back"),
]


@pytest.mark.parametrize(("type_", "status"), CASES)
def test_forbidden_steps_are_refused_and_change_nothing(mallcore: Any, type_: str, status: str) -> None:
    shop = make_shop(mallcore)
    order, cid = _reach(shop, type_, status)
    refused = 0
    for action, (_, call) in ACTIONS.items():
        target = TARGET[action](type_, status)
        if status == "inspected" and action == "approve":
            continue  # a repair is not approved again once inspected: checked below
        allowed = target is not None and st.can(type_, status, target)
        if allowed:
            continue
        before_case = shop.case(cid)
        before_order = shop.admin.get(f"/orders/{order['id']}").json()
        before_timeline = shop.admin.get(f"/orders/{order['id']}/timeline").json()
        refund_calls = list(shop.carrier.refund_calls)
        r = call(shop, cid)
        assert r.status_code == 409, (action, r.status_code, r.text)
        assert r.json()["code"] == "invalid_transition", (action, r.json())
        assert shop.case(cid) == before_case, action
        assert shop.admin.get(f"/orders/{order['id']}").json() == before_order, action
        assert shop.admin.get(f"/orders/{order['id']}/timeline").json() == before_timeline, action
        assert shop.carrier.refund_calls == refund_calls, action
        refused += 1
    assert refused >= 3


def test_repair_cannot_be_refunded_by_approving_after_inspection(shop: Shop) -> None:
    order, cid = _reach(shop, "repair", "inspected")
    before = shop.case(cid)
    shop.carrier.refund_calls.clear()
    r = shop.merchant.post(f"/after-sales/{cid}/approve")
    # refused before any refund was even requested (no provider was called)
    assert shop.carrier.refund_calls == []
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    assert shop.case(cid) == before
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_transitions_table_is_consistent() -> None:
    for status, edges in st.TRANSITIONS.items():
        for target, types in edges.items():
            assert types <= st.ALL, (status, target)
            assert target in st.TRANSITIONS
    assert {st.S.REFUNDED, st.S.REJECTED, st.S.CLOSED, st.S.CANCELLED} <= st.TERMINAL
    assert st.RELEASED <= st.TERMINAL
    for status in st.CaseStatus:
        assert status in st.LABELS


class HoldingRisk(Center):
    """A risk center holding every approval of cases on orders of customer bob."""

    name = "holdrisk"

    @hookimpl
    def order_after_sale(self, ctx: Any, case: Any) -> None:
        if case.status == "approved" and case.customer == "bob":
            raise Rejected("refund abuse suspected; held for review", code="after_sale_held")


def test_a_center_can_hold_a_step(mallcore: Any) -> None:
    shop = make_shop(mallcore)
    shop.kernel.pm.register(HoldingRisk(), name="holdrisk")
    order = shop.delivered_order([("TEE-M", 1)], client=shop.bob)
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)], client=shop.bob).json()
    before = shop.case(case["id"])
    r = shop.merchant.post(f"/after-sales/{case['id']}/approve")
    assert r.status_code == 422 and r.json()["code"] == "after_sale_held"
    assert shop.case(case["id"]) == before


def test_cancelling_the_order_closes_its_open_requests(mallcore: Any) -> None:
    shop = make_shop(mallcore, settings={"auto_approve_unshipped": False})
    order = shop.order([("TEE-M", 2)])
    case = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)]).json()
    assert case["status"] == "requested"
    r = shop.alice.post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["refunded"] == r.json()["paid"]
    closed = shop.case(case["id"])
    assert closed["status"] == "cancelled" and closed["due_at"] is None


def test_reasons_in_the_callers_language(shop: Shop) -> None:
    zh = (
        shop.kit.client(shop.kernel, None).get("/refund/reasons", headers={"Accept-Language": "zh-CN"}).json()
    )
    assert {"code": "no_reason", "text": "七天无理由退换货", "merchant_fault": False} in zh
    en = shop.alice.get("/refund/reasons").json()
    assert any(r["code"] == "quality" and r["merchant_fault"] for r in en)


def test_units_refunded_before_the_return_cannot_be_claimed_again(mallcore: Any) -> None:
    # Refund before return pays for every unit of the case; only one comes back. The other
    # unit is refunded already: no new case may claim it (it could never be approved, and
    # an exchange would ship a free replacement for goods already paid back).
    shop = make_shop(mallcore, settings={"refund_before_return": True})
    order = shop.delivered_order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]["id"]
    case = shop.open(order, "return_refund", [(tee, 2)]).json()
    approved = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert approved["refund_status"] == "refunded" and approved["refund_amount"] == 2 * 7900
    done = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive", json={"inspections": [{"line_id": tee, "quantity": 1}]}
    ).json()
    assert done["status"] == "refunded"
    for type_ in ("refund_only", "return_refund", "exchange", "repair"):
        r = shop.open(order, type_, [(tee, 1)], reason="quality")
        assert r.status_code == 409, (type_, r.text)
        assert r.json()["code"] == "quantity_exceeds_available" and r.json()["available"] == 0
    assert len(shop.admin.get("/after-sales").json()) == 1
    # the line nobody touched is still open to after-sale
    assert shop.open(order, "return_refund", [(order["lines"][1]["id"], 1)]).status_code == 201


def test_an_empty_inspection_list_is_refused_and_changes_nothing(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    before = shop.case(case["id"])
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"inspections": []})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request", r.text
    assert shop.case(case["id"]) == before


def test_a_pickup_needs_a_real_address_and_a_window_in_the_coming_days(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    before = shop.case(case["id"])
    start = shop.center.clock() + timedelta(hours=2)
    window = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()}
    for address in (
        {"phone": ["x"]},
        {"name": "Alice"},
        {**ADDRESS_IN, "floor": 3},
        {**ADDRESS_IN, "phone": 1},
    ):
        r = shop.alice.post(f"/after-sales/{case['id']}/pickup", json={**window, "address": address})
        assert r.status_code == 400 and r.json()["code"] == "invalid_request", (address, r.text)
    for year in (3000, 9999):
        far = datetime(year, 12, 31, 10, tzinfo=UTC)
        body = {"window_start": far.isoformat(), "window_end": (far + timedelta(hours=2)).isoformat()}
        r = shop.alice.post(f"/after-sales/{case['id']}/pickup", json=body)
        assert r.status_code == 422 and r.json()["code"] == "pickup_window_invalid", (year, r.text)
    assert shop.case(case["id"]) == before
    other = {**ADDRESS_IN, "detail": "8 Pickup Lane"}
    r = shop.alice.post(f"/after-sales/{case['id']}/pickup", json={**window, "address": other})
    assert r.status_code == 200, r.text
    assert r.json()["pickup"]["address"] == other
