from tests.helpers import order_body, snapshot


def test_merchants_create_list_and_update_their_products(mallcore):
    kernel = mallcore.kernel()
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post(
        "/catalog/products",
        json={
            "name": "Tee",
            "shop": "s1",
            "skus": [
                {"code": "TEE-S", "price": 1999, "weight_grams": 200, "name": "S"},
                {"code": "TEE-M", "price": 2099, "weight_grams": 220, "name": "M"},
            ],
        },
    )
    assert r.status_code == 201
    product = r.json()
    assert [(s["code"], s["price"], s["currency"]) for s in product["skus"]] == [
        ("TEE-S", 1999, "CNY"),
        ("TEE-M", 2099, "CNY"),
    ]
    anyone = mallcore.client(kernel, None)
    assert [p["id"] for p in anyone.get("/catalog/products?shop=s1").json()] == [product["id"]]
    assert anyone.get("/catalog/skus/TEE-M").json()["id"] == product["id"]
    assert anyone.get("/catalog/skus/NOPE").json()["code"] == "sku_not_found"
    other = mallcore.client(kernel, "merchant", "m2", shop="s2")
    assert (
        other.patch(f"/catalog/products/{product['id']}", json={"name": "Mine"}).json()["code"]
        == "shop_forbidden"
    )
    assert other.patch("/catalog/skus/TEE-S", json={"price": 1}).json()["code"] == "shop_forbidden"
    assert merchant.patch("/catalog/skus/TEE-S", json={"price": 1899}).json()["skus"][0]["price"] == 1899
    added = merchant.post(f"/catalog/products/{product['id']}/skus", json=[{"code": "TEE-L", "price": 2199}])
    assert [s["code"] for s in added.json()["skus"]] == ["TEE-S", "TEE-M", "TEE-L"]
    assert (
        mallcore.client(kernel, "customer", "c")
        .post("/catalog/products", json={"name": "x", "shop": "s1", "skus": [{"code": "Z", "price": 1}]})
        .status_code
        == 403
    )


def test_orders_use_current_list_prices_names_and_weights(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000, 300)], name="Kettle")
    alice = mallcore.client(kernel, "customer", "alice")
    first = alice.post("/orders", json=order_body()).json()
    assert (first["lines"][0]["name"], first["lines"][0]["unit_price"]) == ("Kettle", 1000)
    mallcore.client(kernel, "admin", "root").patch("/catalog/skus/SKU-1", json={"price": 1200})
    second = alice.post("/orders", json=order_body()).json()
    assert second["lines"][0]["unit_price"] == 1200
    assert alice.get(f"/orders/{first['id']}").json()["lines"][0]["unit_price"] == 1000
    with kernel.db.transaction(write=False) as conn:
        assert kernel.orders.load_lines(conn, second["id"])[0].weight_grams == 300


def test_inactive_skus_and_products_cannot_be_ordered(mallcore):
    kernel = mallcore.kernel()
    product = mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 500)])
    admin = mallcore.client(kernel, "admin", "root")
    alice = mallcore.client(kernel, "customer", "alice")
    admin.patch("/catalog/skus/SKU-2", json={"active": False})
    r = alice.post("/orders", json=order_body(lines=[("SKU-1", 1), ("SKU-2", 1)]))
    assert (r.status_code, r.json()["code"], r.json()["skus"]) == (422, "sku_inactive", ["SKU-2"])
    admin.patch(f"/catalog/products/{product['id']}", json={"active": False})
    assert alice.post("/orders", json=order_body()).json()["code"] == "sku_inactive"
    assert mallcore.client(kernel, None).get("/catalog/products").json() == []


def test_back_and_front_categories(mallcore):
    kernel = mallcore.kernel()
    admin = mallcore.client(kernel, "admin", "root")
    apparel = admin.post("/catalog/categories", json={"name": "Apparel", "kind": "back"}).json()
    tees = admin.post(
        "/catalog/categories", json={"name": "T-shirts", "kind": "back", "parent_id": apparel["id"]}
    ).json()
    summer = admin.post(
        "/catalog/categories", json={"name": "Summer picks", "kind": "front", "shows": [tees["id"]]}
    ).json()
    assert summer["shows"] == [tees["id"]]
    bad = admin.post("/catalog/categories", json={"name": "x", "kind": "front", "parent_id": apparel["id"]})
    assert bad.json()["code"] == "category_invalid"
    made = admin.post(
        "/catalog/products",
        json={"name": "Tee", "shop": "s1", "category_id": tees["id"], "skus": [{"code": "T", "price": 1}]},
    )
    assert made.json()["category_id"] == tees["id"]
    front = admin.post(
        "/catalog/products",
        json={"name": "x", "shop": "s1", "category_id": summer["id"], "skus": [{"code": "U", "price": 1}]},
    )
    assert front.json()["code"] == "category_invalid"
    assert [c["name"] for c in mallcore.client(kernel, None).get("/catalog/categories?kind=back").json()] == [
        "Apparel",
        "T-shirts",
    ]
    assert [
        p["name"]
        for p in mallcore.client(kernel, None).get(f"/catalog/products?category_id={tees['id']}").json()
    ] == ["Tee"]


def test_anyone_reads_the_catalog_and_only_merchants_and_admins_write_it(mallcore):
    kernel = mallcore.kernel()
    product = mallcore.product(kernel, skus=[("SKU-1", 1000)])
    anyone = mallcore.client(kernel, None)
    for path in ("/catalog/products", f"/catalog/products/{product['id']}", "/catalog/skus/SKU-1"):
        assert anyone.get(path).status_code == 200, path
    assert anyone.get("/catalog/categories").json() == []
    new = {"name": "x", "shop": "s1", "skus": [{"code": "NEW", "price": 1}]}
    writes = [
        ("POST", "/catalog/products", new),
        ("PATCH", f"/catalog/products/{product['id']}", {"name": "y"}),
        ("POST", f"/catalog/products/{product['id']}/skus", [{"code": "NEW", "price": 1}]),
        ("PATCH", "/catalog/skus/SKU-1", {"price": 1}),
        ("POST", "/catalog/categories", {"name": "Tea", "kind": "back"}),
    ]
    before = snapshot(kernel)
    for method, path, body in writes:
        assert anyone.request(method, path, json=body).status_code == 401, path
        for roles in ("customer", "warehouse", "finance"):
            r = mallcore.client(kernel, roles, "someone", shop="s1").request(method, path, json=body)
            assert (r.status_code, r.json()["code"]) == (403, "role_required"), (roles, path)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post("/catalog/categories", json={"name": "Tea", "kind": "back"})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert snapshot(kernel) == before
    assert merchant.patch("/catalog/skus/SKU-1", json={"price": 900}).json()["skus"][0]["price"] == 900


def test_inactive_products_are_listed_to_their_staff_only(mallcore):
    kernel = mallcore.kernel()
    hidden = mallcore.product(kernel, shop="s1", skus=[("OLD-1", 100)], name="Retired tee")
    mallcore.product(kernel, shop="s1", skus=[("NEW-1", 100)], name="New tee")
    admin = mallcore.client(kernel, "admin", "root")
    assert admin.patch(f"/catalog/products/{hidden['id']}", json={"active": False}).status_code == 200

    def names(client):
        r = client.get("/catalog/products?include_inactive=true")
        return r.status_code, sorted(p["name"] for p in r.json()) if r.status_code == 200 else r.json()[
            "code"
        ]

    assert names(mallcore.client(kernel, None)) == (401, "unauthenticated")
    assert names(mallcore.client(kernel, "customer", "alice")) == (403, "role_required")
    assert names(mallcore.client(kernel, "merchant", "m2", shop="s2")) == (200, ["New tee"])
    assert names(mallcore.client(kernel, "merchant", "m1", shop="s1")) == (200, ["New tee", "Retired tee"])
    assert names(admin) == (200, ["New tee", "Retired tee"])
    anonymous = mallcore.client(kernel, None).get("/catalog/products").json()
    assert [p["name"] for p in anonymous] == ["New tee"]


def test_search_treats_like_wildcards_as_letters(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("A-1", 100)], name="100% cotton tee")
    mallcore.product(kernel, skus=[("B-1", 100)], name="1000 thread sheets")
    mallcore.product(kernel, skus=[("C-1", 100)], name="snake_case mug")
    mallcore.product(kernel, skus=[("D-1", 100)], name="snakeXcase mug")
    anyone = mallcore.client(kernel, None)

    def search(q):
        return sorted(p["name"] for p in anyone.get("/catalog/products", params={"q": q}).json())

    assert search("100%") == ["100% cotton tee"]
    assert search("%") == ["100% cotton tee"]
    assert search("snake_case") == ["snake_case mug"]
    assert search("_") == ["snake_case mug"]
    assert search("COTTON") == ["100% cotton tee"]
