"""A shop with products, campaigns and coupons, driven over HTTP, for the promotion tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import order_body

CENTERS = ["catalog", "payment", "promotion"]


def later(days: float = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def earlier(days: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


class Shop:
    """Shop ``s1`` (and ``s2``): SKUs, a merchant, an admin, customers on demand."""

    def __init__(
        self,
        mallcore: Any,
        skus: list[tuple[str, int]] | None = None,
        *,
        centers: list[str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.kit = mallcore
        self.kernel = mallcore.kernel(centers=centers or CENTERS, settings=settings)
        mallcore.product(self.kernel, shop="s1", skus=skus or [("A", 10000), ("B", 5000), ("C", 2000)])
        mallcore.product(self.kernel, shop="s2", skus=[("OTHER", 3000)], name="Other shop's product")
        self.merchant = mallcore.client(self.kernel, "merchant", "m1", shop="s1")
        self.admin = mallcore.client(self.kernel, "admin", "root")
        self._customers: dict[str, Any] = {}

    def customer(self, name: str = "alice") -> Any:
        if name not in self._customers:
            self._customers[name] = self.kit.client(self.kernel, "customer", name)
        return self._customers[name]

    def campaign(self, kind: str, rules: dict[str, Any], *, by: Any = None, **fields: Any) -> dict[str, Any]:
        body = {
            "shop": "s1",
            "name": fields.pop("name", kind),
            "type": kind,
            "ends_at": later(),
            "rules": rules,
        }
        body.update(fields)
        r = (by or self.merchant).post("/promotion/campaigns", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def template(self, *, by: Any = None, **fields: Any) -> dict[str, Any]:
        body = {
            "shop": "s1",
            "name": "coupon",
            "kind": "amount",
            "value": 1000,
            "total": 100,
            "valid_to": later(),
        }
        body.update(fields)
        r = (by or self.merchant).post("/promotion/coupon-templates", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def template_ids(self) -> list[int]:
        return sorted(t["id"] for t in self.merchant.get("/promotion/coupon-templates").json())

    def coupon(self, customer: str = "alice", **fields: Any) -> str:
        template = self.template(**fields)
        r = self.customer(customer).post(f"/promotion/coupon-templates/{template['id']}/claim")
        assert r.status_code == 201, r.text
        return str(r.json()["code"])

    def place(self, lines: list[tuple[str, int]], customer: str = "alice", **extra: Any) -> Any:
        return self.customer(customer).post("/orders", json=order_body("s1", lines, **extra))

    def preview(self, lines: list[tuple[str, int]], customer: str = "alice", **extra: Any) -> Any:
        return self.customer(customer).post("/orders/preview", json=order_body("s1", lines, **extra))

    def wallet(self, customer: str = "alice", **params: Any) -> dict[str, str]:
        r = self.customer(customer).get("/promotion/coupons", params=params)
        assert r.status_code == 200, r.text
        return {c["code"]: c["status"] for c in r.json()}


def promo(order: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The order's promotion adjustments as (code, amount, reason)."""
    return [(a["code"], a["amount"], a["reason"]) for a in order["adjustments"] if a["source"] == "promotion"]
