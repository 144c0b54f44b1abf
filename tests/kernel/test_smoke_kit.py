def test_kit_places_an_order(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, shop="s1", skus=[("TEE", 1999)])
    alice = mallcore.client(kernel, "customer", "alice")
    r = alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 2}]})
    assert r.status_code == 201, r.text
    assert r.json()["total"] == 3998
