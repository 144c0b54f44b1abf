"""A Hypothesis state machine over inbound, place, pay, cancel, expire, dispatch, stocktake,
transfer, refund before shipment and restock. After every step, for every SKU and warehouse:
on hand (and each bucket) = sum of movements, reserved = sum of live reservations,
available >= 0; and every order holds exactly what its status says it should."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from mallcore.kernel import Principal
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine, Inspection
from mallcore.plugins.wms import tables as t

from .helpers import Shop, check_invariants

SKUS = ("A", "B")
WAREHOUSES = (("SH", "310000"), ("GZ", "440100"))
REGIONS = ("310115", "440105", "110105")
DESK = Principal("desk", frozenset({"warehouse"}), platform=True)

KIT: Any = None  # the test's ``mallcore`` kit, set by the test below


class WmsMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.shop: Shop
        self.cases = 0

    @initialize(reserve_on=st.sampled_from(["place", "pay"]))
    def setup(self, reserve_on: str) -> None:
        self.reserve_on = reserve_on
        self.shop = Shop(
            KIT,
            settings={"reserve_on": reserve_on, "manual_dispatch": True, "unpaid_hold_minutes": 0},
            skus=[("A", 1000, 100), ("B", 2000, 300)],
            warehouses=WAREHOUSES,
        )

    # -- helpers ---------------------------------------------------------------

    def available(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for (sku, _), level in self.shop.stock().items():
            total[sku] += level["available"]
        return total

    def status(self, order_id: int) -> str:
        with self.shop.kernel.db.transaction(write=False) as conn:
            return str(
                conn.execute(sa.select(kt.orders.c.status).where(kt.orders.c.id == order_id)).scalar_one()
            )

    def cut(self, order_id: int) -> int:
        r = t.reservations.c
        with self.shop.kernel.db.transaction(write=False) as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(r.quantity), 0)).where(
                        r.order_id == order_id, r.ref.is_not(None)
                    )
                ).scalar_one()
            )

    def after_sale(self, order: dict[str, Any], status: str, **fields: Any) -> None:
        self.cases += 1
        case = AfterSaleCase(
            id=self.cases,
            order_id=order["id"],
            status=status,
            previous=None,
            customer="alice",
            shop="s1",
            **fields,
        )
        with self.shop.kernel.orders.stage("after_sale", order["id"], DESK) as ctx:
            self.shop.kernel.hook.order_after_sale(ctx=ctx, case=case)

    # -- rules ------------------------------------------------------------------

    @rule(sku=st.sampled_from(SKUS), wh=st.sampled_from([w for w, _ in WAREHOUSES]), qty=st.integers(1, 6))
    def inbound(self, sku: str, wh: str, qty: int) -> None:
        self.shop.inbound(wh, sku, qty)

    @rule(
        target=orders,
        lines=st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1, max_size=2),
        region=st.sampled_from(REGIONS),
    )
    def place(self, lines: dict[str, int], region: str) -> Any:
        enough = all(self.available()[sku] >= q for sku, q in lines.items())
        r = self.shop.place(lines, region)
        if self.reserve_on == "pay" or enough:
            assert r.status_code == 201, r.text
            return r.json()
        assert (r.status_code, r.json()["code"]) == (409, "out_of_stock"), r.text
        return None

    @rule(order=orders)
    def pay(self, order: Any) -> None:
        if order is None:
            return
        status = self.status(order["id"])
        enough = all(self.available()[line["sku"]] >= line["quantity"] for line in order["lines"])
        r = self.shop.pay(order["id"])
        if status != "awaiting_payment":
            assert r.status_code == 409, r.text
        elif self.reserve_on == "place" or enough:
            assert r.status_code == 201, r.text
        else:
            assert (r.status_code, r.json()["code"]) == (409, "out_of_stock"), r.text

    @rule(order=orders)
    def cancel(self, order: Any) -> None:
        if order is None:
            return
        status = self.status(order["id"])
        r = self.shop.alice.post(f"/orders/{order['id']}/cancel", json={"reason": "test"})
        assert (200 if status in ("awaiting_payment", "paid") else 409) == r.status_code, r.text

    @rule()
    def expire(self) -> None:
        self.shop.kernel.jobs.run("wms.expire_unpaid")
        with self.shop.kernel.db.transaction(write=False) as conn:
            left = conn.execute(
                sa.select(sa.func.count()).where(kt.orders.c.status == "awaiting_payment")
            ).scalar_one()
        assert left == 0

    @rule(order=orders)
    def dispatch(self, order: Any) -> None:
        if order is None:
            return
        status = self.status(order["id"])
        left = sum(line["quantity"] for line in order["lines"]) - self.cut(order["id"])
        r = self.shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch")
        # A paid order holds its stock: dispatch always finds it (unless every unit was refunded).
        if status == "paid" and left > 0:
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 409, r.text

    @rule(
        sku=st.sampled_from(SKUS), wh=st.sampled_from([w for w, _ in WAREHOUSES]), counted=st.integers(0, 8)
    )
    def stocktake(self, sku: str, wh: str, counted: int) -> None:
        reserved = self.shop.stock().get((sku, wh), {"reserved": 0})["reserved"]
        r = self.shop.warehouse.post(
            "/wms/stocktakes", json={"warehouse": wh, "counts": [{"sku": sku, "counted": counted}]}
        )
        assert (201 if counted >= reserved else 409) == r.status_code, r.text

    @rule(sku=st.sampled_from(SKUS), qty=st.integers(1, 4), forward=st.booleans())
    def transfer(self, sku: str, qty: int, forward: bool) -> None:
        src, dst = ("SH", "GZ") if forward else ("GZ", "SH")
        free = self.shop.stock().get((sku, src), {"available": 0})["available"]
        r = self.shop.warehouse.post(
            "/wms/transfers", json={"sku": sku, "from_warehouse": src, "to_warehouse": dst, "quantity": qty}
        )
        assert (201 if free >= qty else 409) == r.status_code, r.text

    @rule(order=orders, data=st.data())
    def refund_before_shipment(self, order: Any, data: Any) -> None:
        if order is None or self.status(order["id"]) != "paid":
            return
        line = data.draw(st.sampled_from(order["lines"]))
        qty = data.draw(st.integers(1, line["quantity"]))
        self.after_sale(
            order,
            "refunded",
            type="refund_only",
            shipped=False,
            lines=[CaseLine(line_id=line["id"], sku=line["sku"], quantity=qty)],
        )

    @rule(order=orders, data=st.data())
    def restock(self, order: Any, data: Any) -> None:
        if order is None or self.status(order["id"]) != "dispatched":
            return
        inspections = []
        for line in order["lines"]:
            qty = data.draw(st.integers(0, line["quantity"]))
            if qty:
                inspections.append(
                    Inspection(
                        line_id=line["id"],
                        sku=line["sku"],
                        quantity=qty,
                        disposition=data.draw(st.sampled_from(["restock", "b_grade", "quarantine", "scrap"])),
                        passed=data.draw(st.booleans()),
                    )
                )
        lines = [CaseLine(line_id=x["id"], sku=x["sku"], quantity=x["quantity"]) for x in order["lines"]]
        self.after_sale(order, "inspected", type="return_refund", lines=lines, inspections=inspections)

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def ledger_balances(self) -> None:
        if hasattr(self, "shop"):
            check_invariants(self.shop.kernel)

    @invariant()
    def orders_hold_what_their_status_says(self) -> None:
        if not hasattr(self, "shop"):
            return
        o, li, r = kt.orders.c, kt.order_lines.c, t.reservations.c
        with self.shop.kernel.db.transaction(write=False) as conn:
            status = dict(conn.execute(sa.select(o.id, o.status)).all())
            ordered = dict(
                conn.execute(sa.select(li.order_id, sa.func.sum(li.quantity)).group_by(li.order_id)).all()
            )
            live = dict(
                conn.execute(
                    sa.select(r.order_id, sa.func.sum(r.quantity))
                    .where(r.status == "live")
                    .group_by(r.order_id)
                ).all()
            )
            cut = dict(
                conn.execute(
                    sa.select(r.order_id, sa.func.sum(r.quantity))
                    .where(r.ref.is_not(None))
                    .group_by(r.order_id)
                ).all()
            )
        for order_id, state in status.items():
            held = int(live.get(order_id) or 0)
            if state == "paid" or (state == "awaiting_payment" and self.reserve_on == "place"):
                expected = int(ordered[order_id]) - int(cut.get(order_id) or 0)
            else:
                expected = 0
            assert expected == held, f"order {order_id} is {state}: holds {held}, expected {expected}"


def test_wms_state_machine(mallcore):
    global KIT
    KIT = mallcore
    try:
        run_state_machine_as_test(
            WmsMachine,
            settings=settings(
                max_examples=20,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        KIT = None
