"""Under concurrency: one order per single-use coupon, never more coupons than a template holds,
never more flash units than a sale holds, per-customer limits held, counters equal their rows.

PostgreSQL with 16 threads at full size; SQLite (one writer at a time) at a smaller size."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from mallcore import testing

from .support import Shop

PG = bool(testing.test_database_url())
THREADS = 16 if PG else 8
ATTEMPTS, UNITS = (400, 100) if PG else (60, 20)


def race(jobs: list[Callable[[], Any]], threads: int = THREADS) -> list[Any]:
    """Run ``jobs`` on ``threads`` threads released together; their results in job order."""
    results: list[Any] = [None] * len(jobs)
    todo = iter(range(len(jobs)))
    take = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        while True:
            with take:
                i = next(todo, None)
            if i is None:
                return
            results[i] = jobs[i]()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for th in workers:
        th.start()
    for th in workers:
        th.join()
    return results


def answer(r: Any) -> tuple[int, str]:
    return r.status_code, "" if r.status_code == 201 else r.json().get("code", "")


def rows(shop: Shop, table: str, *columns: str) -> list[tuple[Any, ...]]:
    t = shop.kernel.metadatas["promotion"].tables[table]
    with shop.kernel.db.transaction(write=False) as conn:
        return [tuple(r) for r in conn.execute(sa.select(*(t.c[c] for c in columns)))]


def test_a_single_use_coupon_raced_by_concurrent_orders_goes_to_exactly_one(mallcore):
    shop = Shop(mallcore)
    codes = [shop.coupon(name=f"c{i}") for i in range(THREADS // 2)]
    alice = shop.customer()
    body = {"shop": "s1", "lines": [{"sku": "A", "quantity": 1}]}
    # two threads per coupon, all released at once
    jobs = [
        lambda code=code: alice.post("/orders", json={**body, "coupons": [code]})
        for code in codes
        for _ in (1, 2)
    ]
    tally = Counter(answer(r) for r in race(jobs))
    assert dict(tally) == {(201, ""): len(codes), (422, "coupon_used"): len(codes)}, tally
    locked = rows(shop, "promotion_coupons", "code", "status", "order_id")
    assert {code for code, status, order_id in locked if status == "locked" and order_id} == set(codes)
    assert len({order_id for _, _, order_id in locked}) == len(codes)


def test_a_template_claimed_by_many_at_once_issues_exactly_its_total_within_each_limit(mallcore):
    shop = Shop(mallcore)
    t = shop.template(total=UNITS, per_customer=2)
    # fewer customers than coupons: each tries several times, and the limit decides
    customers = [shop.customer(f"c{i}") for i in range(UNITS * 3 // 4)]
    url = f"/promotion/coupon-templates/{t['id']}/claim"
    tally = Counter(
        answer(r)
        for r in race([lambda i=i: customers[i % len(customers)].post(url) for i in range(ATTEMPTS)])
    )
    assert tally[(201, "")] == UNITS, tally
    assert set(tally) <= {(201, ""), (409, "coupons_sold_out"), (409, "coupon_limit_reached")}, tally
    coupons = rows(shop, "promotion_coupons", "customer")
    assert len(coupons) == UNITS
    per_customer = Counter(c for (c,) in coupons)
    assert max(per_customer.values()) == 2
    assert dict(rows(shop, "promotion_claims", "customer", "claimed")) == dict(per_customer)
    assert rows(shop, "promotion_templates", "issued") == [(UNITS,)]


def test_a_flash_sale_bought_by_many_at_once_sells_exactly_its_units_at_the_flash_price(mallcore):
    shop = Shop(mallcore)
    sale = shop.campaign("flash_sale", {"price": 5000, "quantity": UNITS, "per_customer": 2}, skus=["A"])
    customers = [shop.customer(f"b{i}") for i in range(UNITS * 3 // 4)]  # each buys several times
    body = {"shop": "s1", "lines": [{"sku": "A", "quantity": 1}]}
    replies = race(
        [lambda i=i: customers[i % len(customers)].post("/orders", json=body) for i in range(ATTEMPTS)]
    )
    assert Counter(answer(r) for r in replies) == {(201, ""): ATTEMPTS}
    totals = Counter(r.json()["total"] for r in replies)
    assert totals == {5000: UNITS, 10000: ATTEMPTS - UNITS}, totals
    flash_buyers = Counter(r.json()["customer"] for r in replies if r.json()["total"] == 5000)
    assert max(flash_buyers.values()) == 2
    assert rows(shop, "promotion_campaigns", "sold") == [(UNITS,)]
    held: Counter[str] = Counter()
    for customer, units, campaign_id in rows(shop, "promotion_usages", "customer", "units", "campaign_id"):
        assert campaign_id == sale["id"]
        held[customer] += units
    assert held == flash_buyers
    # a buyer who lost the race keeps a row at zero
    counted = {
        customer: units for customer, units in rows(shop, "promotion_buyers", "customer", "units") if units
    }
    assert counted == dict(flash_buyers)
