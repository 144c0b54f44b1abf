"""Management routes under /wms: warehouses, inbound, stock, movements, stocktakes, transfers, guards."""

from __future__ import annotations

from .helpers import Shop, check_invariants


def test_create_list_and_update_warehouses(mallcore):
    shop = Shop(mallcore, warehouses=())
    r = shop.warehouse.post(
        "/wms/warehouses", json={"code": "SH", "name": "Shanghai 上海仓", "region": "310000"}
    )
    assert r.status_code == 201, r.text
    assert {
        "code": "SH",
        "name": "Shanghai 上海仓",
        "region": "310000",
        "active": True,
        "priority": 0,
    }.items() <= r.json().items()
    again = shop.admin.post("/wms/warehouses", json={"code": "SH", "name": "again", "region": "310000"})
    assert (again.status_code, again.json()["code"]) == (409, "warehouse_exists")
    bad = shop.admin.post("/wms/warehouses", json={"code": "GZ", "name": "Guangzhou"})
    assert 400 <= bad.status_code < 500
    shop.admin.post("/wms/warehouses", json={"code": "GZ", "name": "Guangzhou", "region": "440100"})
    r = shop.admin.patch("/wms/warehouses/GZ", json={"active": False, "priority": 3})
    assert r.status_code == 200 and (r.json()["active"], r.json()["priority"]) == (False, 3)
    assert [w["code"] for w in shop.warehouse.get("/wms/warehouses").json()] == ["SH"]
    everything = shop.warehouse.get("/wms/warehouses", params={"include_inactive": True}).json()
    assert [w["code"] for w in everything] == ["GZ", "SH"]
    assert shop.admin.patch("/wms/warehouses/NOPE", json={"active": False}).status_code == 404


def test_warehouses_are_platform_objects(mallcore):
    shop = Shop(mallcore, warehouses=())
    body = {"code": "SH", "name": "Shanghai", "region": "310000"}
    shop_staff = mallcore.client(shop.kernel, "warehouse", "wh-s1", shop="s1")
    r = shop_staff.post("/wms/warehouses", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "platform_only")
    merchant = mallcore.client(shop.kernel, "merchant", "m1", shop="s1")
    r = merchant.post("/wms/warehouses", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert shop.alice.post("/wms/warehouses", json=body).status_code == 403
    assert mallcore.client(shop.kernel, None).post("/wms/warehouses", json=body).status_code == 401
    assert shop.warehouse.post("/wms/warehouses", json=body).status_code == 201
    r = shop_staff.patch("/wms/warehouses/SH", json={"active": False})
    assert (r.status_code, r.json()["code"]) == (403, "platform_only")
    # Shop staff may still see the warehouses their goods sit in.
    assert [w["code"] for w in shop_staff.get("/wms/warehouses").json()] == ["SH"]
    assert shop.alice.get("/wms/warehouses").status_code == 403


def test_inbound_adds_stock_and_a_movement(shop: Shop):
    r = shop.warehouse.post("/wms/inbound", json={"warehouse": "SH", "sku": "TEE", "quantity": 7})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["stock"] == {
        "sku": "TEE",
        "warehouse": "SH",
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
        "b_grade": 0,
        "quarantine": 0,
    }
    shop.inbound("SH", "TEE", 3)
    r = shop.warehouse.post(
        "/wms/inbound",
        json={"warehouse": "SH", "sku": "TEE", "quantity": 2, "bucket": "quarantine", "reason": "QA hold"},
    )
    assert r.status_code == 201
    summary = shop.warehouse.get("/wms/stock/TEE").json()
    assert (summary["on_hand"], summary["available"], summary["quarantine"]) == (10, 10, 2)
    moves = shop.warehouse.get("/wms/stock/TEE/movements").json()
    assert [(m["kind"], m["on_hand"], m["quarantine"], m["reason"]) for m in moves] == [
        ("inbound", 0, 2, "QA hold"),
        ("inbound", 3, 0, "inbound"),
        ("inbound", 7, 0, "inbound"),
    ]
    assert {"wh-platform"} == {m["actor"] for m in moves}
    assert body["movement_id"] == moves[-1]["id"]
    # Paging: newest first, before=<id>.
    assert [moves[-1]["id"]] == [
        m["id"]
        for m in shop.warehouse.get("/wms/stock/TEE/movements", params={"before": moves[1]["id"]}).json()
    ]
    check_invariants(shop.kernel)


def test_inbound_refuses_bad_input_and_writes_nothing(shop: Shop):
    for body, code in [
        ({"warehouse": "NOPE", "sku": "TEE", "quantity": 1}, "warehouse_not_found"),
        ({"warehouse": "SH", "sku": "NOPE", "quantity": 1}, "sku_not_found"),
    ]:
        r = shop.warehouse.post("/wms/inbound", json=body)
        assert (404, code) == (r.status_code, r.json()["code"])
    for body in [
        {"warehouse": "SH", "sku": "TEE", "quantity": 0},
        {"warehouse": "SH", "sku": "TEE", "quantity": -3},
        {"warehouse": "SH", "sku": "TEE"},
        {"warehouse": "SH", "sku": "TEE", "quantity": 1, "colour": "red"},
    ]:
        r = shop.warehouse.post("/wms/inbound", json=body)
        assert 400 <= r.status_code < 500 and r.status_code != 404, (body, r.text)
    shop.admin.patch("/wms/warehouses/BJ", json={"active": False})
    r = shop.warehouse.post("/wms/inbound", json={"warehouse": "BJ", "sku": "TEE", "quantity": 1})
    assert (r.status_code, r.json()["code"]) == (409, "warehouse_inactive")
    assert shop.stock() == {}


def test_shop_staff_move_and_see_only_their_shops_stock(mallcore):
    shop = Shop(mallcore)
    mallcore.product(shop.kernel, shop="s2", skus=[("OTHER", 100)])
    shop.inbound("SH", "TEE", 5)
    shop.inbound("SH", "OTHER", 5)
    s1_staff = mallcore.client(shop.kernel, "warehouse", "wh-s1", shop="s1")
    s2_staff = mallcore.client(shop.kernel, "warehouse", "wh-s2", shop="s2")
    merchant = mallcore.client(shop.kernel, "merchant", "m1", shop="s1")
    assert (
        s1_staff.post("/wms/inbound", json={"warehouse": "SH", "sku": "TEE", "quantity": 1}).status_code
        == 201
    )
    r = s2_staff.post("/wms/inbound", json={"warehouse": "SH", "sku": "TEE", "quantity": 1})
    assert (r.status_code, r.json()["code"]) == (403, "shop_forbidden")
    assert [row["sku"] for row in s1_staff.get("/wms/stock").json()] == ["TEE"]
    assert [row["sku"] for row in s2_staff.get("/wms/stock").json()] == ["OTHER"]
    assert [row["sku"] for row in shop.warehouse.get("/wms/stock").json()] == ["OTHER", "TEE"]
    assert s2_staff.get("/wms/stock/TEE").status_code == 403
    assert s2_staff.get("/wms/stock/TEE/movements").status_code == 403
    # Merchants read their stock but do not move it.
    assert merchant.get("/wms/stock/TEE").json()["on_hand"] == 6
    r = merchant.post("/wms/inbound", json={"warehouse": "SH", "sku": "TEE", "quantity": 1})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    # the role is checked before the body is read
    r = merchant.post("/wms/transfers", json={"sku": "TEE"})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert shop.alice.get("/wms/stock").status_code == 403
    check_invariants(shop.kernel)


def test_stocktake_records_differences(shop: Shop):
    shop.inbound("SH", "TEE", 10)
    shop.inbound("SH", "MUG", 4)
    r = shop.warehouse.post(
        "/wms/stocktakes",
        json={
            "warehouse": "SH",
            "counts": [
                {"sku": "TEE", "counted": 8},
                {"sku": "MUG", "counted": 4},
                {"sku": "CAP", "counted": 3},
            ],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(x["sku"], x["previous"], x["counted"], x["difference"]) for x in body["lines"]] == [
        ("TEE", 10, 8, -2),
        ("MUG", 4, 4, 0),
        ("CAP", 0, 3, 3),
    ]
    assert body["difference"] == 1
    levels = shop.stock()
    assert (
        levels[("TEE", "SH")]["on_hand"],
        levels[("MUG", "SH")]["on_hand"],
        levels[("CAP", "SH")]["on_hand"],
    ) == (8, 4, 3)
    tee = shop.warehouse.get("/wms/stock/TEE/movements").json()[0]
    assert ("stocktake", -2, body["ref"]) == (tee["kind"], tee["on_hand"], tee["ref"])
    check_invariants(shop.kernel)


def test_stocktake_cannot_count_below_what_orders_hold(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    shop.placed({"TEE": 3})
    r = shop.warehouse.post(
        "/wms/stocktakes", json={"warehouse": "SH", "counts": [{"sku": "TEE", "counted": 2}]}
    )
    assert (r.status_code, r.json()["code"], r.json()["skus"]) == (409, "stocktake_below_reserved", ["TEE"])
    assert shop.stock()[("TEE", "SH")]["on_hand"] == 5
    r = shop.warehouse.post(
        "/wms/stocktakes", json={"warehouse": "SH", "counts": [{"sku": "TEE", "counted": 3}]}
    )
    assert r.status_code == 201
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 3,
        "reserved": 3,
        "available": 0,
        "b_grade": 0,
        "quarantine": 0,
    }
    dup = shop.warehouse.post(
        "/wms/stocktakes",
        json={"warehouse": "SH", "counts": [{"sku": "TEE", "counted": 3}, {"sku": "TEE", "counted": 4}]},
    )
    assert (dup.status_code, dup.json()["code"]) == (422, "sku_repeated")
    check_invariants(shop.kernel)


def test_transfer_moves_available_units(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    shop.placed({"TEE": 2})
    body = {"sku": "TEE", "from_warehouse": "SH", "to_warehouse": "GZ", "quantity": 3}
    r = shop.warehouse.post("/wms/transfers", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["source"]["on_hand"], out["source"]["reserved"], out["source"]["available"]) == (2, 2, 0)
    assert (out["destination"]["on_hand"], out["destination"]["available"]) == (3, 3)
    # Reserved units never leave.
    r = shop.warehouse.post("/wms/transfers", json={**body, "quantity": 1})
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")
    same = shop.warehouse.post("/wms/transfers", json={**body, "to_warehouse": "SH"})
    assert (same.status_code, same.json()["code"]) == (422, "same_warehouse")
    kinds = [
        (m["kind"], m["warehouse"], m["on_hand"], m["ref"])
        for m in shop.warehouse.get("/wms/stock/TEE/movements").json()[:2]
    ]
    assert {("transfer_in", "GZ", 3, out["ref"]), ("transfer_out", "SH", -3, out["ref"])} == set(kinds)
    check_invariants(shop.kernel)


def test_inbound_with_idempotency_key_applies_once(shop: Shop):
    body = {"warehouse": "SH", "sku": "TEE", "quantity": 4}
    headers = {"Idempotency-Key": "scan-0001"}
    first = shop.warehouse.post("/wms/inbound", json=body, headers=headers)
    again = shop.warehouse.post("/wms/inbound", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    # A replay says so, as the kernel's routes do.
    assert ("Idempotent-Replayed" in first.headers, again.headers.get("Idempotent-Replayed")) == (
        False,
        "true",
    )
    assert shop.stock()[("TEE", "SH")]["on_hand"] == 4
    other = shop.warehouse.post("/wms/inbound", json={**body, "quantity": 5}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    check_invariants(shop.kernel)


def test_numbers_out_of_range_are_refused_not_500(shop: Shop):
    """Ids, priorities and quantities beyond what the database stores answer 4xx and write nothing."""
    huge = 10**20
    shop.inbound("SH", "TEE", 1)
    before = shop.stock()
    for method, url, body in [
        ("post", "/wms/warehouses", {"code": "X1", "name": "x", "region": "310000", "priority": 2**63}),
        ("post", "/wms/warehouses", {"code": "X2", "name": "x", "region": "310000", "priority": 2**40}),
        ("patch", "/wms/warehouses/SH", {"priority": -(2**40)}),
        ("get", f"/wms/orders/{huge}", None),
        ("post", f"/wms/orders/{huge}/dispatch", None),
        ("get", f"/wms/stock/TEE/movements?before={huge}", None),
        ("get", f"/wms/dispatch-queue?after={huge}", None),
    ]:
        kwargs = {} if body is None else {"json": body}
        r = getattr(shop.admin, method)(url, **kwargs)
        assert 400 <= r.status_code < 500 and "code" in r.json(), (url, body, r.status_code, r.text)
    # Stock that would overflow a stock column (32-bit on PostgreSQL) is refused as a whole.
    for _ in range(2):
        shop.inbound("GZ", "MUG", 1_000_000_000)
    r = shop.warehouse.post("/wms/inbound", json={"warehouse": "GZ", "sku": "MUG", "quantity": 1_000_000_000})
    assert (r.status_code, r.json()["code"]) == (422, "stock_out_of_range"), r.text
    r = shop.warehouse.post(
        "/wms/stocktakes", json={"warehouse": "GZ", "counts": [{"sku": "TEE", "counted": 3_000_000_000}]}
    )
    assert 400 <= r.status_code < 500, r.text
    assert shop.stock()[("MUG", "GZ")]["on_hand"] == 2_000_000_000
    assert {k: v for k, v in shop.stock().items() if k[0] == "TEE"} == before
    assert [w["code"] for w in shop.warehouse.get("/wms/warehouses").json()] == ["BJ", "GZ", "SH"]
    check_invariants(shop.kernel)


def test_stock_pages_never_skip_a_row(shop: Shop):
    for sku, warehouse in [("TEE", "SH"), ("TEE", "GZ"), ("TEE", "BJ"), ("MUG", "SH"), ("CAP", "GZ")]:
        shop.inbound(warehouse, sku, 1)
    seen: list[tuple[str, str]] = []
    params: dict[str, object] = {"limit": 2}
    for _ in range(10):
        page = shop.warehouse.get("/wms/stock", params=params).json()
        if not page:
            break
        seen += [(row["sku"], row["warehouse"]) for row in page]
        params = {"limit": 2, "after": page[-1]["sku"], "after_warehouse": page[-1]["warehouse"]}
    assert seen == sorted(shop.stock())


def test_the_openapi_schema_documents_the_key_on_stock_moves(shop: Shop):
    paths = shop.admin.get("/schema/openapi.json").json()["paths"]
    for path in ("/wms/inbound", "/wms/stocktakes", "/wms/transfers"):
        assert "Idempotency-Key" in [p["name"] for p in paths[path]["post"]["parameters"]], path
