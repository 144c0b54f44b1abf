"""Hypothesis drives cases through random steps; money and timers stay honest throughout.

Invariants after every step:

- refunded <= paid, per line (units and amount) and per order, counting
  every live refund (requested, in review, approved, paid);
- every case is finished or has a live SLA timer (and never rests in a
  pass-through state);
- no step ever answers 500.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as strat
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from mallcore.kernel import tables as kt
from mallcore.kernel import utcnow
from mallcore.plugins.refund import sla
from mallcore.plugins.refund import states as st
from mallcore.plugins.refund import tables as rt

from .conftest import Shop, StandInCarrier
from .test_review import FINANCE, StandInReviewer

OK = {200, 201, 409, 422}
TYPES = ["refund_only", "return_refund", "exchange", "repair"]
TIMERS = {"approve", "close", "pickup_expired", "receive", "escalate", "reject"}


class Cases(RuleBasedStateMachine):
    shop: Shop

    cases = Bundle("cases")

    def __init__(self) -> None:
        super().__init__()
        shop = self.shop
        shop.center.clock = utcnow
        self.order = shop.delivered_order([("TEE-M", 3), ("MUG", 2)])
        self.lines = [line["id"] for line in self.order["lines"]]
        self.waybills = 0

    def _ok(self, r: Any) -> Any:
        assert r.status_code in OK, r.text
        return r

    @rule(
        target=cases,
        type_=strat.sampled_from(TYPES),
        picks=strat.lists(strat.tuples(strat.integers(0, 1), strat.integers(1, 2)), min_size=1, max_size=2),
        reason=strat.sampled_from(["no_reason", "quality", "missing"]),
    )
    def open_case(self, type_: str, picks: list[tuple[int, int]], reason: str) -> Any:
        lines = {self.lines[i]: q for i, q in picks}
        r = self._ok(self.shop.open(self.order, type_, list(lines.items()), reason=reason))
        return multiple(r.json()["id"]) if r.status_code == 201 else multiple()

    @rule(case=cases, passed=strat.booleans(), steps=strat.integers(1, 5))
    def advance(self, case: int, passed: bool, steps: int) -> None:
        """The next natural steps of the case, so random runs reach deep states."""
        for _ in range(steps):
            status = self.shop.case(case)["status"]
            if status in ("requested", "inspected"):
                self.approve(case)
            elif status == "awaiting_return":
                self.ship_return(case)
            elif status in ("return_shipped", "return_in_transit", "pickup_requested"):
                self.receive(case, passed, False, "A")
            elif status == "repaired":
                self.ship_back(case)
            elif status == "refund_pending_review":
                self.finance_review(passed)
            else:
                return

    @rule(case=cases)
    def approve(self, case: int) -> None:
        self._ok(self.shop.merchant.post(f"/after-sales/{case}/approve"))

    @rule(case=cases)
    def approve_as_refund(self, case: int) -> None:
        self._ok(self.shop.merchant.post(f"/after-sales/{case}/approve", json={"resolution": "refund"}))

    @rule(case=cases)
    def reject(self, case: int) -> None:
        self._ok(self.shop.merchant.post(f"/after-sales/{case}/reject", json={"reason": "no"}))

    @rule(case=cases)
    def withdraw(self, case: int) -> None:
        self._ok(self.shop.alice.post(f"/after-sales/{case}/cancel"))

    @rule(case=cases)
    def ship_return(self, case: int) -> None:
        self.waybills += 1
        body = {"carrier": "sandbox", "tracking_no": f"HY{self.waybills:06d}", "phone": "13800000000"}
        self._ok(self.shop.alice.post(f"/after-sales/{case}/return-shipment", json=body))

    @rule(case=cases)
    def book_pickup(self, case: int) -> None:
        start = self.shop.center.clock() + timedelta(hours=1)
        body = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()}
        self._ok(self.shop.alice.post(f"/after-sales/{case}/pickup", json=body))

    @rule(
        case=cases,
        status=strat.sampled_from(["picked_up", "delivered", "pickup_failed", "stale", "exception"]),
    )
    def carrier_event(self, case: int, status: str) -> None:
        self.shop.carrier.event(self.shop.kernel, self.order["id"], case, status, "HY-EVENT")

    @rule(
        case=cases,
        passed=strat.booleans(),
        partial=strat.booleans(),
        grade=strat.sampled_from(["A", "B", "C"]),
    )
    def receive(self, case: int, passed: bool, partial: bool, grade: str) -> None:
        body: dict[str, Any] = {"passed": passed}
        if partial:
            view = self.shop.case(case)
            body["inspections"] = [
                {"line_id": x["line_id"], "quantity": 1, "grade": grade, "passed": passed}
                for x in view["lines"]
            ]
        self._ok(self.shop.warehouse.post(f"/after-sales/{case}/receive", json=body))

    @rule(case=cases)
    def repaired(self, case: int) -> None:
        self._ok(self.shop.warehouse.post(f"/after-sales/{case}/repaired"))

    @rule(case=cases)
    def ship_back(self, case: int) -> None:
        body = {"carrier": "sandbox", "tracking_no": "BACK0001"}
        self._ok(self.shop.warehouse.post(f"/after-sales/{case}/ship-back", json=body))

    @rule(approve=strat.booleans())
    def finance_review(self, approve: bool) -> None:
        kernel = self.shop.kernel
        r = kt.refunds.c
        with kernel.db.transaction(write=False) as conn:
            pending = conn.execute(
                sa.select(r.id)
                .where(r.order_id == self.order["id"], r.status == "pending_review")
                .order_by(r.id)
            ).scalar()
        if pending is None:
            return
        with kernel.orders.stage("refund_review", self.order["id"], FINANCE) as ctx:
            if approve:
                kernel.refunds.approve(ctx, pending, FINANCE.subject)
            else:
                kernel.refunds.reject(ctx, pending, FINANCE.subject, "not convinced")

    @rule(hours=strat.integers(1, 24 * 12))
    def time_passes(self, hours: int) -> None:
        self.shop.later(hours=hours)
        sla.run(self.shop.center)

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def refunded_never_exceeds_paid(self) -> None:
        kernel = self.shop.kernel
        r, rl = kt.refunds.c, kt.refund_lines.c
        with kernel.db.transaction(write=False) as conn:
            order = kernel.orders.load(conn, self.order["id"])
            assert order is not None
            lines = {line.id: line for line in kernel.orders.load_lines(conn, self.order["id"])}
            per_line = conn.execute(
                sa.select(rl.line_id, sa.func.sum(rl.quantity), sa.func.sum(rl.amount))
                .join(kt.refunds, r.id == rl.refund_id)
                .where(
                    r.order_id == order.id,
                    r.status.in_(("requested", "pending_review", "approved", "refunded")),
                )
                .group_by(rl.line_id)
            ).all()
            live_total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(r.amount), 0)).where(
                    r.order_id == order.id,
                    r.status.in_(("requested", "pending_review", "approved", "refunded")),
                )
            ).scalar_one()
            paid_total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(r.amount), 0)).where(
                    r.order_id == order.id, r.status == "refunded"
                )
            ).scalar_one()
        for line_id, qty, amount in per_line:
            assert qty <= lines[line_id].quantity
            assert amount <= lines[line_id].total
        assert live_total <= order.paid
        assert order.refunded == paid_total <= order.paid

    @invariant()
    def every_case_is_finished_or_timed(self) -> None:
        c = rt.cases.c
        with self.shop.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(c.id, c.status, c.due_at, c.timer).where(c.order_id == self.order["id"])
            ).all()
        for row in rows:
            event(f"case reached {row.status}")
            assert row.status not in st.TRANSIENT, row
            if row.status in st.TERMINAL:
                assert row.due_at is None and row.timer is None, row
            else:
                assert row.due_at is not None and row.timer in TIMERS, row


def test_cases_keep_money_and_timers_honest(mallcore: Any) -> None:
    carrier = StandInCarrier()
    kernel = mallcore.kernel(centers=["catalog", "payment", "refund"], extra=[carrier, StandInReviewer])
    mallcore.product(kernel, shop="s1", skus=[("TEE-M", 7900), ("MUG", 3333)])
    Cases.shop = Shop(
        kit=mallcore,
        kernel=kernel,
        carrier=carrier,
        alice=mallcore.client(kernel, "customer", "alice"),
        bob=mallcore.client(kernel, "customer", "bob"),
        merchant=mallcore.client(kernel, "merchant", "m1", shop="s1"),
        warehouse=mallcore.client(kernel, "warehouse", "w1", shop="s1"),
        admin=mallcore.client(kernel, "admin", "root"),
    )
    run_state_machine_as_test(
        Cases,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
