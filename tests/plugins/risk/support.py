"""Kernels and clients for the risk center's tests."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADDRESS

CENTERS = ("catalog", "payment", "wms", "risk")


def risk_kernel(
    mallcore: Any, *, centers: tuple[str, ...] = CENTERS, risk: dict[str, Any] | None = None, **kw: Any
) -> Any:
    settings = {"risk": {"cache_recheck_seconds": 0, **(risk or {})}, **kw.pop("settings", {})}
    kernel = mallcore.kernel(centers=centers, settings=settings, **kw)
    mallcore.product(kernel, shop="s1", skus=[("SKU-1", 1000), ("SKU-2", 60000)])
    mallcore.product(kernel, shop="s2", skus=[("OTHER-1", 500)])
    if "wms" in centers:
        stock(mallcore, kernel, {"SKU-1": 1000, "SKU-2": 100, "OTHER-1": 100})
    return kernel


def stock(mallcore: Any, kernel: Any, skus: dict[str, int]) -> None:
    wh = mallcore.client(kernel, "warehouse", "wh-admin", platform=True)
    r = wh.post("/wms/warehouses", json={"code": "WH1", "name": "Main", "region": "310000"})
    assert r.status_code in (201, 409), r.text
    for sku, qty in skus.items():
        r = wh.post("/wms/inbound", json={"warehouse": "WH1", "sku": sku, "quantity": qty})
        assert r.status_code == 201, r.text


def order(
    shop: str = "s1", sku: str = "SKU-1", quantity: int = 1, address: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"shop": shop, "lines": [{"sku": sku, "quantity": quantity}], "address": address or ADDRESS}


def staff(mallcore: Any, kernel: Any, shop: str | None = None, subject: str = "risk-1") -> Any:
    """Risk staff of ``shop``, or of the platform without one."""
    return mallcore.client(kernel, "risk", subject, shop=shop, platform=shop is None)


def rule(client: Any, condition: str, action: str = "review", **extra: Any) -> dict[str, Any]:
    r = client.post(
        "/risk/rules",
        json={"name": extra.pop("name", condition[:60]), "condition": condition, "action": action, **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()


def listed(client: Any, kind: str, value: str, action: str = "block", **extra: Any) -> dict[str, Any]:
    r = client.post(
        "/risk/lists", json={"kind": kind, "value": value, "action": action, "reason": "test", **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


class PeerApp:
    """The app, with the socket's peer taken from an ``X-Test-Peer`` header: the test
    client always connects as "testclient", and risk counts IP addresses."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"x-test-peer":
                    scope = {**scope, "client": (value.decode(), 50000)}
        await self.app(scope, receive, send)
