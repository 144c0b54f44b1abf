"""Delivered orders complete by themselves after the configured time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mallcore.kernel import SYSTEM
from mallcore.plugins.tms.jobs import auto_complete, due_orders

from .support import order_status, paid_order, rows, shop_kernel


def delivered(mallcore: Any, kernel: Any) -> int:
    order = paid_order(mallcore, kernel, [("A", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    no = merchant.post(f"/orders/{order['id']}/dispatch").json()["shipments"][0]["tracking_no"]
    merchant.post(f"/tms/sandbox/{no}/advance", json={"status": "delivered"})
    assert order_status(kernel, order["id"]) == "delivered"
    return order["id"]  # type: ignore[no-any-return]


def overdue(kernel: Any, order_id: int) -> None:
    table = kernel.metadatas["tms"].tables["tms_completions"]
    with kernel.db.transaction() as conn:
        conn.execute(
            table.update()
            .where(table.c.order_id == order_id)
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def test_orders_complete_after_the_configured_time(mallcore):
    kernel = shop_kernel(mallcore, settings={"tms": {"auto_complete_after_hours": 240}})
    oid = delivered(mallcore, kernel)
    [clock] = rows(kernel, "tms_completions")
    assert timedelta(hours=239, minutes=59) < clock.due_at - clock.delivered_at <= timedelta(hours=240)
    assert kernel.jobs.run("tms.auto_complete") == 0
    assert order_status(kernel, oid) == "delivered"
    overdue(kernel, oid)
    assert kernel.jobs.run("tms.auto_complete") == 1
    assert order_status(kernel, oid) == "completed"
    assert kernel.jobs.run("tms.auto_complete") == 0
    alice = mallcore.client(kernel, "customer", "alice")
    kinds = [e["kind"] for e in alice.get(f"/orders/{oid}/timeline").json()]
    assert kinds[-2:] == ["order.completed", "order.auto_completed"]
    zh = alice.get(f"/orders/{oid}/timeline", headers={"Accept-Language": "zh"}).json()
    assert zh[-1]["message"] == "签收240小时后系统自动确认收货"


def test_an_order_completed_or_held_meanwhile_is_left_alone(mallcore):
    kernel = shop_kernel(mallcore)
    completed_by_staff = delivered(mallcore, kernel)
    held = delivered(mallcore, kernel)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    assert merchant.post(f"/orders/{completed_by_staff}/complete").status_code == 200
    with kernel.orders.stage("hold", held, SYSTEM) as ctx:
        ctx.set(hold="risk review")
    overdue(kernel, completed_by_staff)
    overdue(kernel, held)
    assert kernel.jobs.run("tms.auto_complete") == 0
    assert order_status(kernel, held) == "delivered"
    assert [r.completed_at is not None for r in rows(kernel, "tms_completions")] == [True, False]
    with kernel.orders.stage("release", held, SYSTEM) as ctx:
        ctx.set(hold=None)
    assert kernel.jobs.run("tms.auto_complete") == 1
    assert order_status(kernel, held) == "completed"


def test_held_orders_never_crowd_out_the_others(mallcore):
    kernel = shop_kernel(mallcore)
    held = [delivered(mallcore, kernel) for _ in range(3)]
    free = delivered(mallcore, kernel)
    for oid in held:
        with kernel.orders.stage("hold", oid, SYSTEM) as ctx:
            ctx.set(hold="risk review")
    for oid in [*held, free]:  # the held ones fell due first
        overdue(kernel, oid)
    # a run reads at most `limit` due orders: held ones must not fill it
    assert due_orders(kernel.centers["tms"], limit=2) == [free]
    assert kernel.jobs.run("tms.auto_complete") == 1
    assert order_status(kernel, free) == "completed"
    assert {order_status(kernel, oid) for oid in held} == {"delivered"}


def test_two_runners_complete_an_order_once(mallcore):
    kernel = shop_kernel(mallcore)
    oid = delivered(mallcore, kernel)
    overdue(kernel, oid)
    center = kernel.centers["tms"]
    # Both runners read the order as due before either completes it.
    due = due_orders(center)
    assert due == [oid]
    assert auto_complete(center, due) + auto_complete(center, due) == 1
    kinds = [e.kind for e in timeline(kernel, oid)]
    assert kinds.count("order.completed") == 1


def timeline(kernel: Any, order_id: int) -> list[Any]:
    with kernel.db.transaction(write=False) as conn:
        return kernel.order_views.timeline_entries(conn, order_id, public_only=False)  # type: ignore[no-any-return]


def test_staff_delivery_starts_the_clock_too(mallcore):
    kernel = shop_kernel(mallcore, settings={"tms": {"auto_complete_after_hours": 0}})
    order = paid_order(mallcore, kernel, [("A", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    alice = mallcore.client(kernel, "customer", "alice")
    for step in ("dispatch", "ship", "deliver"):  # the customer confirms delivery
        assert (alice if step == "deliver" else merchant).post(
            f"/orders/{order['id']}/{step}"
        ).status_code == 200
    assert kernel.jobs.run("tms.auto_complete") == 1
    assert order_status(kernel, order["id"]) == "completed"
