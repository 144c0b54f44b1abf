"""极速退款: a top-level member's refund-only case below the level's amount is fast-tracked."""

from __future__ import annotations

from mallcore.kernel import SYSTEM, Center, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine

from .kit import Shop


class Desk(Center):
    """Runs after membership and keeps what the case carried at ``requested``."""

    name = "desk"
    after = ("membership",)

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str | None] = []

    @hookimpl
    def order_after_sale(self, ctx, case):
        self.seen.append(case.fast_track)


def ask(shop, order, *, type="refund_only", units=1, hold=None):
    line = order["lines"][0]
    case = AfterSaleCase(
        id=1,
        order_id=order["id"],
        type=type,
        status="requested",
        previous=None,
        customer=order["customer"],
        shop="s1",
        lines=[CaseLine(line_id=line["id"], sku=line["sku"], quantity=units)],
        hold=hold,
    )
    with shop.kernel.orders.stage("after_sale", order["id"], SYSTEM) as ctx:
        shop.kernel.hook.order_after_sale(ctx=ctx, case=case)
    return shop.kernel.centers["desk"].seen[-1]


def test_a_top_level_members_small_refund_only_case_is_fast_tracked_and_no_other(mallcore):
    shop = Shop(mallcore, extra=(Desk,))  # platinum: refund-only below 500.00 at once
    shop.set_level("alice", "platinum")
    small = shop.placed(lines=[("TEE", 6)])  # 92.00 a unit after the member price
    shop.pay(small)
    fast = ask(shop, small, units=2)
    assert fast is not None and "极速退款" in fast and "¥500.00" in fast
    assert ask(shop, small, units=6) is None  # 552.00 is not below 500.00
    assert ask(shop, small, type="return_refund") is None
    assert ask(shop, small, hold="risk_review") is None  # a hold wins
    bob = shop.placed("bob")
    shop.pay(bob, "bob")
    assert ask(shop, bob) is None  # a first-level member


def test_a_platinum_members_refund_only_request_below_the_amount_is_approved_at_once(mallcore):
    shop = Shop(mallcore, centers=("refund",))
    shop.set_level("alice", "platinum")
    order = shop.placed()
    shop.pay(order)
    shop.complete(order)
    line = order["lines"][0]
    r = shop.customer().post(
        "/after-sales",
        json={"order_id": order["id"], "type": "refund_only", "reason": "quality",
              "lines": [{"line_id": line["id"], "quantity": 1}]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "refunded"
