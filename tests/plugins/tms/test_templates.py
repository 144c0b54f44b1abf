"""Template management: merchants of the shop and admins write, shop staff read."""

from __future__ import annotations

from types import SimpleNamespace

from mallcore.kernel.demo import seed

from .support import PIECE_TEMPLATE, SHOP, WEIGHT_TEMPLATE, order_body, paid_order, shop_kernel, snapshot


def test_merchants_manage_their_own_shops_templates(mallcore):
    kernel = shop_kernel(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    other = mallcore.client(kernel, "merchant", "m2", shop="s2")
    alice = mallcore.client(kernel, "customer", "alice")
    warehouse = mallcore.client(kernel, "warehouse", "w1", shop=SHOP)
    body = {"shop": SHOP, **WEIGHT_TEMPLATE, "default": True, "skus": ["A", "A"]}

    before = snapshot(kernel)
    r = other.post("/tms/templates", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "shop_forbidden")
    for client in (alice, warehouse):
        r = client.post("/tms/templates", json=body)
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
    # the role is checked before the body is read: a customer learns nothing about their input
    r = alice.post("/tms/templates", json={"shop": SHOP, "name": 7})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert snapshot(kernel) == before

    r = merchant.post("/tms/templates", json=body)
    assert r.status_code == 201, r.text
    tpl = r.json()
    assert (tpl["shop"], tpl["default"], tpl["skus"], tpl["origin"], tpl["split"]) == (
        SHOP,
        True,
        ["A"],
        None,
        "once",
    )
    assert tpl["rules"][0]["regions"] == ["33"]
    # units left out are filled in as the mode means them: 1 kg by weight
    assert (tpl["rules"][0]["first"], tpl["rules"][0]["additional"]) == (1000, 1000)

    assert [t["id"] for t in warehouse.get("/tms/templates").json()] == [tpl["id"]]
    assert other.get("/tms/templates").json() == []
    assert other.get(f"/tms/templates/{tpl['id']}").status_code == 404
    assert alice.get("/tms/templates").status_code == 403
    assert other.put(f"/tms/templates/{tpl['id']}", json=WEIGHT_TEMPLATE).status_code == 404
    assert other.delete(f"/tms/templates/{tpl['id']}").status_code == 404
    admin = mallcore.client(kernel, "admin", "root")
    assert [t["id"] for t in admin.get("/tms/templates", params={"shop": SHOP}).json()] == [tpl["id"]]


def test_bindings_are_unambiguous(mallcore):
    kernel = shop_kernel(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    first = merchant.post(
        "/tms/templates", json={"shop": SHOP, **WEIGHT_TEMPLATE, "default": True, "skus": ["C"]}
    )
    assert first.status_code == 201
    before = snapshot(kernel)
    r = merchant.post("/tms/templates", json={"shop": SHOP, **PIECE_TEMPLATE, "default": True})
    assert (r.status_code, r.json()["code"], r.json()["default"]) == (409, "template_binding_taken", True)
    r = merchant.post("/tms/templates", json={"shop": SHOP, **PIECE_TEMPLATE, "skus": ["B", "C"]})
    assert (r.status_code, r.json()["skus"]) == (409, ["C"])
    r = merchant.post("/tms/templates", json={"shop": SHOP, **PIECE_TEMPLATE, "name": "W"})
    assert (r.status_code, r.json()["code"]) == (409, "template_name_taken")
    assert snapshot(kernel) == before
    # the same SKU for another origin warehouse is another binding
    r = merchant.post("/tms/templates", json={"shop": SHOP, **PIECE_TEMPLATE, "skus": ["C"], "origin": "BJ"})
    assert r.status_code == 201, r.text
    assert r.json()["origin"] == "BJ"


def test_bad_templates_are_refused(mallcore):
    kernel = shop_kernel(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    before = snapshot(kernel)
    bad = [
        ({**WEIGHT_TEMPLATE, "free": [{"regions": ["33"]}]}, "free_rule_invalid"),
        ({**WEIGHT_TEMPLATE, "mode": "volume"}, None),
        ({**WEIGHT_TEMPLATE, "default_rule": {"first_fee": -1}}, None),
        ({**WEIGHT_TEMPLATE, "default_rule": {"first_fee": 1, "first": 0}}, None),
        ({**WEIGHT_TEMPLATE, "rules": [{"regions": [], "first_fee": 1}]}, None),
        ({**WEIGHT_TEMPLATE, "not_delivered": ["31 00"]}, None),
        ({**WEIGHT_TEMPLATE, "surprise": 1}, None),
    ]
    for body, code in bad:
        r = merchant.post("/tms/templates", json={"shop": SHOP, **body})
        assert 400 <= r.status_code < 500, body
        if code:
            assert r.json()["code"] == code
    # a shop that does not exist (a typo by an admin) gets no template
    admin = mallcore.client(kernel, "admin", "root")
    r = admin.post("/tms/templates", json={"shop": "nosuchshop", **WEIGHT_TEMPLATE})
    assert (r.status_code, r.json()["code"]) == (422, "shop_unknown"), r.text
    assert snapshot(kernel) == before


def test_replace_and_delete(mallcore):
    kernel = shop_kernel(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    alice = mallcore.client(kernel, "customer", "alice")
    tpl = merchant.post("/tms/templates", json={"shop": SHOP, **PIECE_TEMPLATE, "default": True}).json()
    assert alice.post("/orders/preview", json=order_body([("A", 2)])).json()["shipping"] == 1500
    r = merchant.put(f"/tms/templates/{tpl['id']}", json={**PIECE_TEMPLATE, "skus": ["B"]})
    assert r.status_code == 200, r.text
    assert (r.json()["default"], r.json()["skus"]) == (False, ["B"])
    # A is no longer priced by any template; B is
    assert alice.post("/orders/preview", json=order_body([("A", 2)])).json()["shipping"] == 0
    assert alice.post("/orders/preview", json=order_body([("B", 1)])).json()["shipping"] == 1000
    r = merchant.put(f"/tms/templates/{tpl['id']}", json={**PIECE_TEMPLATE, "skus": ["B"], "active": False})
    assert alice.post("/orders/preview", json=order_body([("B", 1)])).json()["shipping"] == 0
    assert merchant.delete(f"/tms/templates/{tpl['id']}").status_code == 204
    assert merchant.get(f"/tms/templates/{tpl['id']}").status_code == 404
    assert merchant.get("/tms/templates").json() == []


def test_order_view_costs_at_most_two_queries(mallcore):
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    center = kernel.centers["tms"]

    def count(status: str) -> tuple[int, int]:
        view = SimpleNamespace(shipments=[], extra={})
        with kernel.db.transaction(write=False) as conn:
            loaded = kernel.orders.load(conn, order["id"])
            loaded.status = status
            with kernel.db.count_statements() as counted:
                center.order_view(kernel=kernel, conn=conn, order=loaded, view=view)
        return counted.count, len(view.shipments)

    assert count("paid") == (0, 0)  # nothing can have shipped yet
    merchant.post(f"/orders/{order['id']}/dispatch")
    no = merchant.get(f"/orders/{order['id']}").json()["shipments"][0]["tracking_no"]
    for _ in range(3):
        merchant.post(f"/tms/sandbox/{no}/advance")
    assert count("shipped") == (2, 1)


def test_demo_adds_a_template_once(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "tms"])
    notes = seed(kernel)
    assert any(n.strip().startswith("tms: freight template") for n in notes)
    secret = kernel.centers["tms"].carriers["sandbox"].secret
    assert any(secret in n and "derived from the kernel's webhooks key" in n for n in notes)
    seed(kernel)
    admin = mallcore.client(kernel, "admin", "root")
    [tpl] = admin.get("/tms/templates", params={"shop": "demo"}).json()
    assert (tpl["default"], tpl["mode"], tpl["not_delivered"]) == (True, "weight", ["71", "81", "82"])
    alice = mallcore.client(kernel, "customer", "alice")

    def preview(sku: str, quantity: int, region: str) -> dict:
        body = {
            "shop": "demo",
            "lines": [{"sku": sku, "quantity": quantity}],
            "address": {"name": "A", "phone": "1", "region": region, "detail": "x"},
        }
        return alice.post("/orders/preview", json=body).json()  # type: ignore[no-any-return]

    assert preview("MUG-350", 1, "310000")["shipping"] == 600  # 400 g to Shanghai: ¥6
    assert preview("MUG-350", 1, "110000")["shipping"] == 800  # to Beijing: ¥8
    assert preview("MUG-350", 3, "110000")["shipping"] == 0  # ¥117 ≥ ¥99
    assert preview("MUG-350", 3, "650100")["shipping"] == 3000  # Xinjiang: ¥20 + 1 x ¥10, under ¥299
    assert preview("MUG-350", 1, "810000")["code"] == "region_not_delivered"
