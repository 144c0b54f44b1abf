"""Freight templates: examples worked by hand, then the same through placement."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from mallcore.kernel.aftersale import Parcel
from mallcore.plugins.tms.freight import NotDelivered, ShopTemplates, Template, X, bump_version, quote_parcels

from .support import PIECE_TEMPLATE, SHOP, WEIGHT_TEMPLATE, add_template, order_body, shop_kernel


def template(spec: dict, id: int = 1, **extra: object) -> Template:
    body = {**spec, **extra}
    row = SimpleNamespace(
        id=id,
        shop=SHOP,
        name=body["name"],
        mode=body["mode"],
        origin=body.get("origin", ""),
        split=body.get("split", "once"),
        active=True,
        spec={k: body.get(k) for k in ("default_rule", "rules", "free", "not_delivered")},
    )
    return Template.from_row(row)


W = template(WEIGHT_TEMPLATE)
P = template(PIECE_TEMPLATE)

# (region, pieces, grams, goods in fen, expected freight in fen, why) — each worked by hand.
WEIGHT_CASES = [
    ("310000", 1, 400, 3000, 800, "Shanghai, default rule: first kg ¥8"),
    ("310000", 1, 1000, 3000, 800, "exactly the first kg: no additional step"),
    ("310000", 1, 1001, 3000, 1100, "1 g over: one started kg, ¥8 + ¥3"),
    ("310000", 3, 1200, 9000, 1100, "1.2 kg, ¥90 < ¥99: ¥8 + 1 x ¥3"),
    ("310000", 2, 3400, 9899, 1700, "3.4 kg: ¥8 + 3 x ¥3, ¥98.99 just short of free"),
    ("310000", 2, 2400, 9900, 0, "¥99 exactly: free"),
    ("330200", 1, 1200, 5000, 800, "Ningbo, Zhejiang rule: ¥6 + 1 x ¥2"),
    ("330106", 1, 1200, 5000, 600, "Hangzhou beats Zhejiang (longer prefix): ¥5 + 1 x 500 g x ¥1"),
    (
        "330106",
        2,
        2400,
        10000,
        800,
        "Hangzhou, 2 pcs: Zhejiang's 3-piece rule, not ¥99, decides: ¥5 + 3 x ¥1",
    ),
    ("330106", 3, 1200, 9000, 0, "Hangzhou, 3 pcs: free"),
    ("650102", 1, 1200, 5000, 3000, "Urumqi (6501 beats not-delivered 65): ¥20 + 1 x ¥10"),
    ("650102", 2, 2400, 10000, 4000, "Urumqi ¥100: remote free needs ¥299: ¥20 + 2 x ¥10"),
    ("540102", 3, 300, 36000, 0, "Lhasa ¥360 ≥ ¥299: free"),
    (None, 1, 2500, 3000, 1400, "no address: default rule, ¥8 + 2 x ¥3"),
]

PIECE_CASES = [
    ("310000", 1, 1000, 1000, "first piece ¥10"),
    ("310000", 3, 3000, 2000, "¥10 + 2 x ¥5"),
    ("320100", 2, 2000, 1200, "Jiangsu: first 2 pieces ¥12"),
    ("320100", 3, 3000, 1600, "Jiangsu: ¥12 + 1 started pair x ¥4"),
    ("320100", 5, 19999, 2000, "Jiangsu 5 pcs but ¥199.99: ¥12 + 2 x ¥4"),
    ("310000", 5, 19999, 3000, "5 pcs, ¥199.99: both conditions needed, ¥10 + 4 x ¥5"),
    ("310000", 5, 20000, 0, "5 pcs and ¥200: free"),
    ("310000", 4, 40000, 2500, "¥400 but 4 pcs: ¥10 + 3 x ¥5"),
]


@pytest.mark.parametrize(("region", "pieces", "grams", "goods", "expected", "why"), WEIGHT_CASES)
def test_by_weight(region, pieces, grams, goods, expected, why):
    quote = W.quote(region, quantity=pieces, weight=grams, goods=goods)
    assert expected == quote.amount, why
    assert quote.free == (expected == 0)


@pytest.mark.parametrize(("region", "pieces", "goods", "expected", "why"), PIECE_CASES)
def test_by_piece(region, pieces, goods, expected, why):
    assert expected == P.quote(region, quantity=pieces, weight=123_456, goods=goods).amount, why


@pytest.mark.parametrize("region", ["653101", "650000", "810000"])
def test_regions_not_delivered(region):
    with pytest.raises(NotDelivered):
        W.quote(region, quantity=1, weight=100, goods=100)


def test_a_not_delivered_prefix_wins_a_tie():
    tpl = template(WEIGHT_TEMPLATE, rules=[{"regions": ["65"], "first_fee": 1}])
    with pytest.raises(NotDelivered):
        tpl.quote("650102", quantity=1, weight=1, goods=1)


def test_explanations():
    q = W.quote("330200", quantity=2, weight=3000, goods=5000)
    assert q.amount == 1000
    assert q.en == f"first 1 kg ¥6 + 2 kg {X} ¥2 (template W, rule Zhejiang)"
    assert q.zh == f"首重1kg ¥6 + 续重2kg {X} ¥2(模板 W,规则 Zhejiang)"
    q = W.quote("330106", quantity=1, weight=1200, goods=5000)
    assert q.en == f"first 1 kg ¥5 + 1 {X} 500 g {X} ¥1 (template W, rule Hangzhou)"
    q = W.quote("310000", quantity=2, weight=2400, goods=12050)
    assert q.en == "free shipping, goods ¥120.50 ≥ ¥99 (template W, rule default)"
    q = P.quote("310000", quantity=3, weight=0, goods=100)
    assert q.en == f"first 1 pc ¥10 + 2 pcs {X} ¥5 (template P, rule default)"


def _book(*templates: Template, bindings: list[tuple[str, str, int]]) -> ShopTemplates:
    rows = [SimpleNamespace(sku=sku, origin=origin, template_id=tid) for sku, origin, tid in bindings]
    return ShopTemplates(1, templates, rows)


LINES = {1: ("A", 400, 3000), 2: ("B", 1200, 5000)}


@pytest.mark.parametrize(
    ("split", "expected", "per_parcel"),
    [
        # once: 2 x A + 1 x A pooled = 1.2 kg, ¥90: ¥8 + ¥3, charged to the first parcel
        ("once", 1100, [1100, 0]),
        # per parcel: 800 g → ¥8, 400 g → ¥8
        ("per_parcel", 1600, [800, 800]),
    ],
)
def test_split_parcels(split, expected, per_parcel):
    tpl = template(WEIGHT_TEMPLATE, split=split)
    book = _book(tpl, bindings=[("", "", 1)])
    parcels = [
        Parcel(warehouse="SH", region="310000", lines=[(1, 2)]),
        Parcel(warehouse="BJ", region="110000", lines=[(1, 1)]),
    ]
    assert expected == quote_parcels(book, "310000", LINES, parcels)
    assert per_parcel == [p.freight for p in parcels]


def test_templates_by_origin_warehouse():
    general = template(WEIGHT_TEMPLATE, id=1)
    # The Urumqi warehouse ships to Xinjiang cheaply and everywhere else dearly.
    urumqi = template(
        {
            "name": "from Urumqi",
            "mode": "weight",
            "default_rule": {"first_fee": 1500, "additional_fee": 500},
            "rules": [{"regions": ["65"], "first_fee": 500, "additional_fee": 100}],
        },
        id=2,
        origin="URC",
    )
    book = _book(general, urumqi, bindings=[("", "", 1), ("", "URC", 2)])
    kashgar = "653101"
    assert quote_parcels(book, kashgar, LINES, [Parcel(warehouse="SH", region="31", lines=[(2, 1)])]) is None
    parcel = Parcel(warehouse="URC", region="65", lines=[(2, 1)])
    assert quote_parcels(book, kashgar, LINES, [parcel]) == 600  # ¥5 + 1 x ¥1
    assert parcel.freight == 600
    # At placement no warehouse is known: the any-warehouse default prices it.
    assert general is book.template_for("B", None)


# -- through placement -----------------------------------------------------------------


def test_freight_on_the_order(mallcore):
    kernel = shop_kernel(mallcore)
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    alice = mallcore.client(kernel, "customer", "alice")
    r = alice.post("/orders", json=order_body([("B", 2), ("A", 1)], region="330200"))
    assert r.status_code == 201, r.text
    order = r.json()
    # 2.8 kg, ¥130 to Ningbo: 3 pieces, Zhejiang's free rule → free
    assert order["shipping"] == 0
    assert order["extra"]["freight"]["consignments"][0]["free"] is True
    r = alice.post("/orders", json=order_body([("B", 1)], region="330200"))
    order = r.json()
    assert order["shipping"] == 800
    assert order["total"] == 5000 + 800
    [adj] = [a for a in order["adjustments"] if a["source"] == "tms"]
    assert adj["reason"] == f"Freight: first 1 kg ¥6 + 1 kg {X} ¥2 (template W, rule Zhejiang)"
    assert (adj["phase"], adj["code"], adj["amount"]) == ("freight", "freight", 800)
    assert [line["shipping"] for line in order["lines"]] == [800]


def test_two_templates_are_two_consignments(mallcore):
    kernel = shop_kernel(mallcore)
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    add_template(mallcore, kernel, PIECE_TEMPLATE, skus=["C"])
    alice = mallcore.client(kernel, "customer", "alice")
    r = alice.post("/orders/preview", json=order_body([("A", 1), ("C", 3)]))
    assert r.status_code == 200, r.text
    order = r.json()
    # A: 400 g by weight → ¥8; C: 3 pieces by piece → ¥10 + 2 x ¥5 (¥360 but not 5 pieces)
    assert order["shipping"] == 800 + 2000
    [adj] = [a for a in order["adjustments"] if a["source"] == "tms"]
    assert adj["reason"] == (
        f"Freight: first 1 kg ¥8 (template W, rule default); first 1 pc ¥10 + 2 pcs {X} ¥5 (template P, rule default)"
    )
    # allocated over the lines by what each stands at, and the lines add up
    assert sum(line["shipping"] for line in order["lines"]) == 2800
    assert sum(line["total"] for line in order["lines"]) == order["total"]


def test_region_not_delivered_refuses_and_writes_nothing(mallcore):
    kernel = shop_kernel(mallcore)
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    alice = mallcore.client(kernel, "customer", "alice")
    r = alice.post("/orders", json=order_body([("A", 1)], region="810000"))
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "region_not_delivered"
    assert (body["region"], body["template"], body["skus"]) == ("810000", "W", ["A"])
    assert alice.get("/orders").json() == []


def test_shop_without_templates_ships_free(mallcore):
    kernel = shop_kernel(mallcore)
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body([("A", 1)])).json()
    assert (order["shipping"], order["total"]) == (0, 3000)
    assert "freight" not in order["extra"]


def test_pricing_runs_no_query_while_the_cache_is_fresh(mallcore):
    kernel = shop_kernel(mallcore, settings={"tms": {"template_recheck_seconds": 3600}})
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    center = kernel.centers["tms"]
    with kernel.db.transaction(write=False) as conn:
        center.freight.get(conn, SHOP)  # warm
        with kernel.db.count_statements() as counted:
            book = center.freight.get(conn, SHOP)
    assert counted.count == 0
    assert not book.empty
    # With no recheck interval: one read of the version, no reload.
    center.freight.recheck = 0
    with kernel.db.transaction(write=False) as conn, kernel.db.count_statements() as counted:
        center.freight.get(conn, SHOP)
    assert counted.count == 1


def test_template_changes_reach_pricing_at_once(mallcore):
    kernel = shop_kernel(mallcore, settings={"tms": {"template_recheck_seconds": 3600}})
    tpl = add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    alice = mallcore.client(kernel, "customer", "alice")
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    assert alice.post("/orders/preview", json=order_body([("A", 1)])).json()["shipping"] == 800
    body = {**WEIGHT_TEMPLATE, "default": True}
    body["default_rule"] = {**body["default_rule"], "first_fee": 1000}
    r = merchant.put(f"/tms/templates/{tpl['id']}", json=body)
    assert r.status_code == 200, r.text
    assert alice.post("/orders/preview", json=order_body([("A", 1)])).json()["shipping"] == 1000
    # Another worker's change (same database, not through this process) is seen
    # once the recheck interval has passed.
    center = kernel.centers["tms"]
    with kernel.db.transaction() as conn:
        conn.execute(
            kernel.metadatas["tms"].tables["tms_templates"].update().values(updated_at=datetime.now(UTC))
        )
        bump_version(conn, SHOP)
        conn.execute(kernel.metadatas["tms"].tables["tms_bindings"].delete())
    assert alice.post("/orders/preview", json=order_body([("A", 1)])).json()["shipping"] == 1000
    center.freight.recheck = 0
    assert alice.post("/orders/preview", json=order_body([("A", 1)])).json()["shipping"] == 0


def test_placing_an_order_sends_no_tms_statement_while_the_cache_is_fresh(mallcore):
    kernel = shop_kernel(mallcore)
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    alice = mallcore.client(kernel, "customer", "alice")
    alice.post("/orders", json=order_body([("A", 1)]))  # warms the cache
    with kernel.db.count_statements(keep=True) as counted:
        r = alice.post("/orders", json=order_body([("A", 1), ("B", 1)], region="330200"))
    assert r.status_code == 201
    assert r.json()["shipping"] == 800  # 1.6 kg, ¥80 to Ningbo: ¥6 + 1 x ¥2
    assert [s for s in counted.statements if "tms_" in s] == []
