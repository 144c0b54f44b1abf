"""No oversell under concurrent placement, over HTTP, on PostgreSQL and on SQLite."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from mallcore import testing
from mallcore.plugins.wms import tables as t

from .helpers import Shop, address, check_invariants, live_by_order

ATTEMPTS = 400
UNITS = 100


def hammer(
    mallcore: Any, layout: dict[str, int], threads: int, attempts: int = ATTEMPTS, units: int = UNITS
) -> Shop:
    shop = Shop(mallcore, skus=[("HOT", 999, 100)])
    for code, stocked in layout.items():
        shop.inbound(code, "HOT", stocked)
    assert sum(layout.values()) == units
    clients = [mallcore.client(shop.kernel, "customer", f"buyer-{i}") for i in range(threads)]
    regions = ["310115", "440105", "110105"]
    todo = iter(range(attempts))
    take = threading.Lock()
    start = threading.Barrier(threads + 1)
    done = threading.Event()
    replies: list[tuple[int, str]] = []
    lowest: list[int] = []

    def buyer(client: Any) -> None:
        start.wait()
        while True:
            with take:
                n = next(todo, None)
            if n is None:
                return
            r = client.post(
                "/orders",
                json={
                    "shop": "s1",
                    "lines": [{"sku": "HOT", "quantity": 1}],
                    "address": address(regions[n % 3]),
                },
            )
            replies.append((r.status_code, r.json().get("code", "") if r.status_code != 201 else ""))

    def watcher() -> None:
        s = t.stock.c
        start.wait()
        while not done.is_set():
            with shop.kernel.db.transaction(write=False) as conn:
                lowest.append(conn.execute(sa.select(sa.func.min(s.on_hand - s.reserved))).scalar_one())
            done.wait(0.01)

    workers = [threading.Thread(target=buyer, args=(c,)) for c in clients]
    watch = threading.Thread(target=watcher)
    for th in [*workers, watch]:
        th.start()
    for th in workers:
        th.join()
    done.set()
    watch.join()

    assert len(replies) == attempts
    tally = Counter(replies)
    assert dict(tally) == {(201, ""): units, (409, "out_of_stock"): attempts - units}, tally
    assert lowest and min(lowest) >= 0
    levels = shop.stock()
    assert {code: (stocked, stocked, 0) for code, stocked in layout.items()} == {
        wh: (v["on_hand"], v["reserved"], v["available"]) for (_, wh), v in levels.items()
    }
    assert sum(live_by_order(shop.kernel).values()) == units
    assert len(live_by_order(shop.kernel)) == units
    check_invariants(shop.kernel)
    return shop


LAYOUTS = [
    pytest.param({"SH": 100}, id="one-warehouse"),
    pytest.param({"SH": 60, "GZ": 25, "BJ": 15}, id="three-warehouses"),
]


@pytest.mark.skipif(
    not testing.test_database_url(), reason="needs PostgreSQL: set MALLCORE_TEST_DATABASE_URL"
)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_oversell_on_postgresql(mallcore, layout):
    hammer(mallcore, layout, threads=16)


@pytest.mark.skipif(
    bool(testing.test_database_url()), reason="the SQLite variant; PostgreSQL runs the test above"
)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_oversell_on_sqlite_and_no_locked_database(mallcore, layout):
    # Every reply is 201 or 409 out_of_stock: a "database is locked" (500/503) fails the tally.
    hammer(mallcore, layout, threads=32)


def test_a_flash_sale_of_1000_units_to_2000_attempts_from_64_clients_never_oversells(mallcore):
    """With combining on (the default): batches form, each order is whole or refused
    (409 out_of_stock), and exactly the stock is sold. SQLite, or PostgreSQL when set."""
    shop = hammer(mallcore, {"SH": 1000}, threads=64, attempts=2000, units=1000)
    combiner = shop.kernel.combiner
    assert combiner is not None and combiner.batches > 0 and combiner.combined > combiner.batches
