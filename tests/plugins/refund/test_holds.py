"""A reacting center steers a new request: it holds it from every automatic decision
until it releases or rejects it, or fast-tracks a refund-only case (极速退款)."""

from __future__ import annotations

from typing import Any

import pytest

from mallcore.kernel import SYSTEM, Center, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase
from mallcore.plugins.refund import sla

from .conftest import Shop, make_shop


class Steer(Center):
    """Plays risk's (hold) and membership's (fast track) part at ``requested``."""

    name = "steer"

    def __init__(self) -> None:
        super().__init__()
        self.hold: str | None = None
        self.fast_track: str | None = None

    @hookimpl
    def order_after_sale(self, ctx: Any, case: AfterSaleCase) -> None:
        if case.status == "requested":
            case.hold, case.fast_track = self.hold, self.fast_track

    def end(self, shop: Shop, case: dict[str, Any], outcome: str, note: str = "checked by hand") -> None:
        with shop.kernel.orders.stage("steer_review", case["order_id"], SYSTEM) as ctx:
            shop.kernel.hook.after_sale_release(
                ctx=ctx, case_id=case["id"], actor="risk-1", note=note, outcome=outcome
            )


@pytest.fixture
def steer() -> Steer:
    return Steer()


@pytest.fixture
def shop(mallcore: Any, steer: Steer) -> Shop:
    return make_shop(mallcore, extra=[steer])


def refund_only(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    r = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)])
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def kinds(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["timeline"]]


def test_a_held_request_waits_past_the_merchants_deadline_until_released(shop: Shop, steer: Steer) -> None:
    steer.hold = "risk_review"
    order = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, order)
    shop.later(days=3)
    assert sla.run(shop.center) == 0
    held = shop.case(case["id"], shop.merchant)
    assert (held["status"], held["hold"], held["timer"]) == ("requested", "risk_review", "approve")
    assert "after_sale.held" in kinds(held)
    mine = shop.case(case["id"], shop.alice)
    # the customer sees a request waiting for the merchant: no hold, no reason, no deadline
    assert (mine["status"], mine["hold"], mine["due_at"]) == ("requested", None, None)
    assert "after_sale.held" not in kinds(mine) and "risk_review" not in str(mine)
    listed = shop.alice.get("/after-sales").json()
    assert [(c["id"], c["hold"], c["due_at"]) for c in listed] == [(case["id"], None, None)]
    assert shop.merchant.get("/after-sales").json()[0]["hold"] == "risk_review"

    steer.end(shop, case, "release")
    released = shop.case(case["id"], shop.merchant)
    assert (released["status"], released["hold"]) == ("requested", None)
    lifted = next(e for e in released["timeline"] if e["kind"] == "after_sale.hold_released")
    assert (lifted["public"], lifted["actor"]) == (False, "risk-1") and "checked by hand" in lifted["message"]
    # the deadline passed while it was held: the next SLA run takes the default outcome
    assert sla.run(shop.center) == 1
    done = shop.case(case["id"], shop.alice)
    assert done["status"] == "refunded" and done["refund_amount"] == 7900


def test_a_held_refund_before_shipment_is_not_approved_at_once_but_is_on_release(
    shop: Shop, steer: Steer
) -> None:
    steer.hold = "risk_review"
    order = shop.order([("TEE-M", 2)])  # paid, not shipped
    case = refund_only(shop, order)
    assert case["status"] == "requested"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0
    steer.end(shop, case, "release")
    assert shop.case(case["id"])["status"] == "refunded"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] > 0


def test_a_fast_tracked_refund_only_case_is_approved_at_once_in_public(shop: Shop, steer: Steer) -> None:
    steer.fast_track = "gold member, refund-only below 50.00"
    order = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, order)
    assert case["status"] == "refunded"
    mine = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    approved = next(e for e in mine["timeline"] if e["kind"] == "after_sale.approved")
    assert (approved["message"], approved["actor"]) == ("极速退款:系统已自动同意", "system")
    english = shop.case(case["id"], shop.alice)
    assert "Express refund approved" in [e["message"] for e in english["timeline"]]
    # why it was fast-tracked is for staff
    assert "gold member" not in str(english)
    assert any("gold member" in e["message"] for e in shop.case(case["id"], shop.merchant)["timeline"])


def test_a_fast_track_is_for_refund_only_cases(shop: Shop, steer: Steer) -> None:
    steer.fast_track = "gold member"
    order = shop.delivered_order([("TEE-M", 1)])
    r = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)])
    assert r.status_code == 201 and r.json()["status"] == "requested"


def test_a_hold_wins_over_a_fast_track_which_is_taken_once_released(shop: Shop, steer: Steer) -> None:
    steer.hold, steer.fast_track = "risk_review", "gold member"
    order = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, order)
    assert case["status"] == "requested"
    steer.end(shop, case, "release")
    released = shop.case(case["id"], shop.alice)
    assert released["status"] == "refunded" and "Express refund approved" in str(released["timeline"])


def test_the_holding_center_rejects_the_request_and_the_customer_learns_not_why(
    shop: Shop, steer: Steer
) -> None:
    steer.hold = "risk_review"
    order = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, order)
    steer.end(shop, case, "reject", note="refund abuse ring")
    mine = shop.case(case["id"], shop.alice)
    assert (mine["status"], mine["timer"]) == ("rejected", None)
    assert "Your request did not pass review and was not approved" in [e["message"] for e in mine["timeline"]]
    assert "abuse" not in str(mine)
    staff = shop.case(case["id"], shop.merchant)
    assert staff["hold"] is None and any("refund abuse ring" in e["message"] for e in staff["timeline"])
    shop.later(days=3)
    assert sla.run(shop.center) == 0
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_the_merchant_may_decide_a_held_case_by_hand_which_ends_the_hold(shop: Shop, steer: Steer) -> None:
    steer.hold = "risk_review"
    order = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, order)
    r = shop.merchant.post(f"/after-sales/{case['id']}/reject", json={"reason": "goods received intact"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["hold"]) == ("rejected", None)
    assert "after_sale.hold_ended" in kinds(shop.case(case["id"], shop.merchant))
    # the review's answer comes late: noted for staff, nothing else changes
    steer.end(shop, case, "release")
    late = shop.case(case["id"], shop.merchant)
    assert late["status"] == "rejected" and "after_sale.hold_release_late" in kinds(late)


def test_ending_a_hold_on_a_case_of_another_order_or_with_an_unknown_outcome_changes_nothing(
    shop: Shop, steer: Steer
) -> None:
    steer.hold = "risk_review"
    first = shop.delivered_order([("TEE-M", 1)])
    case = refund_only(shop, first)
    other = shop.order([("MUG", 1)])
    with pytest.raises(Exception) as missing:
        steer.end(shop, {"id": case["id"], "order_id": other["id"]}, "release")
    assert getattr(missing.value, "code", None) == "case_not_found"
    with pytest.raises(Exception) as unknown:
        steer.end(shop, case, "approve")
    assert getattr(unknown.value, "code", None) == "invalid_outcome"
    assert shop.case(case["id"], shop.merchant)["hold"] == "risk_review"
