"""Concurrent cases on one order never refund more than was paid.

Run with ``MALLCORE_TEST_DATABASE_URL`` set, these race real transactions on
PostgreSQL (the kernel's stage locks the order row); on SQLite writers queue.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .conftest import Shop


def _together(calls: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_concurrent_cases_on_the_same_units(shop: Shop) -> None:
    order = shop.order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]["id"]
    results = _together(
        [lambda: shop.open(order, "refund_only", [(tee, 2)], reason="not_wanted") for _ in range(8)]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7, [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"quantity_exceeds_available"}
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == 2 * 7900
    cases = shop.alice.get("/after-sales", params={"order_id": order["id"]}).json()
    assert len(cases) == 1 and cases[0]["status"] == "refunded"


def test_concurrent_approvals_refund_exactly_what_was_paid(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 3), ("MUG", 2)])
    tee, mug = order["lines"][0]["id"], order["lines"][1]["id"]
    split = [(tee, 1), (tee, 1), (tee, 1), (mug, 1), (mug, 1)]
    ids = []
    for line_id, qty in split:
        r = shop.open(order, "refund_only", [(line_id, qty)], reason="missing")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    # and two more asking for units already claimed
    assert shop.open(order, "refund_only", [(tee, 1)]).status_code == 409
    results = _together(
        [lambda cid=cid: shop.merchant.post(f"/after-sales/{cid}/approve") for cid in ids * 2]
    )
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) == len(ids), [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code != 200} == {"invalid_transition"}
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == o["paid"] == 3 * 7900 + 2 * 3900
    assert o["status"] == "closed"
    with shop.kernel.db.transaction(write=False) as conn:
        import sqlalchemy as sa

        from mallcore.kernel import tables as kt

        refunds = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(kt.refunds.c.amount)).where(
                kt.refunds.c.order_id == order["id"]
            )
        ).one()
    assert refunds == (len(ids), o["paid"])
