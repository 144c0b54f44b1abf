"""The fee center, tested the way an integrator tests a center: with mallcore.testing."""

from mallcore_fee import FeeCenter


def place(client, sku="TEA", quantity=1, shop="s1"):
    return client.post("/orders", json={"shop": shop, "lines": [{"sku": sku, "quantity": quantity}]})


def test_the_fee_is_added_explained_and_recorded(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "fee"], settings={"fee": {"amount": 150, "reason": "packing"}}
    )
    mallcore.product(kernel, skus=[("TEA", 2500)])
    order = place(mallcore.client(kernel, "customer", "alice"), quantity=2).json()
    assert (order["subtotal"], order["fees"], order["total"]) == (5000, 150, 5150)
    assert [(a["source"], a["reason"], a["amount"], a["phase"]) for a in order["adjustments"]] == [
        ("fee", "packing", 150, "fee")
    ]
    charges = mallcore.client(kernel, "merchant", "m1", shop="s1").get("/fee/charges").json()
    assert charges == [{"order_id": order["id"], "shop": "s1", "amount": 150}]


def test_the_fee_applies_only_to_the_configured_shops(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "fee"], settings={"fee": {"shops": ["s2"]}})
    mallcore.product(kernel, shop="s1", skus=[("TEA", 2500)])
    mallcore.product(kernel, shop="s2", skus=[("MUG", 900)])
    alice = mallcore.client(kernel, "customer", "alice")
    assert place(alice).json()["fees"] == 0
    assert place(alice, "MUG", shop="s2").json()["fees"] == 100
    # a merchant sees only their shop's charges
    assert mallcore.client(kernel, "merchant", "m1", shop="s1").get("/fee/charges").json() == []
    assert mallcore.client(kernel, "customer", "alice").get("/fee/charges").status_code == 403


def test_a_temporary_registration_works_without_the_entry_point(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment"], extra=[FeeCenter], settings={"fee": {"amount": 7}}
    )
    mallcore.product(kernel, skus=[("TEA", 100)])
    assert place(mallcore.client(kernel, "customer", "bob")).json()["total"] == 107


def test_a_failed_order_leaves_no_charge_behind(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "fee"])
    mallcore.product(kernel, skus=[("TEA", 100)])
    assert place(mallcore.client(kernel, "customer", "bob"), sku="NOPE").status_code == 422
    assert mallcore.client(kernel, "admin", "root").get("/fee/charges").json() == []


def test_platform_merchants_and_admins_see_every_shops_charges_and_shop_merchants_their_own(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "fee"])
    mallcore.product(kernel, shop="s1", skus=[("TEA", 2500)])
    mallcore.product(kernel, shop="s2", skus=[("MUG", 900)])
    alice = mallcore.client(kernel, "customer", "alice")
    tea, mug = place(alice).json(), place(alice, "MUG", shop="s2").json()

    def seen(roles, subject, shop=None):
        listed = mallcore.client(kernel, roles, subject, shop=shop).get("/fee/charges").json()
        return [(charge["order_id"], charge["shop"]) for charge in listed]

    everything = [(tea["id"], "s1"), (mug["id"], "s2")]
    assert everything == seen("merchant", "platform-merchant")
    assert everything == seen("admin", "root")
    assert [(tea["id"], "s1")] == seen("merchant", "m1", "s1")
    assert [(mug["id"], "s2")] == seen("merchant", "m2", "s2")
    for roles in ("customer", "warehouse", "finance"):
        r = mallcore.client(kernel, roles, "someone").get("/fee/charges")
        assert (r.status_code, r.json()["code"]) == (403, "role_required"), roles


def test_the_fee_page_in_the_staff_console(mallcore):
    import re

    from litestar.testing import TestClient

    kernel = mallcore.kernel(
        centers=["catalog", "payment", "console", "fee"], settings={"fee": {"amount": 150}}
    )
    mallcore.product(kernel, skus=[("TEA", 2500)])
    order = place(mallcore.client(kernel, "customer", "alice")).json()
    browser = TestClient(mallcore.app(kernel))
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', browser.get("/console/sign-in").text).group(1)
    token = mallcore.token(kernel, "merchant", "m1", "s1")
    browser.post("/console/sign-in", data={"token": token, "_csrf_token": csrf})
    home = browser.get("/console/").text
    assert '<a href="/console/fees"' in home and "Fees charged" in home
    page = browser.get("/console/fees")
    assert (
        page.status_code == 200
        and f'href="/console/orders/{order["id"]}"' in page.text
        and "¥1.50" in page.text
    )
