"""Every object route, reads and writes, asked about another shop's or another customer's
real objects, answers exactly what it answers for an object that does not exist, and
writes nothing.

Two shops, ``alpha`` and ``beta``, each get the same seeded life: a product, stock, orders
of their own customer (alice at alpha, bob at beta) paid and dispatched, a parcel, an
after-sale case and its refund, journal entries and a settlement, risk list entries,
rules, reviews, decisions and a report, a campaign, a coupon template and a claimed
coupon, a freight template, a member program. Then every route with an object in its
path (every method, the kernel's and every center's, enumerated from the app) is called
with the *other* side's real ids by 11 outsiders: each shop's merchant, warehouse,
finance and risk staff (8), each customer (2) and someone without a token. The answer
must not tell the real object from a missing one (same status and code; 401, 403 or
404), except where the object is public by design (the catalog, the WMS stock of a
SKU: 403 ``shop_forbidden`` for another shop's SKU, documented), and no table changes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mallcore.kernel.types import STAFF_ROLES
from tests.helpers import snapshot

CENTERS = ["catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership"]
SIDES = {"alpha": "alice", "beta": "bob"}
OTHER = {"alpha": "beta", "beta": "alpha"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MISSING = {"int": "987654", "str": "NOPE-404"}
# Routes left out: signed by their sender rather than a token (webhooks), the docs.
# A provider's statement is a list filtered to the caller's shop (the read audit,
# test_authorization_audit.py, looks for other shops' lines in it).
SKIPPED = re.compile(r"^/(payment/webhooks|tms/webhooks|schema|payment/statements)/")
# Objects public by design: anyone reads a product or a SKU; a customer claims any shop's
# claimable coupon (they are offered on its storefront); staff are told 403
# ``shop_forbidden`` for another shop's product, SKU or SKU stock (public in the catalog).
PUBLIC = {
    ("GET", "/catalog/products/{product_id}"),
    ("GET", "/catalog/skus/{code}"),
    ("POST", "/promotion/coupon-templates/{template_id}/claim"),
}
DOCUMENTED_403 = {
    ("GET", "/wms/stock/{sku}"),
    ("GET", "/wms/stock/{sku}/movements"),
    ("PATCH", "/catalog/products/{product_id}"),
    ("POST", "/catalog/products/{product_id}/skus"),
    ("PATCH", "/catalog/skus/{code}"),
}


def outsiders() -> list[tuple[str, str | None, str, str | None, str]]:
    """(label, role, subject, shop, the side whose objects they try)."""
    out: list[tuple[str, str | None, str, str | None, str]] = []
    for shop in SIDES:
        for role in sorted(STAFF_ROLES):
            out.append((f"{role}@{shop}", role, f"{role}-{shop}", shop, OTHER[shop]))
    for shop, customer in SIDES.items():
        out.append((f"customer {customer}", "customer", customer, None, OTHER[shop]))
    out.append(("anonymous", None, "nobody", None, "alpha"))
    return out


def _ok(r: Any, *statuses: int) -> Any:
    assert r.status_code in (statuses or (200, 201)), r.text
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else None


def seed_side(mallcore: Any, kernel: Any, shop: str) -> None:
    """One shop's life, through the API as its own people."""
    customer = SIDES[shop]
    sku = f"{shop.upper()}-1"
    mallcore.product(kernel, shop=shop, skus=[(sku, 1000, 100)], name=f"{shop} shirt")
    merchant = mallcore.client(kernel, "merchant", f"m-{shop}", shop=shop)
    warehouse = mallcore.client(kernel, "warehouse", f"w-{shop}", shop=shop)
    risk = mallcore.client(kernel, "risk", f"r-{shop}", shop=shop)
    buyer = mallcore.client(kernel, "customer", customer)
    _ok(warehouse.post("/wms/inbound", json={"warehouse": "SH", "sku": sku, "quantity": 50}))
    _ok(
        merchant.post(
            "/tms/templates",
            json={"shop": shop, "name": "std", "mode": "piece", "default_rule": {"first_fee": 0}},
        )
    )
    _ok(merchant.put(f"/membership/shops/{shop}", json={"enabled": True}))
    _ok(
        merchant.post(
            "/promotion/campaigns",
            json={
                "shop": shop,
                "name": "100-10",
                "type": "threshold_off",
                "ends_at": "2999-01-01T00:00:00Z",
                "rules": {"tiers": [{"threshold": 100000, "off": 1000}]},
            },
        )
    )
    template = _ok(
        merchant.post(
            "/promotion/coupon-templates",
            json={
                "shop": shop,
                "name": "c",
                "kind": "amount",
                "value": 100,
                "total": 5,
                "valid_to": "2999-01-01T00:00:00Z",
            },
        )
    )
    _ok(buyer.post(f"/promotion/coupon-templates/{template['id']}/claim"))
    _ok(
        risk.post(
            "/risk/lists",
            json={
                "kind": "phone",
                "value": f"139{len(shop)}0000000",
                "action": "block",
                "reason": "x",
                "shop": shop,
            },
        )
    )
    address = {"name": f"{customer} Private", "phone": "13800000000", "region": "310000", "detail": "1 Rd"}
    orders = []
    for _ in range(3):
        order = _ok(
            buyer.post(
                "/orders", json={"shop": shop, "lines": [{"sku": sku, "quantity": 1}], "address": address}
            )
        )
        orders.append(order["id"])
    for order_id in orders[:2]:
        _ok(buyer.post(f"/orders/{order_id}/payments", json={"method": "sandbox"}))
    # a case on the first (paid) order, approved by the merchant: a refund under finance review
    order = buyer.get(f"/orders/{orders[0]}").json()
    case = _ok(
        buyer.post(
            "/after-sales",
            json={
                "order_id": orders[0],
                "type": "refund_only",
                "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
                "reason": "not_wanted",
            },
        ),
        201,
    )
    merchant.post(f"/after-sales/{case['id']}/approve", json={})
    _ok(risk.post("/risk/rules", json={"name": "all", "condition": "true", "action": "review", "shop": shop}))
    # held for review by the rule
    buyer.post("/orders", json={"shop": shop, "lines": [{"sku": sku, "quantity": 1}], "address": address})
    _ok(
        merchant.post(
            "/risk/reports",
            json={"shop": shop, "customer": customer, "reason": "abuse", "order_id": orders[1]},
        )
    )


def seed(mallcore: Any) -> Any:
    kernel = mallcore.kernel(centers=CENTERS)
    admin = mallcore.client(kernel, "admin", "root")
    _ok(admin.post("/wms/warehouses", json={"code": "SH", "name": "SH", "region": "310000"}))
    for shop in SIDES:
        seed_side(mallcore, kernel, shop)
    today = date.today()
    period = {
        "start": (today - timedelta(days=300)).isoformat(),
        "end": (today - timedelta(days=1)).isoformat(),
    }
    for shop in SIDES:
        _ok(admin.post("/finance/settlements", json={"shop": shop, **period}), 201)
    # the risk center writes its decisions in the background: all of them before any snapshot
    kernel.centers["risk"].decisions.flush()
    return kernel


def _table(kernel: Any, name: str) -> sa.Table:
    for metadata in kernel.metadatas.values():
        if name in metadata.tables:
            return metadata.tables[name]
    raise KeyError(name)


# (the route's resource, its parameter) -> (table, column, whose rows: by shop or customer)
OBJECTS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("orders", "order_id"): ("orders", "id", "shop"),
    ("track", "order_id"): ("orders", "id", "shop"),
    ("wms/orders", "order_id"): ("orders", "id", "shop"),
    ("catalog/products", "product_id"): ("catalog_products", "id", "shop"),
    ("catalog/skus", "code"): ("catalog_skus", "code", "shop"),
    ("payment/sandbox", "reference"): ("payment_payments", "reference", "shop"),
    ("finance/refunds", "refund_id"): ("order_refunds", "id", "shop"),
    ("finance/entries", "entry_id"): ("finance_entries", "id", "shop"),
    ("finance/settlements", "settlement_id"): ("finance_settlements", "id", "shop"),
    ("risk/lists", "entry_id"): ("risk_lists", "id", "shop"),
    ("risk/rules", "rule_id"): ("risk_rules", "id", "shop"),
    ("risk/reviews", "review_id"): ("risk_reviews", "id", "shop"),
    ("risk/decisions", "decision_id"): ("risk_decisions", "id", "shop"),
    ("risk/reports", "report_id"): ("risk_reports", "id", "shop"),
    ("risk/customers", "customer"): ("risk_profiles", "customer", "customer"),
    ("wms/stock", "sku"): ("catalog_skus", "code", "shop"),
    ("tms/templates", "template_id"): ("tms_templates", "id", "shop"),
    ("tms/shipments", "shipment_id"): ("tms_shipments", "id", "shop"),
    ("tms/sandbox", "tracking_no"): ("tms_shipments", "tracking_no", "shop"),
    ("promotion/campaigns", "campaign_id"): ("promotion_campaigns", "id", "shop"),
    ("promotion/coupon-templates", "template_id"): ("promotion_templates", "id", "shop"),
    ("promotion/coupons", "code"): ("promotion_coupons", "code", "shop"),
    ("membership/members", "customer"): ("orders", "customer", "customer"),
    ("membership/shops", "shop"): ("membership_programs", "shop", "shop"),
    ("after-sales", "case_id"): ("refund_cases", "id", "shop"),
}
# Objects of the platform, not of a shop: shop staff and customers are refused by role.
PLATFORM_OBJECTS = {
    ("finance/reconciliations", "run_id"),
    ("finance/mismatches", "mismatch_id"),
    ("wms/warehouses", "code"),
    ("tms/unknown-events", "event_id"),
    ("payment/statements", "provider"),
}


def _resource(path: str) -> str:
    parts = [p for p in path.strip("/").split("/") if not p.startswith("{")]
    head = path.strip("/").split("/{")[0]
    return head if head.count("/") <= 1 else "/".join(parts[:2])


def real_ids(kernel: Any, side: str) -> dict[tuple[str, str], str]:
    """The first object of ``side`` (its shop's, or its customer's) for each route parameter."""
    out = {}
    with kernel.db.transaction(write=False) as conn:
        for key, (table, column, owner) in OBJECTS.items():
            t = _table(kernel, table)
            whose = SIDES[side] if owner == "customer" else side
            value = conn.execute(sa.select(t.c[column]).where(t.c[owner] == whose).limit(1)).scalar()
            if value is not None:
                out[key] = str(value)
    return out


def routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template without types) of every route with an object in its path."""
    out = set()
    for route in app.routes:
        path = re.sub(r":\w+}", "}", route.path)
        if "{" not in path or SKIPPED.match(path):
            continue
        for method in getattr(route, "methods", ()):
            if method not in ("OPTIONS", "HEAD"):
                out.add((method, path))
    return sorted(out)


def bodies(doc: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """The OpenAPI document's example body of each operation (valid against its schema)."""
    out = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            media = (
                op.get("requestBody", {}).get("content", {}).get("application/json")
                if isinstance(op, dict)
                else None
            )
            if media:
                examples = [e["value"] for e in (media.get("examples") or {}).values()]
                examples += list(media["schema"].get("examples") or [])
                out[(method.upper(), path)] = examples[0]
    return out


def _platform(path: str) -> bool:
    return any((_resource(path), name) in PLATFORM_OBJECTS for name in re.findall(r"\{(\w+)\}", path))


def _url(path: str, ids: dict[tuple[str, str], str], missing: bool) -> tuple[str, bool]:
    """``path`` with real ids (or missing ones); whether every parameter had a real id."""
    resource = _resource(path)
    complete = True

    def value(match: re.Match[str]) -> str:
        nonlocal complete
        name = match.group(1)
        kind = "int" if name.endswith("_id") else "str"
        if (resource, name) in PLATFORM_OBJECTS:
            return {"provider": "sandbox", "code": "SH"}.get(name, "1") if not missing else MISSING[kind]
        real = ids.get((resource, name))
        if real is None:
            complete = False
        return MISSING[kind] if missing or real is None else real

    return re.sub(r"\{(\w+)\}", value, path), complete


def _answer(r: Any) -> tuple[int, str | None]:
    try:
        code = r.json().get("code") if r.status_code >= 400 else None
    except (ValueError, AttributeError):
        code = None
    return r.status_code, code


# The outsiders in three groups, each audited on its own seeded kernel (its own test, so that
# test workers can run them side by side).
GROUPS = {
    "alpha's staff": lambda label: label.endswith("@alpha"),
    "beta's staff": lambda label: label.endswith("@beta"),
    "customers and anonymous": lambda label: "@" not in label,
}


def audit(mallcore: Any, group: str) -> dict[str, Any]:
    kernel = seed(mallcore)
    app = mallcore.app(kernel)
    doc = mallcore.client(kernel, None).get("/schema/openapi.json").json()
    examples = bodies(doc)
    ids = {side: real_ids(kernel, side) for side in SIDES}
    unseeded = sorted({k for k in OBJECTS if k not in ids["alpha"] or k not in ids["beta"]})
    found: dict[str, Any] = {"requests": 0, "writes": 0, "leaks": [], "written": [], "unseeded": unseeded}
    last: dict[str, Any] | None = None
    # the ids are real: an admin reads every shop object the outsiders will ask about (the
    # tracking page wants its link's token)
    admin = mallcore.client(kernel, "admin", "root")
    found["unreadable"] = [
        url
        for method, path in routes(app)
        if method == "GET" and not path.startswith("/track/")
        for url, complete in [_url(path, ids["beta"], missing=False)]
        if complete and not _platform(path) and admin.get(url).status_code != 200
    ]
    for label, role, subject, shop, side in outsiders():
        if not GROUPS[group](label):
            continue
        found["outsiders"] = found.get("outsiders", 0) + 1
        client = mallcore.client(kernel, role, subject, shop=shop)
        for method, path in routes(app):
            if (method, path) in PUBLIC:
                continue
            real_url, complete = _url(path, ids[side], missing=False)
            fake_url, _ = _url(path, ids[side], missing=True)
            body = examples.get((method, path))
            answers = []
            for url in (real_url, fake_url):
                # the snapshot after a write is the one before the next (nothing else runs between)
                before = (last if last is not None else snapshot(kernel)) if method in WRITES else None
                last = None
                r = client.request(method, url, **({"json": body} if body is not None else {}))
                found["requests"] += 1
                assert r.status_code < 500, (label, method, url, r.text)
                if before is not None:
                    found["writes"] += 1
                    last = snapshot(kernel)
                    if last != before:
                        found["written"].append(f"{label} {method} {url} -> {r.status_code}")
                answers.append(_answer(r))
            real, fake = answers
            if not complete:
                continue
            if (method, path) in DOCUMENTED_403 and real == (403, "shop_forbidden"):
                continue
            if real != fake or real[0] not in (401, 403, 404):
                found["leaks"].append(f"{label} {method} {real_url}: {real} (missing object: {fake})")
    return found


def test_the_snapshot_sees_a_write(mallcore):
    """What the audit's "nothing written" compares: an insider's write does show."""
    kernel = seed(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m-alpha", shop="alpha")
    campaign = real_ids(kernel, "alpha")[("promotion/campaigns", "campaign_id")]
    before = snapshot(kernel)
    _ok(merchant.post(f"/promotion/campaigns/{campaign}/end"))
    assert snapshot(kernel) != before


@pytest.mark.timeout(900)
@pytest.mark.parametrize("group", list(GROUPS))
def test_no_object_route_tells_an_outsider_anything_or_lets_them_write(mallcore, group):
    found = audit(mallcore, group)
    print(
        f"object authorization audit, {group}: {found['outsiders']} outsiders, {found['requests']} requests "
        f"({found['writes']} writes), {len(found['leaks'])} leaks, "
        f"{len(found['written'])} writes that changed data"
    )
    print("\n".join(found["leaks"] + found["written"]))
    assert found["unseeded"] == []
    assert found["unreadable"] == []
    # every object route for every outsider of the group (about 154 requests each)
    assert found["requests"] > 140 * found["outsiders"]
    assert found["leaks"] == []
    assert found["written"] == []
