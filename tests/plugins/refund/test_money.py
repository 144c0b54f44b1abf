"""How much a case refunds: the kernel's allocation, the freight policy, discounts shared out."""

from __future__ import annotations

from typing import Any

from mallcore.kernel import Center, Phase, hookimpl

from .conftest import Shop, StandInCarrier, make_shop


class FlatFreight(Center):
    """¥10 freight and a ¥5 order discount on every order, shared over lines by the kernel."""

    name = "flatfreight"
    after = ("catalog",)

    @hookimpl
    def order_price(self, ctx: Any) -> None:
        ctx.adjust(self.name, "freight", 1000, phase=Phase.FREIGHT, code="freight")
        ctx.adjust(self.name, "shop discount", -500, phase=Phase.PROMOTION)


def _shop(mallcore: Any, **settings: Any) -> Shop:
    carrier = StandInCarrier()
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "refund"], extra=[carrier, FlatFreight], settings={"refund": settings}
    )
    mallcore.product(kernel, shop="s1", skus=[("TEE-M", 7900), ("MUG", 3900)])
    return Shop(
        kit=mallcore,
        kernel=kernel,
        carrier=carrier,
        alice=mallcore.client(kernel, "customer", "alice"),
        bob=mallcore.client(kernel, "customer", "bob"),
        merchant=mallcore.client(kernel, "merchant", "m1", shop="s1"),
        warehouse=mallcore.client(kernel, "warehouse", "w1", shop="s1"),
        admin=mallcore.client(kernel, "admin", "root"),
    )


def _return(shop: Shop, order: dict[str, Any], line: dict[str, Any], qty: int, reason: str) -> dict[str, Any]:
    case = shop.open(order, "return_refund", [(line["id"], qty)], reason=reason).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": f"SF{case['id']:07d}", "phone": "13800000000"},
    )
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.json()["status"] == "refunded", r.text
    return r.json()  # type: ignore[no-any-return]


def test_refund_before_shipment_includes_the_lines_freight(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]
    assert order["shipping"] == 1000 and tee["shipping"] > 0 and tee["discount"] != 0
    case = shop.open(order, "refund_only", [(tee["id"], 2)], reason="not_wanted").json()
    # goods after the shared discount, plus the line's share of freight
    assert case["refund_amount"] == tee["total"]
    rest = shop.order([("MUG", 1)])
    assert (
        shop.open(rest, "refund_only", [(rest["lines"][0]["id"], 1)]).json()["refund_amount"] == rest["total"]
    )
    assert shop.alice.get(f"/orders/{rest['id']}").json()["status"] == "closed"


def test_freight_follows_the_reason_after_delivery(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]
    goods_per_unit = (tee["total"] - tee["shipping"]) // 2
    # changed my mind: goods only, freight stays with the shop
    first = _return(shop, order, tee, 1, "no_reason")
    assert first["refund_amount"] == goods_per_unit
    # wrong item sent: the merchant's fault, freight refunded in proportion
    second = _return(shop, order, tee, 1, "wrong_item")
    goods_left = tee["total"] - tee["shipping"] - goods_per_unit
    assert second["refund_amount"] == goods_left + tee["shipping"] // 2
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == first["refund_amount"] + second["refund_amount"] <= o["paid"]


def test_refundable_amount_is_shown_before_anything_moves(mallcore: Any) -> None:
    shop = _shop(mallcore, shipping="remaining")
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    mug = order["lines"][1]
    case = shop.open(order, "return_refund", [(mug["id"], 1)]).json()
    assert case["refundable_amount"] == mug["total"]
    assert case["refund_amount"] == 0
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_amounts_read_in_the_currency_of_the_order(mallcore: Any) -> None:
    # JPY has no minor unit: 7900 is JP¥7900, never "JP¥79.00".
    shop = make_shop(mallcore, config={"orders": {"currency": "JPY"}})
    order = shop.order([("TEE-M", 1)])
    assert order["currency"] == "JPY"
    case = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)], reason="not_wanted").json()
    assert case["status"] == "refunded"
    messages = [e["message"] for e in case["timeline"]]
    assert any("JP¥7900" in m for m in messages), messages
    assert not any("79.00" in m for m in messages)
    page = shop.kit.client(shop.kernel, None).get(
        shop.alice.get(f"/orders/{order['id']}").json()["tracking_url"]
    )
    assert page.status_code == 200 and "JP¥7900" in page.text and "79.00" not in page.text
