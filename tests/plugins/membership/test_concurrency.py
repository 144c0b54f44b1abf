"""Concurrent orders spending the same points: the balance never goes below zero, and exactly
the orders that fit succeed."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from mallcore import testing
from mallcore.plugins.membership import tables as t

from .kit import Shop

BALANCE, EACH, ATTEMPTS = 1_000, 100, 40  # ten orders fit


def spend_at_once(mallcore: Any, threads: int) -> None:
    shop = Shop(mallcore)
    shop.give("alice", BALANCE)
    shop.set_level("alice", "gold")  # the member price too: the same row read and written
    clients = [mallcore.client(shop.kernel, "customer", "alice") for _ in range(threads)]
    todo = iter(range(ATTEMPTS))
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
                json={"shop": "s1", "lines": [{"sku": "CAP", "quantity": 1}], "points": EACH},
            )
            replies.append((r.status_code, r.json().get("code", "") if r.status_code != 201 else ""))

    def watcher() -> None:
        m = t.members.c
        start.wait()
        while not done.is_set():
            with shop.kernel.db.transaction(write=False) as conn:
                lowest.append(conn.execute(sa.select(sa.func.min(m.points))).scalar_one())
            done.wait(0.005)

    workers = [threading.Thread(target=buyer, args=(c,)) for c in clients]
    watch = threading.Thread(target=watcher)
    for th in [*workers, watch]:
        th.start()
    for th in workers:
        th.join()
    done.set()
    watch.join()

    tally = Counter(replies)
    fit = BALANCE // EACH
    assert dict(tally) == {(201, ""): fit, (422, "points_insufficient"): ATTEMPTS - fit}, tally
    assert lowest and min(lowest) >= 0
    me = shop.member()
    assert (me["points"], me["held"]) == (0, BALANCE)
    assert len([r for r in shop.ledger() if r["kind"] == "hold"]) == fit
    shop.invariant()


@pytest.mark.skipif(
    not testing.test_database_url(), reason="needs PostgreSQL: set MALLCORE_TEST_DATABASE_URL"
)
def test_sixteen_threads_spending_the_same_points_on_postgresql_never_overspend(mallcore):
    spend_at_once(mallcore, threads=16)


@pytest.mark.skipif(
    bool(testing.test_database_url()), reason="the SQLite variant; PostgreSQL runs the test above"
)
def test_threads_spending_the_same_points_on_sqlite_never_overspend(mallcore):
    spend_at_once(mallcore, threads=8)
