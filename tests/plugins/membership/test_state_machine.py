"""A Hypothesis state machine over place (with and without points), pay, cancel, complete,
partial refund, full refund, expiry and manual adjustments. After every step:

- every member's balance equals the sum of their ledger rows, held points equal the open
  holds, and a balance below zero carries a recorded debt;
- each hold is released exactly once (by payment or cancellation), never twice;
- on every order, points earned less points clawed back are never negative;
- points returned never exceed points spent, and once an order is wholly refunded the
  returns over all its partial refunds add up to exactly the points spent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
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

from mallcore.kernel import SYSTEM, MallcoreError, Principal, RefundItem
from mallcore.kernel import tables as kt
from mallcore.kernel.schemas import PlaceOrder
from mallcore.plugins.membership import tables as t
from tests.helpers import ADDRESS

from .kit import SKUS

ALICE = Principal("alice", frozenset({"customer"}))
MERCHANT = Principal("m1", frozenset({"merchant"}), "s1")
KIT: Any = None  # the test's ``mallcore`` kit, set by the test below


class PointsMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    @initialize()
    def setup(self) -> None:
        self.kernel = KIT.kernel(centers=["catalog", "payment", "membership"])
        KIT.product(self.kernel, shop="s1", skus=SKUS)
        self.center = self.kernel.centers["membership"]
        with self.kernel.db.transaction() as conn:
            self.center.levels.set_level(conn, "alice", "gold", "test", "root")
            self.center.ledger.adjust(conn, "alice", 3_000, "start", "root")

    # -- helpers ------------------------------------------------------------------------

    def status(self, order_id: int) -> str:
        with self.kernel.db.transaction(write=False) as conn:
            return str(
                conn.execute(sa.select(kt.orders.c.status).where(kt.orders.c.id == order_id)).scalar_one()
            )

    def refundable(self, order_id: int) -> list[tuple[int, int]]:
        with self.kernel.orders.stage("look", order_id, SYSTEM) as ctx:
            return [
                (b.line_id, b.quantity_left)
                for b in self.kernel.refunds.balances(ctx).values()
                if b.quantity_left
            ]

    def refund(self, order_id: int, items: list[tuple[int, int]]) -> None:
        with self.kernel.orders.stage("after_sale", order_id, SYSTEM) as ctx:
            self.kernel.refunds.request(
                ctx, [RefundItem(i, q) for i, q in items], reason="test", source="test", review=False
            )

    # -- rules -----------------------------------------------------------------------------

    @rule(
        target=orders,
        lines=st.lists(st.sampled_from([s for s, _ in SKUS]), min_size=1, max_size=3, unique=True),
        quantity=st.integers(1, 3),
        points=st.sampled_from([0, 0, 100, 700, 2_500, 9_000]),
    )
    def place(self, lines: list[str], quantity: int, points: int) -> int:
        req = msgspec.convert(
            {"shop": "s1", "lines": [{"sku": s, "quantity": quantity} for s in lines], "address": ADDRESS,
             "points": points},
            PlaceOrder,
        )  # fmt: skip
        try:
            view, _ = self.kernel.orders.place(ALICE, req)
        except MallcoreError as exc:
            assert exc.code in ("points_insufficient", "points_over_cap"), exc.code
            return 0
        return view.id

    @rule(order=orders)
    def pay(self, order: int) -> None:
        if order and self.status(order) == "awaiting_payment":
            self.kernel.orders.pay(ALICE, order, "sandbox", None)

    @rule(order=orders)
    def cancel(self, order: int) -> None:
        if order and self.status(order) in ("awaiting_payment", "paid"):
            self.kernel.orders.cancel(ALICE, order, "changed my mind")

    @rule(order=orders)
    def complete(self, order: int) -> None:
        if order and self.status(order) == "paid":
            for step in ("dispatch", "ship", "deliver", "complete"):
                if step == "dispatch":
                    self.kernel.orders.dispatch(MERCHANT, order)
                else:  # the customer confirms delivery
                    self.kernel.orders.staff_step(ALICE if step == "deliver" else MERCHANT, order, step)

    @rule(order=orders, pick=st.integers(0, 5))
    def partial_refund(self, order: int, pick: int) -> None:
        if order and self.status(order) in ("paid", "completed"):
            left = self.refundable(order)
            if left:
                line_id, _ = left[pick % len(left)]
                self.refund(order, [(line_id, 1)])

    @rule(order=orders)
    def full_refund(self, order: int) -> None:
        if order and self.status(order) in ("paid", "completed"):
            left = self.refundable(order)
            if left:
                self.refund(order, left)

    @rule(days=st.sampled_from([30, 200, 400]))
    def time_passes_and_points_expire(self, days: int) -> None:
        p = t.points.c
        with self.kernel.db.transaction() as conn:
            rows = conn.execute(sa.select(p.id, p.at)).all()
            conn.execute(
                t.points.update().where(p.id == sa.bindparam("row")).values(at=sa.bindparam("when")),
                [{"row": row.id, "when": row.at - timedelta(days=days)} for row in rows],
            )
        self.center.expiry.run()

    @rule(delta=st.sampled_from([-5_000, -50, 50, 1_000]))
    def adjust(self, delta: int) -> None:
        try:
            with self.kernel.db.transaction() as conn:
                self.center.ledger.adjust(
                    conn, "alice", delta, "goodwill" if delta > 0 else "correction", "root"
                )
        except MallcoreError as exc:
            assert delta < 0 and exc.code == "points_insufficient"

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_books_agree(self) -> None:
        if not hasattr(self, "kernel"):
            return
        p = t.points.c
        with self.kernel.db.transaction(write=False) as conn:
            assert self.center.ledger.check(conn) == []
            per_order: dict[int, dict[str, list[int]]] = {}
            for order_id, kind, delta in conn.execute(
                sa.select(p.order_id, p.kind, p.delta).where(p.order_id.is_not(None)).order_by(p.id)
            ):
                per_order.setdefault(order_id, {}).setdefault(kind, []).append(delta)
            statuses = dict(conn.execute(sa.select(kt.orders.c.id, kt.orders.c.status)).all())
        for order_id, kinds in per_order.items():
            holds, releases = kinds.get("hold", []), kinds.get("release", [])
            assert len(holds) <= 1 and len(releases) <= len(holds)
            if statuses[order_id] != "awaiting_payment":
                assert sum(holds) + sum(releases) == 0 and len(releases) == len(holds)
            assert sum(kinds.get("earn", [])) + sum(kinds.get("clawback", [])) >= 0
            spent = -sum(kinds.get("spend", []))
            returned = sum(kinds.get("return", []))
            assert 0 <= returned <= spent
            if statuses[order_id] in ("closed", "cancelled"):  # wholly refunded, or never paid
                assert returned == spent


def test_points_state_machine(mallcore):
    global KIT
    KIT = mallcore
    run_state_machine_as_test(
        PointsMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
