"""Small helpers shared by the project's tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mallcore.kernel import Kernel

ADDRESS = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}


def order_body(shop: str = "s1", lines: list[tuple[str, int]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shop": shop,
        "lines": [{"sku": sku, "quantity": q} for sku, q in (lines or [("SKU-1", 1)])],
        "address": ADDRESS,
    }
    body.update(extra)
    return body


def snapshot(kernel: Kernel) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the kernel, for "nothing was written" checks."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with kernel.db.transaction(write=False) as conn:
        for metadata in kernel.metadatas.values():
            for name, table in metadata.tables.items():
                if name == "kernel_meta":
                    continue
                rows = conn.execute(sa.select(table)).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def count(kernel: Kernel, table: str, **where: Any) -> int:
    for metadata in kernel.metadatas.values():
        if table in metadata.tables:
            t = metadata.tables[table]
            stmt = sa.select(sa.func.count()).select_from(t)
            for key, value in where.items():
                stmt = stmt.where(t.c[key] == value)
            with kernel.db.transaction(write=False) as conn:
                return int(conn.execute(stmt).scalar_one())
    raise KeyError(table)
