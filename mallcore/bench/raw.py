"""The baseline: a bare Litestar app on the same server stack, raw SQL only.

``POST /orders`` decodes the same request body as mallcore, then in ONE
transaction, through the database driver directly (no SQLAlchemy, no hooks):

1. reads the SKUs' prices (a real order cannot be written without them),
2. inserts the order row (mallcore's own ``orders`` table),
3. inserts the lines (``order_lines``, one executemany),
4. reserves stock with a conditional UPDATE per line (one executemany) and
   refuses the order if any line is short (``on_hand - reserved >= qty``),
5. inserts one reservation row per line (one executemany),
6. inserts one event into ``outbox``,

and commits. ``POST /hot`` is the hot-SKU baseline: one conditional UPDATE
of one SKU's stock, committed. Like mallcore, SQLite writers take ``BEGIN
IMMEDIATE`` behind an in-process lock; PostgreSQL runs at READ COMMITTED.
The app is built by :func:`app_from_environment` in each uvicorn worker.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Litestar, Response, post
from litestar.params import JSONBody

from mallcore.kernel.schemas import PlaceOrder

DDL = [
    "CREATE TABLE IF NOT EXISTS bench_stock (sku VARCHAR(64) PRIMARY KEY, price BIGINT NOT NULL, "
    "on_hand INTEGER NOT NULL, reserved INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_reservations (id {serial} PRIMARY KEY, order_id BIGINT NOT NULL, "
    "line_id BIGINT NOT NULL, sku VARCHAR(64) NOT NULL, quantity INTEGER NOT NULL, created_at {time} NOT NULL)",
]


class HotBuy(msgspec.Struct):
    sku: str
    quantity: int = 1


class Raw:
    def __init__(self, url: str, schema: str | None) -> None:
        self.sqlite = url.startswith("sqlite")
        self.url = url
        self.schema = schema
        self.local = threading.local()
        self.conn: Any = None
        self.lock = threading.Lock() if self.sqlite else None
        self.p = "?" if self.sqlite else "%s"

    def connect(self) -> Any:
        # SQLite: one connection shared behind the write lock (as mallcore does);
        # PostgreSQL: one per thread.
        holder: Any = self if self.sqlite else self.local
        conn = getattr(holder, "conn", None)
        if conn is None:
            if self.sqlite:
                conn = sqlite3.connect(
                    self.url.split("///", 1)[1], isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
            else:
                import psycopg

                dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
                options = f"-csearch_path={self.schema}" if self.schema else None
                conn = psycopg.connect(dsn, options=options) if options else psycopg.connect(dsn)
            holder.conn = conn
        return conn

    def transaction(self, work: Any) -> Any:
        conn = self.connect()
        if self.lock is not None:
            with self.lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn.cursor())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
        with conn.transaction():
            return work(conn.cursor())

    def place(self, data: PlaceOrder) -> tuple[int, bytes]:
        p = self.p
        now = datetime.now(UTC)
        stamp = now.replace(tzinfo=None) if self.sqlite else now
        skus = [line.sku for line in data.lines]

        def work(cur: Any) -> tuple[int, bytes]:
            cur.execute(
                f"SELECT sku, price FROM bench_stock WHERE sku IN ({', '.join([p] * len(skus))})", skus
            )
            prices = dict(cur.fetchall())
            if len(prices) != len(set(skus)):
                return 422, b'{"code":"sku_unknown"}'
            total = sum(prices[line.sku] * line.quantity for line in data.lines)
            address = json.dumps(msgspec.to_builtins(data.address)) if data.address else None
            cur.execute(
                "INSERT INTO orders (shop, customer, status, currency, subtotal, discount, shipping, fees, total, "
                "paid, refunded, address, points, placed_at, updated_at) VALUES "
                f"({p}, {p}, {p}, {p}, {p}, 0, 0, 0, {p}, 0, 0, {p}, 0, {p}, {p}) RETURNING id",
                (data.shop, "bench", "awaiting_payment", "CNY", total, total, address, stamp, stamp),
            )
            order_id = cur.fetchone()[0]
            line_ids = []
            for no, line in enumerate(data.lines, 1):
                amount = prices[line.sku] * line.quantity
                line_ids.append(
                    (
                        order_id,
                        no,
                        line.sku,
                        line.sku,
                        line.quantity,
                        prices[line.sku],
                        amount,
                        0,
                        0,
                        0,
                        amount,
                    )
                )
            cur.executemany(
                "INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price, subtotal, discount, "
                f"shipping, fees, total, weight_grams) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 0)",
                line_ids,
            )
            cur.executemany(
                f"UPDATE bench_stock SET reserved = reserved + {p} WHERE sku = {p} AND on_hand - reserved >= {p}",
                [(line.quantity, line.sku, line.quantity) for line in data.lines],
            )
            # Both drivers sum executemany's rowcount over the statements.
            if cur.rowcount != len(data.lines):
                raise _OutOfStock
            cur.executemany(
                "INSERT INTO bench_reservations (order_id, line_id, sku, quantity, created_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p})",
                [(order_id, no, line.sku, line.quantity, stamp) for no, line in enumerate(data.lines, 1)],
            )
            cur.execute(
                f"INSERT INTO outbox (topic, order_id, payload, created_at) VALUES ({p}, {p}, {p}, {p})",
                ("order.placed", order_id, json.dumps({"total": total}), stamp),
            )
            return 201, msgspec.json.encode({"id": order_id, "status": "awaiting_payment", "total": total})

        try:
            return self.transaction(work)
        except _OutOfStock:
            return 409, b'{"code":"out_of_stock"}'

    def hot(self, data: HotBuy) -> int:
        p = self.p

        def work(cur: Any) -> int:
            cur.execute(
                f"UPDATE bench_stock SET reserved = reserved + {p} WHERE sku = {p} AND on_hand - reserved >= {p}",
                (data.quantity, data.sku, data.quantity),
            )
            return cur.rowcount

        return 201 if self.transaction(work) == 1 else 409


class _OutOfStock(Exception):
    pass


def app_from_environment() -> Litestar:
    raw = Raw(os.environ["MALLCORE_BENCH_URL"], os.environ.get("MALLCORE_BENCH_SCHEMA") or None)

    @post("/orders", status_code=201, sync_to_thread=True)
    def place(data: JSONBody[PlaceOrder]) -> Response[Any]:
        status, body = raw.place(data)
        return Response(content=body, status_code=status, media_type="application/json")

    @post("/hot", status_code=201, sync_to_thread=True)
    def hot(data: JSONBody[HotBuy]) -> Response[Any]:
        status = raw.hot(data)
        return Response(content=b"{}", status_code=status, media_type="application/json")

    # As mallcore's own server does (kernel/http/app.py): its start-up heap out of the
    # collector's sight, so neither side pays full collections over long-lived objects.
    return Litestar([place, hot], logging_config=None, openapi_config=None, on_startup=[_freeze_heap])


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def prepare(url: str, schema: str | None, skus: dict[str, tuple[int, int]]) -> None:
    """Create the baseline's two extra tables and stock ``{sku: (price, on_hand)}``."""
    raw = Raw(url, schema)
    serial, time_type = ("INTEGER", "TIMESTAMP") if raw.sqlite else ("BIGSERIAL", "TIMESTAMPTZ")

    def work(cur: Any) -> None:
        for ddl in DDL:
            cur.execute(ddl.format(serial=serial, time=time_type))
        cur.execute("DELETE FROM bench_stock")
        cur.executemany(
            f"INSERT INTO bench_stock (sku, price, on_hand, reserved) VALUES ({raw.p}, {raw.p}, {raw.p}, 0)",
            [(sku, price, qty) for sku, (price, qty) in skus.items()],
        )

    raw.transaction(work)
    raw.connect().close()


def stock(url: str, schema: str | None, sku: str) -> tuple[int, int]:
    raw = Raw(url, schema)
    cur = raw.connect().cursor()
    cur.execute(f"SELECT on_hand, reserved FROM bench_stock WHERE sku = {raw.p}", (sku,))
    row = cur.fetchone()
    raw.connect().close()
    return int(row[0]), int(row[1])
