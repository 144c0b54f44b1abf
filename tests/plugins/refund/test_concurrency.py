"""Concurrent cases on one order never refund more than was paid.

Run with ``MALLCORE_TEST_DATABASE_URL`` set, these race real transactions on
PostgreSQL (the kernel's stage locks the order row); on SQLite writers queue.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mallcore.plugins.refund import tables as rt

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


def _changed_meanwhile(kernel: Any, conn: Any, case_id: int, status: str) -> None:
    """Another writer moves the case after the request read it, and before it writes."""
    change = rt.cases.update().where(rt.cases.c.id == case_id).values(status=status)
    if kernel.db.is_sqlite:
        # SQLite lets one writer in at a time: the change goes in the request's own
        # transaction, and is rolled back with it.
        conn.execute(change)
    else:
        # Its own transaction, committed before the request writes: the request only read
        # the case row (the stage locks the order row, and a writer that bypasses it races).
        with kernel.db.engine.begin() as other:
            other.execute(change)


def test_a_step_that_lost_a_race_answers_write_conflict_and_writes_nothing(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    timeline = shop.admin.get(f"/orders/{order['id']}/timeline").json()
    steps = list(shop.carrier.steps)
    records = shop.center.cases.records
    load = records.load

    def load_then_lose_the_race(conn: Any, case_id: int) -> Any:
        found = load(conn, case_id)
        _changed_meanwhile(shop.kernel, conn, case_id, "cancelled")
        return found

    monkeypatch.setattr(records, "load", load_then_lose_the_race)
    r = shop.merchant.post(f"/after-sales/{case['id']}/approve", headers={"Idempotency-Key": "a-1"})
    # approving was allowed when the case was read: retry, not "illegal"
    assert (r.status_code, r.json()["code"]) == (409, "write_conflict"), r.text
    monkeypatch.undo()
    assert timeline == shop.admin.get(f"/orders/{order['id']}/timeline").json()
    assert steps == shop.carrier.steps
    # the retry (same key: nothing was stored for it) meets the case as it now is
    retry = shop.merchant.post(f"/after-sales/{case['id']}/approve", headers={"Idempotency-Key": "a-1"})
    if shop.kernel.db.is_sqlite:
        # the other write went, and was rolled back, with the request: still requested
        assert (retry.status_code, retry.json()["status"]) == (200, "awaiting_return")
    else:
        # the other writer's change stands: now approving is not allowed
        assert shop.case(case["id"])["status"] == "cancelled"
        assert (retry.status_code, retry.json()["code"]) == (409, "invalid_transition")


def test_a_step_the_state_does_not_allow_still_answers_invalid_transition(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    assert shop.alice.post(f"/after-sales/{case['id']}/cancel").status_code == 200
    r = shop.merchant.post(f"/after-sales/{case['id']}/approve")
    assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")
