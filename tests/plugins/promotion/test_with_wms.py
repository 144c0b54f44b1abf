"""With WMS: an order left unpaid past its hold is cancelled by the expiry job, and its coupon
and flash-sale units come back."""

from __future__ import annotations

from .support import Shop


def test_an_unpaid_order_closed_by_the_expiry_job_returns_its_coupon_and_flash_units(mallcore):
    shop = Shop(
        mallcore,
        centers=["catalog", "payment", "wms", "promotion"],
        settings={"wms": {"unpaid_hold_minutes": 0}},
    )
    assert (
        shop.admin.post(
            "/wms/warehouses", json={"code": "SH", "name": "Shanghai", "region": "310000"}
        ).status_code
        == 201
    )
    for sku in ("A", "B"):
        r = shop.admin.post("/wms/inbound", json={"warehouse": "SH", "sku": sku, "quantity": 10})
        assert r.status_code == 201, r.text
    sale = shop.campaign("flash_sale", {"price": 5000, "quantity": 1, "per_customer": 1}, skus=["A"])
    code = shop.coupon()
    order = shop.place([("A", 1), ("B", 1)], coupons=[code]).json()
    assert order["total"] == 5000 + 5000 - 1000
    assert shop.wallet() == {code: "locked"}
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 1
    assert shop.customer().get(f"/orders/{order['id']}").json()["status"] == "cancelled"
    assert shop.wallet() == {code: "available"}
    assert shop.merchant.get(f"/promotion/campaigns/{sale['id']}").json()["left"] == 1
    # the unit and the coupon serve the next order
    again = shop.place([("A", 1)], coupons=[code]).json()
    assert again["total"] == 5000 - 1000
