"""Finance users racing on one review: it is paid out once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .kit import Shop


def race(calls: list[Any]) -> list[Any]:
    start = threading.Barrier(len(calls))
    replies: list[Any] = []

    def run(call: Any) -> None:
        start.wait()
        replies.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    return replies


def test_racing_approvals_and_rejections_pay_a_refund_at_most_once(mallcore):
    shop = Shop(mallcore, settings={"second_approval_above": 3000})
    reviewers = [shop.client("finance", f"fin-{i}", shop="s1") for i in range(4)]
    for _ in range(3):
        order = shop.paid_order([("TEE", 2)])
        small = shop.refund(order["id"], [(order["lines"][0]["id"], 1)])  # 1999: one approval
        url = f"/finance/refunds/{small['id']}"
        replies = race(
            [lambda c=c, url=url: c.post(f"{url}/approve") for c in reviewers[:3]]
            + [lambda url=url: reviewers[3].post(f"{url}/reject", json={"reason": "race"})]
        )
        codes = Counter(r.status_code for r in replies)
        assert codes[200] == 1 and codes[409] == 3, [r.text for r in replies]
        assert {r.json()["code"] for r in replies if r.status_code == 409} == {"refund_not_pending"}
    # Two approvals needed: three people approve at once; two of them make it, the refund pays once.
    order = shop.paid_order([("TEE", 2)])
    big = shop.refund(order["id"], [(order["lines"][0]["id"], 2)])  # 3998
    replies = race([lambda c=c: c.post(f"/finance/refunds/{big['id']}/approve") for c in reviewers[:3]])
    statuses = sorted(r.json()["status"] if r.status_code == 200 else r.json()["code"] for r in replies)
    assert statuses == ["approved", "awaiting_second_approval", "refund_not_pending"], statuses
    assert shop.unbalanced_entries() == []
    assert shop.provider_side() == shop.payment_tables()
    refunds = shop.platform.get("/finance/entries", params={"kind": "refund"}).json()
    assert len({e["refund_id"] for e in refunds}) == len(refunds)
