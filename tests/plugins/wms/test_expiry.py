"""Unpaid orders past their hold are cancelled and their stock released, exactly once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from click.testing import CliRunner

from mallcore.cli import State
from mallcore.kernel import Center, OrderContext, Rejected, hookimpl

from .helpers import Shop, check_invariants, live_by_order, movements


def test_expiry_cancels_unpaid_orders_and_releases_their_stock(mallcore):
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 0})
    shop.inbound("SH", "TEE", 10)
    unpaid = [shop.placed({"TEE": 2}) for _ in range(3)]
    paid = shop.placed({"TEE": 1})
    shop.pay(paid["id"])
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 3
    for order in unpaid:
        assert shop.order(order["id"])["status"] == "cancelled"
        entries = shop.timeline(order["id"])
        assert any(
            e["message"] == "Order cancelled: payment timeout" and e["actor"] == "system" for e in entries
        )
        (expired,) = [e for e in entries if e["kind"] == "wms.expired"]
        assert expired["public"] and expired["message"].startswith("Not paid within 0 minutes")
    assert shop.order(paid["id"])["status"] == "dispatched"
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 9,
        "reserved": 0,
        "available": 9,
        "b_grade": 0,
        "quarantine": 0,
    }
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 0
    check_invariants(shop.kernel)


def test_orders_within_their_hold_are_left_alone(mallcore):
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 30})
    shop.inbound("SH", "TEE", 10)
    order = shop.placed({"TEE": 2})
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 0
    assert shop.order(order["id"])["status"] == "awaiting_payment"
    assert {order["id"]: 2} == live_by_order(shop.kernel)


@pytest.mark.parametrize("reserve_on", ["place", "pay"])
def test_two_runners_racing_release_exactly_once(mallcore, reserve_on):
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 0, "reserve_on": reserve_on})
    shop.inbound("SH", "TEE", 100)
    shop.inbound("GZ", "TEE", 100)
    orders = [shop.placed({"TEE": 1 + i % 3}, region=("310115", "440105")[i % 2]) for i in range(24)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def runner() -> None:
        start.wait()
        try:
            results.append(shop.kernel.jobs.run("wms.expire_unpaid"))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(isinstance(n, int) for n in results), results
    assert len(orders) == sum(results)
    assert {"cancelled"} == {shop.order(o["id"])["status"] for o in orders}
    for order in orders:
        released = [m for m in movements(shop.kernel, order_id=order["id"]) if m.kind == "release"]
        cancelled = [e for e in shop.timeline(order["id"]) if e["kind"] == "order.cancelled"]
        assert len(cancelled) == 1
        if reserve_on == "place":
            assert [-sum(line["quantity"] for line in order["lines"])] == [m.reserved for m in released]
        else:
            assert released == []
    assert live_by_order(shop.kernel) == {}
    assert {0} == {level["reserved"] for level in shop.stock().values()}
    check_invariants(shop.kernel)


def test_expire_command(mallcore):
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 0})
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 5})
    commands = {c.name: c for c in shop.center.center_commands()}
    state = State(None)
    state._kernel = shop.kernel
    result = CliRunner().invoke(commands["expire"], [], obj=state)
    assert result.exit_code == 0, result.output
    assert "cancelled 1 unpaid order(s)" in result.output
    assert shop.order(order["id"])["status"] == "cancelled"
    assert shop.stock()[("TEE", "SH")]["available"] == 5


def test_jobs_are_registered(shop: Shop):
    assert {"wms.expire_unpaid", "wms.dispatch_paid"} <= set(shop.kernel.jobs.jobs)
    assert shop.kernel.jobs.jobs["wms.expire_unpaid"].interval == 30


def test_orphaned_holds_are_released(mallcore):
    # An order closed without WMS hearing of it (here: a cancel with WMS's hook bypassed).
    shop = Shop(mallcore)
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 2})
    from mallcore.kernel import SYSTEM

    with shop.kernel.orders.stage("cancel", order["id"], SYSTEM) as ctx:
        ctx.transition("cancelled")
    assert {order["id"]: 2} == live_by_order(shop.kernel)
    shop.kernel.jobs.run("wms.expire_unpaid")
    assert live_by_order(shop.kernel) == {}
    assert shop.stock()[("TEE", "SH")]["reserved"] == 0
    check_invariants(shop.kernel)


class Stuck(Center):
    """Another center that cannot let go of one order yet (e.g. a points ledger offline)."""

    name = "stuck"
    order_id: int | None = None

    @hookimpl
    def order_cancel(self, ctx: OrderContext, reason: str) -> None:
        if ctx.order.id == self.order_id:
            raise Rejected("points ledger unavailable", code="points_unavailable")


def test_one_order_that_cannot_be_cancelled_does_not_hold_up_the_others(mallcore):
    stuck = Stuck()
    # One order per run page: the stuck order would be first in every run.
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 0, "expire_batch": 1}, extra=[stuck])
    shop.inbound("SH", "TEE", 10)
    first, second = shop.placed({"TEE": 2}), shop.placed({"TEE": 3})
    stuck.order_id = first["id"]
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 1
    assert shop.order(second["id"])["status"] == "cancelled"
    assert shop.order(first["id"])["status"] == "awaiting_payment"
    assert {first["id"]: 2} == live_by_order(shop.kernel)
    stuck.order_id = None  # it recovers: the next run cancels it
    assert shop.kernel.jobs.run("wms.expire_unpaid") == 1
    assert shop.order(first["id"])["status"] == "cancelled"
    assert live_by_order(shop.kernel) == {}
    check_invariants(shop.kernel)
