"""Shops: every order belongs to one; staff act only within theirs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import tables as t
from .errors import Rejected
from .types import Shop, utcnow

if TYPE_CHECKING:
    from .db import Database


class ShopService:
    """Shop rows, cached per process (shops change rarely, orders read them constantly).

    ``currency`` is what a shop created without one uses (``orders.currency``).
    """

    def __init__(self, db: Database, *, currency: str) -> None:
        self.db = db
        self.currency = currency
        self._cache: dict[str, Shop] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> Shop:
        shop = self._cache.get(code)
        if shop is None:
            with self.db.transaction(write=False) as conn:
                row = conn.execute(sa.select(t.shops).where(t.shops.c.code == code)).first()
            if row is None:
                raise Rejected(f"shop '{code}' does not exist", code="shop_unknown")
            shop = Shop(row.code, row.name, row.currency)
            with self._lock:
                self._cache[code] = shop
        return shop

    def find(self, conn: sa.Connection, code: str) -> Shop | None:
        row = conn.execute(sa.select(t.shops).where(t.shops.c.code == code)).first()
        return None if row is None else Shop(row.code, row.name, row.currency)

    def ensure(
        self, conn: sa.Connection, code: str, name: str | None = None, currency: str | None = None
    ) -> Shop:
        """Create the shop in this transaction if it does not exist yet."""
        shop = self.find(conn, code)
        if shop is None:
            shop = Shop(code, name or code, currency or self.currency)
            conn.execute(
                t.shops.insert().values(
                    code=shop.code, name=shop.name, currency=shop.currency, created_at=utcnow()
                )
            )
        return shop

    def all(self) -> list[Shop]:
        with self.db.transaction(write=False) as conn:
            return [
                Shop(r.code, r.name, r.currency)
                for r in conn.execute(sa.select(t.shops).order_by(t.shops.c.code))
            ]
