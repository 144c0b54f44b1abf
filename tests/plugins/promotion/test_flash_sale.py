"""Flash sales: a fixed price for a limited number of promotional units, per-customer limits,
list price (or a refusal) beyond them, units back on cancellation; counters equal their rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .support import Shop, promo


def flash(shop: Shop, group: str | None = None, **rules: Any) -> dict[str, Any]:
    spec = {"price": 6000, "quantity": 3, "per_customer": 2, **rules}
    return shop.campaign("flash_sale", spec, name="秒杀", skus=["A"], stacking_group=group)


def counters(shop: Shop, campaign_id: int) -> tuple[int, dict[str, int], dict[str, int]]:
    """The sale's counter, each customer's count, and the units their live usage rows hold."""
    tables = shop.kernel.metadatas["promotion"].tables
    c, b, u = tables["promotion_campaigns"].c, tables["promotion_buyers"].c, tables["promotion_usages"].c
    with shop.kernel.db.transaction(write=False) as conn:
        sold = conn.execute(sa.select(c.sold).where(c.id == campaign_id)).scalar_one()
        buyers = dict(conn.execute(sa.select(b.customer, b.units).where(b.campaign_id == campaign_id)).all())
        rows = dict(
            conn.execute(
                sa.select(u.customer, sa.func.sum(u.units))
                .where(u.campaign_id == campaign_id, u.status.in_(("held", "used")))
                .group_by(u.customer)
            ).all()
        )
    return sold, {k: v for k, v in buyers.items() if v}, {k: int(v) for k, v in rows.items()}


def test_flash_units_sell_at_the_flash_price_and_the_rest_at_list_price(mallcore):
    shop = Shop(mallcore)
    sale = flash(shop)
    order = shop.place([("A", 3)]).json()  # limit 2 per customer: 2 at 60.00, 1 at 100.00
    assert order["total"] == 2 * 6000 + 10000
    ((code, amount, reason),) = promo(order)
    assert (code, amount) == (f"campaign:{sale['id']}", -8000)
    assert reason == "秒杀 (秒杀价 60.00): flash price: A 2 \u00d7 60.00 (list 100.00)"
    assert order["adjustments"][0]["line_id"] == order["lines"][0]["id"]
    again = shop.place([("A", 1)]).json()  # alice has her two
    assert again["total"] == 10000
    bob = shop.place([("A", 2)], customer="bob").json()  # one unit left in the sale
    assert bob["total"] == 6000 + 10000
    sold, buyers, rows = counters(shop, sale["id"])
    assert (sold, buyers, rows) == (3, {"alice": 2, "bob": 1}, {"alice": 2, "bob": 1})
    view = shop.merchant.get(f"/promotion/campaigns/{sale['id']}").json()
    assert (view["sold"], view["left"]) == (3, 0)


def test_a_refusing_flash_sale_refuses_the_order_instead_of_selling_at_list_price(mallcore):
    shop = Shop(mallcore)
    sale = flash(shop, beyond="refuse", quantity=2, per_customer=1)
    r = shop.place([("A", 2)])
    assert (r.status_code, r.json()["code"]) == (422, "flash_sale_limit_reached")
    assert shop.place([("A", 1)]).status_code == 201
    assert shop.place([("A", 1)], customer="bob").status_code == 201
    r = shop.place([("A", 1)], customer="carol")
    assert (r.status_code, r.json()["code"]) == (409, "flash_sale_sold_out")
    assert counters(shop, sale["id"]) == (2, {"alice": 1, "bob": 1}, {"alice": 1, "bob": 1})


def test_cancelling_gives_the_units_back_to_the_sale_and_the_customer(mallcore):
    shop = Shop(mallcore)
    sale = flash(shop)
    order = shop.place([("A", 2)]).json()
    assert counters(shop, sale["id"])[0] == 2
    assert shop.customer().post(f"/orders/{order['id']}/cancel", json={}).status_code == 200
    assert counters(shop, sale["id"]) == (0, {}, {})
    assert shop.place([("A", 2)]).json()["total"] == 12000


def test_a_preview_reads_the_counters_and_takes_nothing(mallcore):
    shop = Shop(mallcore)
    sale = flash(shop)
    preview = shop.preview([("A", 3)]).json()
    assert preview["total"] == 2 * 6000 + 10000
    assert counters(shop, sale["id"]) == (0, {}, {})
    order = shop.place([("A", 3)]).json()
    assert order["total"] == preview["total"]


def test_a_flash_sale_losing_its_stacking_group_gives_its_units_back(mallcore):
    shop = Shop(mallcore)
    sale = flash(shop, "exclusive", price=9900)
    shop.campaign("percent_off", {"percent": 50}, stacking_group="exclusive")
    order = shop.place([("A", 1)]).json()
    assert order["discount"] == 5000  # half price beats 1.00 off
    assert counters(shop, sale["id"]) == (0, {}, {})
