"""Property: whatever happens to orders, every entry balances and the books agree.

Random sequences of payment, partial and full refunds (reviewed, sometimes
twice, sometimes rejected), delivery, cancellation and settlement run
through HTTP against catalog + payment + finance (and the refund desk
stand-in). After each sequence:

- every entry's postings sum to zero per currency;
- the journal's provider references and amounts equal the payment
  center's payments and refunds tables;
- what customer clearing holds for an order is what was paid less refunded
  until delivery, and nothing after it;
- provider clearing holds what was paid less what was refunded;
- once a settlement is paid, the shop's payable for the settled days is zero.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallcore.kernel import tables as kt
from mallcore.plugins.finance import tables as ft
from mallcore.plugins.finance.settlement import day_start

from .kit import Shop, approve_all

OPS = ["partial", "full", "reject", "deliver", "cancel", "settle"]


class World:
    def __init__(self, mallcore: Any) -> None:
        self.shop = Shop(mallcore, freight=True, settings={"second_approval_above": 3000})
        self.orders: list[int] = []
        self.next_start = self.shop.clock.at.date()

    def order(self, order_id: int) -> dict[str, Any]:
        r = self.shop.admin.get(f"/orders/{order_id}")
        assert r.status_code == 200
        return r.json()  # type: ignore[no-any-return]

    def units_left(self, order_id: int) -> dict[int, int]:
        rl, r = kt.refund_lines.c, kt.refunds.c
        rows = self.shop.rows(
            sa.select(rl.line_id, sa.func.sum(rl.quantity))
            .join(kt.refunds, r.id == rl.refund_id)
            .where(r.order_id == order_id, r.status.in_(("pending_review", "approved", "refunded")))
            .group_by(rl.line_id)
        )
        taken = {line_id: int(q) for line_id, q in rows}
        return {
            line["id"]: line["quantity"] - taken.get(line["id"], 0) for line in self.order(order_id)["lines"]
        }

    def step(self, op: str, order_id: int, data: Any) -> None:
        shop = self.shop
        status = self.order(order_id)["status"]
        if op in ("partial", "full", "reject"):
            if status in ("cancelled", "closed"):
                return
            left = {k: v for k, v in self.units_left(order_id).items() if v}
            if not left:
                return
            if op == "full":
                items = list(left.items())
                shipping = "remaining"
            else:
                line = data.draw(st.sampled_from(sorted(left)))
                items = [(line, data.draw(st.integers(1, left[line])))]
                shipping = data.draw(st.sampled_from(["none", "proportional", "remaining"]))
            refund = shop.refund(order_id, items, shipping=shipping)
            assert refund["status"] == "pending_review"
            if op == "reject":
                r = shop.fin1.post(f"/finance/refunds/{refund['id']}/reject", json={"reason": "not returned"})
                assert r.status_code == 200, r.text
            else:
                approve_all(shop, shop.fin1, shop.fin1b)
        elif op == "deliver" and status == "paid":
            shop.deliver(order_id)
        elif op == "cancel" and status == "paid":
            r = shop.alice.post(f"/orders/{order_id}/cancel", json={"reason": "test"})
            assert r.status_code == 200, r.text
        elif op == "settle":
            shop.clock.next_day()
            end = shop.clock.at.date() - timedelta(days=1)
            body = {"shop": "s1", "start": self.next_start.isoformat(), "end": end.isoformat()}
            r = shop.platform.post("/finance/settlements", json=body)
            assert r.status_code == 201, r.text
            settlement = r.json()
            statement = shop.platform.get(
                "/finance/statements", params={"shop": "s1", "from": body["start"], "to": body["end"]}
            ).json()
            assert statement["net_payable"] == settlement["net_payable"]
            assert settlement["net_payable"] == (
                settlement["gross_sales"] - settlement["refunds"] - settlement["commission"]
            )
            r = shop.platform.post(f"/finance/settlements/{settlement['id']}/pay")
            assert r.status_code == 200, r.text
            self.next_start = end + timedelta(days=1)

    def check(self) -> None:
        shop = self.shop
        assert shop.unbalanced_entries() == []
        assert shop.provider_side() == shop.payment_tables()
        paid = refunded = 0
        for order_id in self.orders:
            order = self.order(order_id)
            paid += order["paid"]
            refunded += order["refunded"]
            held = -shop.balance("customer_clearing", order_id=order_id)
            delivered = order["status"] in ("delivered", "completed") or (
                order["status"] == "closed"
                and shop.platform.get(
                    "/finance/entries", params={"order_id": order_id, "kind": "sale"}
                ).json()
            )
            assert held == (0 if delivered else order["paid"] - order["refunded"]), order
            assert shop.balance("commission", order_id=order_id) <= 0
        assert shop.balance("provider_clearing:sandbox") == paid - refunded
        assert shop.balance("refunds") == 0
        # Settled days owe the shop nothing once paid.
        p, e = ft.postings.c, ft.entries.c
        owed = shop.rows(
            sa.select(sa.func.coalesce(sa.func.sum(p.amount), 0))
            .join(ft.entries, e.id == p.entry_id)
            .where(
                p.account == "shop_payable:s1",
                sa.or_(e.posted_at < day_start(self.next_start), p.role == "payout"),
            )
        )[0][0]
        assert owed == 0


def test_every_posting_balances_and_the_books_agree(mallcore):
    world = World(mallcore)

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        data=st.data(),
        tees=st.integers(1, 3),
        mugs=st.integers(0, 2),
        ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=6),
    )
    def run(data: Any, tees: int, mugs: int, ops: list[str]) -> None:
        lines = [("TEE", tees)] + ([("MUG", mugs)] if mugs else [])
        order = world.shop.paid_order(lines)
        world.orders.append(order["id"])
        for op in ops:
            world.step(op, order["id"], data)
        world.check()

    run()
    assert len(world.orders) >= 10
    # However the draws fell, end on a delivered sale and a paid settlement, and check again.
    order = world.shop.paid_order([("TEE", 1)])
    world.orders.append(order["id"])
    world.step("deliver", order["id"], None)
    world.step("settle", order["id"], None)
    world.check()
    # The sequences did reach every kind of entry.
    kinds = {row[0] for row in world.shop.rows(sa.select(ft.entries.c.kind).distinct())}
    assert {"payment", "refund", "sale", "payout"} <= kinds, kinds
