"""Every request body example of the OpenAPI document works against the demo shop.

An integrator starts ``mallcore demo``, opens the docs UI and sends an operation's
example with one of the tokens the demo printed. Here: the demo's data is seeded
(``kernel.demo.seed``, every first-party center), the objects a path names that the
demo does not seed are made through the API the way that integrator would make them
(an order paid, an after-sale case waiting for its goods, a refund under finance
review...), then each operation's example is sent *unchanged* as someone the route lets
in (its guard's role: staff of the demo shop, platform staff, the customer alice).

Each must succeed (2xx). ``EXCEPTIONS`` lists the few whose example cannot name a real
object however the demo is seeded, with the state error they answer instead (and they
must answer exactly that: never a 400, never a 422).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from mallcore.kernel.config import FIRST_PARTY_CENTERS
from mallcore.kernel.demo import DEMO_SHOP, seed
from tests.plugins.tms.support import signed

# (method, path): (status, code, why the example cannot succeed)
EXCEPTIONS: dict[tuple[str, str], tuple[int, str, str]] = {
    ("POST", "/orders/{order_id}/tracking-links/revoke"): (
        404,
        "tracking_link_not_found",
        "the token is a random secret minted per tracking link; no fixed example names a live one",
    ),
    ("POST", "/promotion/coupons/redeem"): (
        404,
        "coupon_not_found",
        "redeemable codes are random, minted by POST /promotion/coupon-templates/{id}/codes",
    ),
}
# Whom an unguarded route (one checking the caller in its handler) is sent as.
CALLERS: dict[tuple[str, str], tuple[str, bool]] = {
    ("POST", "/orders/{order_id}/ship"): ("merchant", False),
    ("POST", "/orders/{order_id}/complete"): ("merchant", False),
}
# Roles whose demo staff work for the whole platform (the demo prints a platform risk token).
PLATFORM_ROLES = {"risk"}
PLACE = {
    "shop": DEMO_SHOP,
    "lines": [{"sku": "MUG-350", "quantity": 1}],
    "address": {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"},
}


def _ok(r: Any, *statuses: int) -> Any:
    assert r.status_code in (statuses or (200, 201)), f"{r.request.method} {r.request.url}: {r.text}"
    return r.json()


class Demo:
    """The seeded demo, and the objects its examples' paths name, made through the API."""

    def __init__(self, mallcore: Any) -> None:
        self.mallcore = mallcore
        self.kernel = mallcore.kernel(list(FIRST_PARTY_CENTERS))
        seed(self.kernel)
        self.app = mallcore.app(self.kernel)
        self.alice = self.as_("customer", "alice")
        self.merchant = self.as_("merchant", "merchant@demo")
        self.warehouse = self.as_("warehouse", "warehouse@demo")
        self.finance = self.as_("finance", "finance@platform", platform=True)
        self.risk = self.as_("risk", "risk@platform", platform=True)
        self.admin = self.as_("admin", "admin")

    def as_(self, role: str, subject: str | None = None, *, platform: bool = False) -> Any:
        if role in ("customer", "admin"):
            return self.mallcore.client(
                self.kernel, role, subject or ("alice" if role == "customer" else role)
            )
        shop = None if platform else DEMO_SHOP
        return self.mallcore.client(
            self.kernel,
            role,
            subject or f"{role}@{'platform' if platform else DEMO_SHOP}",
            shop=shop,
            platform=platform,
        )

    def one(self, table: str, column: str, **where: Any) -> Any:
        t = _table(self.kernel, table)
        stmt = sa.select(t.c[column])
        for key, value in where.items():
            stmt = stmt.where(t.c[key] == value)
        with self.kernel.db.transaction(write=False) as conn:
            value = conn.execute(stmt.order_by(t.c[column]).limit(1)).scalar()
        assert value is not None, (table, where)
        return value

    # -- orders ------------------------------------------------------------------

    def placed(self, body: dict[str, Any] | None = None, buyer: Any = None) -> dict[str, Any]:
        return _ok((buyer or self.alice).post("/orders", json=body or PLACE), 201)  # type: ignore[no-any-return]

    def paid(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        order = self.placed(body)
        _ok(self.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}), 201)
        return _ok(self.alice.get(f"/orders/{order['id']}"))  # type: ignore[no-any-return]

    def delivered(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        order = self.paid(body)
        return _ok(self.alice.post(f"/orders/{order['id']}/deliver"))  # type: ignore[no-any-return]

    # -- after-sale cases ------------------------------------------------------------

    def case(self, kind: str, status: str) -> dict[str, Any]:
        """A case of ``kind`` on a fresh delivered order, moved on until it is in ``status``."""
        order = self.delivered()
        body = {
            "order_id": order["id"],
            "type": kind,
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
            "reason": "not_wanted",
        }
        case = _ok(self.alice.post("/after-sales", json=body), 201)
        # the step that moves a case on from where it rests, and who takes it
        steps = {"requested": ("approve", self.merchant), "awaiting_return": ("receive", self.warehouse)}
        steps["inspected"] = ("repaired", self.merchant)
        while case["status"] != status:
            step, who = steps[case["status"]]
            case = _ok(who.post(f"/after-sales/{case['id']}/{step}", json={}))
        return case  # type: ignore[no-any-return]

    # -- the rest --------------------------------------------------------------------

    def review(self) -> int:
        """An order held by a rule for a person to look at."""
        _ok(
            self.risk.post(
                "/risk/rules",
                json={"name": "big order (test)", "condition": "order.total >= 100000", "shop": DEMO_SHOP},
            ),
            201,
        )
        big = {**PLACE, "lines": [{"sku": "TEE-BLACK-M", "quantity": 15}]}
        order = self.placed(big, buyer=self.as_("customer", "carol"))
        reviews = _ok(self.risk.get("/risk/reviews"))
        return next(r["id"] for r in reviews if r["order_id"] == order["id"])  # type: ignore[no-any-return]

    def mismatch(self) -> int:
        """A provider statement that lacks a payment of ours: a mismatch to resolve."""
        self.paid()
        header = "occurred_at,type,reference,original_reference,amount,currency"
        day = datetime.now(UTC).date().isoformat()
        _ok(
            self.finance.post(
                "/finance/reconciliations",
                params={"date": day},
                content=header,
                headers={"content-type": "text/csv"},
            ),
            201,
        )
        return _ok(self.finance.get("/finance/mismatches"))[0]["id"]  # type: ignore[no-any-return]

    def unknown_event(self) -> int:
        """A carrier's event about a waybill nobody filed."""
        event = {
            "tracking_no": "SBX000000000001",
            "status": "in_transit",
            "occurred_at": _now(),
            "location": "Hub",
        }
        _ok(signed(self.alice, "sandbox", event))
        return _ok(self.admin.get("/tms/unknown-events"))[0]["id"]  # type: ignore[no-any-return]

    def shipment(self) -> dict[str, Any]:
        order = self.paid()
        return _ok(self.alice.get(f"/orders/{order['id']}"))["shipments"][0]  # type: ignore[no-any-return]

    def path(self, method: str, path: str) -> str:
        """``path`` with each parameter a demo object in the state the operation needs."""
        step = path.rsplit("/", 1)[-1]
        if path.startswith("/orders/{order_id}"):
            if step in ("payments", "cancel", "revoke"):
                order = self.placed()
            elif step in ("ship", "deliver"):
                order = self.paid()
            else:
                order = self.delivered()
            return path.replace("{order_id}", str(order["id"]))
        if path.startswith("/after-sales/{case_id}"):
            status = {
                "approve": "requested",
                "reject": "requested",
                "cancel": "requested",
                "pickup": "awaiting_return",
                "return-shipment": "awaiting_return",
                "receive": "awaiting_return",
                "repaired": "inspected",
                "ship-back": "repaired",
            }[step]
            kind = "repair" if step in ("repaired", "ship-back") else "return_refund"
            return path.replace("{case_id}", str(self.case(kind, status)["id"]))
        if path.startswith("/finance/refunds/{refund_id}"):
            case = self.case("refund_only", "refund_pending_review")
            return path.replace("{refund_id}", str(case["refund_id"]))
        values: dict[str, Any] = {
            "product_id": lambda: self.one("catalog_skus", "product_id", code="TEE-WHITE-M"),
            "code": lambda: "SH" if path.startswith("/wms/") else "TEE-WHITE-M",
            "customer": lambda: "bob",
            "shop": lambda: DEMO_SHOP,
            "entry_id": lambda: _ok(self.finance.post("/finance/entries", json=ENTRY), 201)["id"],
            "settlement_id": lambda: _ok(self.finance.post("/finance/settlements", json=SETTLEMENT), 201)[
                "id"
            ],
            "mismatch_id": self.mismatch,
            "rule_id": lambda: self.one("risk_rules", "id"),
            "review_id": self.review,
            "report_id": lambda: _ok(self.merchant.post("/risk/reports", json=REPORT), 201)["id"],
            "campaign_id": lambda: self.one("promotion_campaigns", "id", shop=DEMO_SHOP),
            "template_id": lambda: self.one(
                "tms_templates" if path.startswith("/tms/") else "promotion_templates", "id", shop=DEMO_SHOP
            ),
            "shipment_id": lambda: self.shipment()["id"],
            "tracking_no": lambda: self.shipment()["tracking_no"],
            "event_id": self.unknown_event,
        }
        unknown = set(re.findall(r"\{(\w+)\}", path)) - set(values)
        assert not unknown, f"{method} {path}: say here how to make a demo object for {unknown}"
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]()), path)

    def caller(self, method: str, path: str, guards: list[str]) -> Any:
        """Someone the route lets in: its innermost guard's first role (demo staff)."""
        if (method, path) in CALLERS:
            role, platform = CALLERS[(method, path)]
            return self.as_(role, platform=platform)
        if not guards:
            return self.alice
        inner = guards[-1]
        role = inner[inner.index("(") + 1 : -1].split(", ")[0]
        return self.as_(role, platform=inner.startswith("platform(") or role in PLATFORM_ROLES)


ENTRY = {
    "memo": "test",
    "currency": "CNY",
    "postings": [{"account": "bank", "amount": 1}, {"account": "suspense", "amount": -1}],
}
SETTLEMENT = {"shop": DEMO_SHOP, "start": "2025-06-01", "end": "2025-06-30"}
REPORT = {"shop": DEMO_SHOP, "customer": "trent", "reason": "test"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _table(kernel: Any, name: str) -> sa.Table:
    for metadata in kernel.metadatas.values():
        if name in metadata.tables:
            return metadata.tables[name]
    raise KeyError(name)


def operations(demo: Demo) -> list[tuple[str, str, Any, list[str]]]:
    """(method, path, example, guards) of every documented operation with a JSON body."""
    guards: dict[tuple[str, str], list[str]] = {}
    for route in demo.app.routes:
        path = re.sub(r":\w+}", "}", route.path)
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items():
            layers = handler.ownership_layers
            guards[(method, path)] = [
                g.__qualname__
                for layer in layers
                for g in (getattr(layer, "guards", None) or ())
                if g.__qualname__.startswith(("roles(", "platform("))
            ]
    doc = _ok(demo.admin.get("/schema/openapi.json"))
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            examples = [e["value"] for e in (media.get("examples") or {}).values()]
            examples += list(media["schema"].get("examples") or [])
            out.append((method.upper(), path, examples[0], guards[(method.upper(), path)]))
    return out


@pytest.mark.timeout(240)
def test_every_body_example_works_against_the_demo_shop(mallcore):
    demo = Demo(mallcore)
    ops = operations(demo)
    # The body examples name order 1 and its line 1: the first order a fresh demo takes
    # (the POST /orders example's), once paid and delivered.
    place = next(example for method, path, example, _ in ops if (method, path) == ("POST", "/orders"))
    first = demo.delivered(place)
    assert (first["id"], first["lines"][0]["id"]) == (1, 1)
    accepted, excepted, failures = [], [], []
    for method, path, example, guards in ops:
        url = demo.path(method, path)
        r = demo.caller(method, path, guards).request(method, url, json=example)
        answer = (r.status_code, r.json().get("code") if r.status_code >= 400 else None)
        expected = EXCEPTIONS.get((method, path))
        if expected is not None:
            (excepted if answer == expected[:2] else failures).append(
                f"{method} {path} -> {answer}: {r.text[:300]}"
            )
        elif 200 <= r.status_code < 300:
            accepted.append(f"{method} {path}")
        else:
            failures.append(f"{method} {path} -> {answer}: {r.text[:300]}")
    print(
        f"{len(ops)} operations with a JSON body: {len(accepted)} examples accepted, {len(excepted)} exceptions"
    )
    assert failures == [], "\n".join(failures)
    assert len(accepted) + len(excepted) == len(ops) and len(ops) > 50
    assert set(EXCEPTIONS) <= {(m, p) for m, p, _, _ in ops}  # no stale exception
    # an exception is a state error (the object named does not exist), never a refused body
    assert {status for status, _, _ in EXCEPTIONS.values()} <= {404, 409}
