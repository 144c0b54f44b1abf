"""Helpers for the WMS tests: a shop with warehouses and stock, and the ledger invariants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from mallcore.kernel import Kernel
from mallcore.plugins.wms import tables as t

CENTERS = ("catalog", "payment", "wms")

# (code, region): Shanghai, Guangzhou, Beijing
WAREHOUSES = (("SH", "310000"), ("GZ", "440100"), ("BJ", "110000"))


def address(region: str = "310115") -> dict[str, str]:
    return {"name": "Alice", "phone": "13800000000", "region": region, "detail": "1 Test Rd"}


class Shop:
    """A kernel with catalog, payment and WMS, warehouses, and clients for each role."""

    def __init__(
        self,
        kit: Any,
        *,
        settings: dict[str, Any] | None = None,
        skus: Sequence[tuple[str, int, int]] = (("TEE", 1999, 200), ("MUG", 3900, 400), ("CAP", 2500, 100)),
        warehouses: Iterable[tuple[str, str]] = WAREHOUSES,
        extra: Sequence[Any] = (),
        centers: Sequence[str] = CENTERS,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.kit = kit
        self.kernel: Kernel = kit.kernel(
            centers=list(centers), settings={"wms": settings or {}}, extra=extra, config=config
        )
        kit.product(self.kernel, shop="s1", skus=list(skus))
        self.admin = kit.client(self.kernel, "admin", "root")
        self.warehouse = kit.client(self.kernel, "warehouse", "wh-platform", platform=True)
        for code, region in warehouses:
            r = self.admin.post(
                "/wms/warehouses", json={"code": code, "name": f"{code} warehouse", "region": region}
            )
            assert r.status_code == 201, r.text
        self.alice = kit.client(self.kernel, "customer", "alice")

    @property
    def center(self) -> Any:
        return self.kernel.centers["wms"]

    def inbound(self, warehouse: str, sku: str, quantity: int) -> dict[str, Any]:
        r = self.warehouse.post(
            "/wms/inbound", json={"warehouse": warehouse, "sku": sku, "quantity": quantity}
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def place(self, lines: dict[str, int], region: str = "310115", client: Any = None) -> Any:
        return (client or self.alice).post(
            "/orders",
            json={
                "shop": "s1",
                "lines": [{"sku": sku, "quantity": q} for sku, q in lines.items()],
                "address": address(region),
            },
        )

    def placed(self, lines: dict[str, int], region: str = "310115", client: Any = None) -> dict[str, Any]:
        r = self.place(lines, region, client)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def pay(self, order_id: int, client: Any = None) -> Any:
        return (client or self.alice).post(f"/orders/{order_id}/payments", json={"method": "sandbox"})

    def stock(self) -> dict[tuple[str, str], dict[str, int]]:
        return stock_levels(self.kernel)

    def order(self, order_id: int) -> dict[str, Any]:
        r = self.admin.get(f"/orders/{order_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def timeline(self, order_id: int) -> list[dict[str, Any]]:
        r = self.admin.get(f"/orders/{order_id}/timeline")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def wms_order(self, order_id: int) -> dict[str, Any]:
        r = self.admin.get(f"/wms/orders/{order_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def stock_levels(kernel: Kernel) -> dict[tuple[str, str], dict[str, int]]:
    s = t.stock.c
    with kernel.db.transaction(write=False) as conn:
        return {
            (row.sku, row.warehouse): {
                "on_hand": row.on_hand,
                "reserved": row.reserved,
                "available": row.on_hand - row.reserved,
                "b_grade": row.b_grade,
                "quarantine": row.quarantine,
            }
            for row in conn.execute(sa.select(t.stock).order_by(s.sku, s.warehouse))
        }


def check_invariants(kernel: Kernel) -> None:
    """For every SKU and warehouse: each stock column = sum of its movements,
    reserved = sum of live reservations, available >= 0, no bucket negative."""
    m, r = t.movements.c, t.reservations.c
    columns = ("on_hand", "reserved", "b_grade", "quarantine")
    with kernel.db.transaction(write=False) as conn:
        stock = {(row.sku, row.warehouse): row._mapping for row in conn.execute(sa.select(t.stock))}
        ledger = {
            (row.sku, row.warehouse): row._mapping
            for row in conn.execute(
                sa.select(
                    m.sku, m.warehouse, *(sa.func.sum(getattr(m, c)).label(c) for c in columns)
                ).group_by(m.sku, m.warehouse)
            )
        }
        live: dict[tuple[str, str], int] = defaultdict(int)
        for row in conn.execute(
            sa.select(r.sku, r.warehouse, sa.func.sum(r.quantity))
            .where(r.status == "live")
            .group_by(r.sku, r.warehouse)
        ):
            live[(row[0], row[1])] = int(row[2])
    for key in set(stock) | set(ledger) | set(live):
        row = stock.get(key)
        levels = {c: (row[c] if row is not None else 0) for c in columns}
        sums = {c: int(ledger[key][c]) if key in ledger else 0 for c in columns}
        assert levels == sums, f"{key}: stock {levels} != movements {sums}"
        assert levels["reserved"] == live.get(key, 0), (
            f"{key}: reserved {levels['reserved']} != live {live.get(key, 0)}"
        )
        assert levels["on_hand"] - levels["reserved"] >= 0, f"{key}: available below zero: {levels}"
        assert min(levels.values()) >= 0, f"{key}: negative bucket: {levels}"


def live_by_order(kernel: Kernel) -> dict[int, int]:
    r = t.reservations.c
    with kernel.db.transaction(write=False) as conn:
        return {
            row[0]: int(row[1])
            for row in conn.execute(
                sa.select(r.order_id, sa.func.sum(r.quantity)).where(r.status == "live").group_by(r.order_id)
            )
        }


def movements(kernel: Kernel, **where: Any) -> list[Any]:
    m = t.movements.c
    stmt = sa.select(t.movements).order_by(m.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(m, key) == value)
    with kernel.db.transaction(write=False) as conn:
        return list(conn.execute(stmt))
