"""A raise in any hook of any stage leaves nothing written."""

import msgspec
import pytest
import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Center, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine
from tests.helpers import order_body, snapshot

md = sa.MetaData()
marks = sa.Table(
    "saboteur_marks", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("hook", sa.String(40))
)


class Saboteur(Center):
    """Writes in every hook (its own row, a timeline entry, an event), then raises in one."""

    name = "saboteur"
    after = ("catalog", "payment")
    tables = md

    class Settings(msgspec.Struct):
        fail_in: str = ""

    def _act(self, ctx, hook):
        ctx.conn.execute(marks.insert().values(hook=hook))
        ctx.timeline(f"saboteur.{hook}", "x", zh="x")
        ctx.emit(f"saboteur.{hook}", {})
        if self.settings.fail_in == hook:
            raise RuntimeError(f"sabotage in {hook}")

    @hookimpl
    def order_pre_validate(self, ctx):
        self._act(ctx, "order_pre_validate")

    @hookimpl
    def order_price(self, ctx):
        self._act(ctx, "order_price")

    @hookimpl
    def order_reserve(self, ctx):
        self._act(ctx, "order_reserve")

    @hookimpl
    def order_pay(self, ctx, payment):
        self._act(ctx, "order_pay")

    @hookimpl
    def order_dispatch(self, ctx):
        self._act(ctx, "order_dispatch")

    @hookimpl
    def order_deliver(self, ctx):
        self._act(ctx, "order_deliver")

    @hookimpl
    def order_cancel(self, ctx, reason):
        self._act(ctx, "order_cancel")

    @hookimpl
    def order_refund(self, ctx, refund):
        if refund.status == "approved":
            self._act(ctx, "order_refund")

    @hookimpl
    def order_after_sale(self, ctx, case):
        self._act(ctx, "order_after_sale")


def build(mallcore, fail_in):
    kernel = mallcore.kernel(extra=[Saboteur], settings={"saboteur": {"fail_in": fail_in}})
    mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 2500)])
    return (
        kernel,
        mallcore.client(kernel, "customer", "alice"),
        mallcore.client(kernel, "merchant", "m", shop="s1"),
    )


def order_in(alice, status, staff):
    order = alice.post("/orders", json=order_body(lines=[("SKU-1", 2), ("SKU-2", 1)]))
    assert order.status_code == 201, order.text
    oid = order.json()["id"]
    steps = {"awaiting_payment": [], "paid": ["pay"], "shipped": ["pay", "dispatch", "ship"]}[status]
    for step in steps:
        if step == "pay":
            assert alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"}).status_code == 201
        else:
            assert staff.post(f"/orders/{oid}/{step}").status_code == 200
    return oid


@pytest.mark.parametrize("hook", ["order_pre_validate", "order_price", "order_reserve"])
def test_a_raise_while_placing_writes_nothing(mallcore, hook):
    kernel, alice, _ = build(mallcore, hook)
    before = snapshot(kernel)
    r = alice.post("/orders", json=order_body(lines=[("SKU-1", 2), ("SKU-2", 1)]))
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert snapshot(kernel) == before


@pytest.mark.parametrize(
    ("hook", "status", "step"),
    [
        ("order_pay", "awaiting_payment", "pay"),
        ("order_dispatch", "paid", "dispatch"),
        ("order_deliver", "shipped", "deliver"),
        ("order_cancel", "awaiting_payment", "cancel"),
        ("order_cancel", "paid", "cancel"),
        ("order_refund", "paid", "cancel"),
    ],
)
def test_a_raise_in_a_later_stage_writes_nothing(mallcore, hook, status, step):
    kernel, alice, staff = build(mallcore, hook)
    oid = order_in(alice, status, staff)
    before = snapshot(kernel)
    if step == "pay":
        r = alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    elif step == "cancel":
        r = alice.post(f"/orders/{oid}/cancel", json={"reason": "x"})
    else:  # the customer confirms delivery; the shop's staff take the other steps
        r = (alice if step == "deliver" else staff).post(f"/orders/{oid}/{step}")
    assert r.status_code == 500
    assert snapshot(kernel) == before
    assert alice.get(f"/orders/{oid}").json()["status"] == status


def test_a_raise_in_an_after_sale_step_writes_nothing(mallcore):
    kernel, alice, staff = build(mallcore, "order_after_sale")
    oid = order_in(alice, "paid", staff)
    before = snapshot(kernel)
    with pytest.raises(RuntimeError, match="sabotage"), kernel.orders.stage("after_sale", oid, SYSTEM) as ctx:
        line = ctx.lines[0]
        ctx.timeline("after_sale.requested", "case opened", zh="售后申请已提交")
        kernel.hook.order_after_sale(
            ctx=ctx,
            case=AfterSaleCase(
                id=1,
                order_id=oid,
                type="refund_only",
                status="requested",
                previous=None,
                customer="alice",
                shop="s1",
                lines=[CaseLine(line_id=line.id, sku=line.sku, quantity=1)],
            ),
        )
    assert snapshot(kernel) == before


def test_without_a_raise_every_hook_wrote_its_mark(mallcore):
    kernel, alice, staff = build(mallcore, "")
    oid = order_in(alice, "shipped", staff)
    assert alice.post(f"/orders/{oid}/deliver").status_code == 200
    with kernel.db.transaction(write=False) as conn:
        hooks = [row.hook for row in conn.execute(sa.select(marks.c.hook).order_by(marks.c.id))]
    assert hooks == [
        "order_pre_validate",
        "order_price",
        "order_reserve",
        "order_pay",
        "order_dispatch",
        "order_deliver",
    ]
