"""One test per hook, named ``test_hook_<name>``: what the hook promises, shown working.

``test_hookspecs.py`` fails when a hook has no docstring or no such test.
"""

from datetime import UTC, datetime

import click
import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar import get

from mallcore.kernel import SYSTEM, Center, Conflict, Job, OutOfStock, Phase, RefundItem, Rejected, hookimpl
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine, Parcel, ParcelEvent
from tests.helpers import count, order_body


def kit(mallcore, *centers, settings=None):
    kernel = mallcore.kernel(extra=list(centers), settings=settings or {})
    mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 3000)])
    return (
        kernel,
        mallcore.client(kernel, "customer", "alice"),
        mallcore.client(kernel, "merchant", "m", shop="s1"),
    )


def test_hook_order_pre_validate_refuses_with_a_stable_code(mallcore):
    class Blocklist(Center):
        name = "blocklist"

        @hookimpl
        def order_pre_validate(self, ctx):
            assert ctx.order.id is None and ctx.lines[0].sku == "SKU-1"
            if ctx.order.customer == "mallory":
                raise Rejected("this customer may not order", code="customer_blocked")

    kernel, alice, _ = kit(mallcore, Blocklist)
    assert alice.post("/orders", json=order_body()).status_code == 201
    mallory = mallcore.client(kernel, "customer", "mallory")
    r = mallory.post("/orders", json=order_body())
    assert (r.status_code, r.json()["code"]) == (422, "customer_blocked")


def test_hook_order_price_adjustments_are_explained_and_allocated(mallcore):
    class Promo(Center):
        name = "promo"

        @hookimpl
        def order_price(self, ctx):
            ctx.adjust(self.name, "spend 40 save 8", -800, phase=Phase.PROMOTION, code="S40")
            ctx.adjust(self.name, "SKU-2 member price", -300, phase=Phase.MEMBERSHIP, line=ctx.lines[1])

    kernel, alice, _ = kit(mallcore, Promo)
    order = alice.post("/orders", json=order_body(lines=[("SKU-1", 1), ("SKU-2", 1)])).json()
    assert (order["subtotal"], order["discount"], order["total"]) == (4000, 1100, 2900)
    assert sum(l["total"] for l in order["lines"]) == order["total"]
    adj = {a["reason"]: a for a in order["adjustments"]}
    assert adj["spend 40 save 8"]["line_id"] is None
    assert sum(x["amount"] for x in adj["spend 40 save 8"]["allocation"]) == -800
    assert adj["SKU-2 member price"]["line_id"] == order["lines"][1]["id"]
    assert [a["phase"] for a in order["adjustments"]] == ["promotion", "membership"]
    # the preview explains the same prices without placing anything
    preview = alice.post("/orders/preview", json=order_body(lines=[("SKU-1", 1), ("SKU-2", 1)])).json()
    assert preview["total"] == 2900 and count(kernel, "orders") == 1


def test_hook_order_reserve_sees_ids_and_can_refuse(mallcore):
    seen = []

    class Counter(Center):
        name = "counter"

        @hookimpl
        def order_reserve(self, ctx):
            seen.append((ctx.order.id, [line.id for line in ctx.lines]))
            if sum(line.quantity for line in ctx.lines) > 5:
                raise OutOfStock("only five units", extra={"skus": ["SKU-1"]})

    kernel, alice, _ = kit(mallcore, Counter)
    order = alice.post("/orders", json=order_body()).json()
    assert seen == [(order["id"], [order["lines"][0]["id"]])]
    r = alice.post("/orders", json=order_body(lines=[("SKU-1", 6)]))
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")
    assert count(kernel, "orders") == 1


def test_hook_order_pay_a_second_method_and_a_reaction_to_capture(mallcore):
    class Wallet(Center):
        name = "wallet"
        after = ("payment",)

        @hookimpl
        def order_pay(self, ctx, payment):
            if payment.method == "wallet" and payment.status == "unhandled":
                payment.status, payment.reference, payment.provider = "captured", "w-1", "wallet"

        @hookimpl(trylast=True)
        def order_reserve(self, ctx):
            pass

    kernel, alice, _ = kit(mallcore, Wallet)
    order = alice.post("/orders", json=order_body()).json()
    paid = alice.post(f"/orders/{order['id']}/payments", json={"method": "wallet"}).json()
    assert (paid["status"], paid["reference"], paid["order_status"]) == ("captured", "w-1", "paid")


def test_hook_order_dispatch_runs_with_its_transition(mallcore):
    calls = []

    class Ops(Center):
        name = "ops"

        @hookimpl
        def order_dispatch(self, ctx):
            calls.append(("dispatch", ctx.order.status))
            ctx.timeline("ops.packed", "Packed", zh="已打包")

        @hookimpl
        def order_deliver(self, ctx):
            calls.append(("deliver", ctx.order.status))

    kernel, alice, staff = kit(mallcore, Ops)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    staff.post(f"/orders/{oid}/dispatch")
    assert calls == [("dispatch", "paid")]
    assert "ops.packed" in [e["kind"] for e in alice.get(f"/orders/{oid}/timeline").json()]
    staff.post(f"/orders/{oid}/ship")
    alice.post(f"/orders/{oid}/deliver")  # the customer confirms receipt
    assert calls == [("dispatch", "paid"), ("deliver", "shipped")]


def test_hook_order_deliver_runs_once_when_the_order_is_delivered(mallcore):
    delivered = []

    class Points(Center):
        name = "points"

        @hookimpl
        def order_deliver(self, ctx):
            delivered.append((ctx.order.id, ctx.order.status))
            ctx.emit("points.awarded", {"points": ctx.order.total // 100})

    kernel, alice, staff = kit(mallcore, Points)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    for step in ("dispatch", "deliver"):
        assert (alice if step == "deliver" else staff).post(f"/orders/{oid}/{step}").status_code == 200
    assert alice.post(f"/orders/{oid}/deliver").json()["code"] == "invalid_transition"
    assert delivered == [(oid, "dispatched")]
    assert count(kernel, "outbox", topic="points.awarded") == 1


def test_hook_order_cancel_releases_what_was_held(mallcore):
    held = {}

    class Holder(Center):
        name = "holder"

        @hookimpl
        def order_reserve(self, ctx):
            held[ctx.order.id] = True

        @hookimpl
        def order_cancel(self, ctx, reason):
            held.pop(ctx.order.id)

    kernel, alice, _ = kit(mallcore, Holder)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    assert held == {oid: True}
    alice.post(f"/orders/{oid}/cancel", json={"reason": "no"})
    assert held == {}


def test_hook_order_refund_review_then_approval_pays_out(mallcore):
    class Reviewer(Center):
        name = "reviewer"
        after = ("payment",)

        @hookimpl
        def order_refund(self, ctx, refund):
            ctx.stash.setdefault("steps", []).append(refund.status)
            if refund.status == "requested":
                refund.require_review(self.name, "every refund is reviewed")

    kernel, alice, _ = kit(mallcore, Reviewer)
    order = alice.post("/orders", json=order_body(lines=[("SKU-1", 2)])).json()
    alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    line = order["lines"][0]["id"]
    with kernel.orders.stage("test", order["id"], SYSTEM) as ctx:
        refund = kernel.refunds.request(ctx, [RefundItem(line, 1)], reason="damaged", source="test")
        assert (refund.status, refund.amount, ctx.stash["steps"]) == ("pending_review", 1000, ["requested"])
    with kernel.orders.stage("test", order["id"], SYSTEM) as ctx:
        kernel.refunds.approve(ctx, refund.id, "finance-1")
        assert ctx.stash["steps"] == ["approved", "refunded"]
    got = alice.get(f"/orders/{order['id']}").json()
    assert (got["refunded"], got["status"]) == (1000, "paid")


def test_hook_order_after_sale_is_called_inside_the_step(mallcore):
    seen = []

    class Listener(Center):
        name = "aslisten"

        @hookimpl
        def order_after_sale(self, ctx, case):
            seen.append((case.status, case.lines[0].quantity))
            ctx.timeline("aslisten.noted", "noted", zh="已记录", ref=f"after_sale:{case.id}")

    kernel, alice, _ = kit(mallcore, Listener)
    order = alice.post("/orders", json=order_body()).json()
    line = order["lines"][0]
    with kernel.orders.stage("after_sale", order["id"], SYSTEM) as ctx:
        case = AfterSaleCase(
            id=7,
            order_id=order["id"],
            type="refund_only",
            status="requested",
            previous=None,
            customer="alice",
            shop="s1",
            lines=[CaseLine(line_id=line["id"], sku="SKU-1", quantity=1)],
        )
        kernel.hook.order_after_sale(ctx=ctx, case=case)
    assert seen == [("requested", 1)]
    timeline = alice.get(f"/orders/{order['id']}/timeline?ref=after_sale:7").json()
    assert [e["kind"] for e in timeline] == ["aslisten.noted"]


def test_hook_after_sale_parcel_reaches_the_case_owner(mallcore):
    events = []

    class CaseOwner(Center):
        name = "caseowner"

        @hookimpl
        def after_sale_parcel(self, ctx, event):
            events.append((event.case_id, event.status, ctx.order.id))

    kernel, alice, _ = kit(mallcore, CaseOwner)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    with kernel.orders.stage("carrier_event", oid, SYSTEM) as ctx:
        kernel.hook.after_sale_parcel(
            ctx=ctx,
            event=ParcelEvent(
                case_id=3,
                order_id=oid,
                kind="return",
                status="in_transit",
                carrier="sandbox",
                tracking_no="SB1",
                occurred_at=datetime.now(UTC),
            ),
        )
    assert events == [(3, "in_transit", oid)]


def test_hook_freight_quote_first_answer_wins(mallcore):
    class Cheap(Center):
        name = "cheap"

        @hookimpl
        def freight_quote(self, kernel, conn, order, lines, parcels):
            return 500 * len(parcels)

    class Silent(Center):
        name = "silent"

        @hookimpl
        def freight_quote(self, kernel, conn, order, lines, parcels):
            return None

    kernel, alice, _ = kit(mallcore, Cheap, Silent)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    with kernel.db.transaction(write=False) as conn:
        order = kernel.orders.load(conn, oid)
        lines = kernel.orders.load_lines(conn, oid)
        plan = [
            Parcel(warehouse="A", region="31", lines=[(lines[0].id, 1)]),
            Parcel(warehouse="B", region="44", lines=[]),
        ]
        assert (
            kernel.hook.freight_quote(kernel=kernel, conn=conn, order=order, lines=lines, parcels=plan)
            == 1000
        )


def test_hook_center_settings_come_from_the_class_and_are_validated(mallcore):
    class Gift(Center):
        name = "gift"

        class Settings(msgspec.Struct, forbid_unknown_fields=True):
            wrap_fee: int = 300

    kernel = mallcore.kernel(extra=[Gift], settings={"gift": {"wrap_fee": 450}})
    assert kernel.centers["gift"].settings.wrap_fee == 450
    assert dict(kernel.call_each("center_settings"))["gift"] is Gift.Settings


def test_hook_center_tables_are_created_for_enabled_centers(mallcore):
    md = sa.MetaData()
    sa.Table("gift_notes", md, sa.Column("id", sa.Integer, primary_key=True))

    class Gift(Center):
        name = "gift"
        tables = md

    kernel = mallcore.kernel(extra=[Gift])
    assert dict(kernel.call_each("center_tables"))["gift"] is md
    with kernel.db.transaction(write=False) as conn:
        assert "gift_notes" in sa.inspect(conn).get_table_names()


def test_hook_center_routes_mount_under_the_center_name(mallcore):
    class Hello(Center):
        name = "hello"

        @hookimpl
        def center_routes(self, kernel):
            @get("/hello/ping", sync_to_thread=False)
            def ping() -> dict[str, str]:
                return {"pong": self.name}

            return [ping]

    kernel = mallcore.kernel(extra=[Hello])
    assert mallcore.client(kernel, None).get("/hello/ping").json() == {"pong": "hello"}


def test_hook_center_startup_runs_in_order_and_center_shutdown_in_reverse(mallcore):
    log = []

    def make(name):
        class C(Center):
            @hookimpl
            def center_startup(self, kernel):
                log.append(("up", self.name))

            @hookimpl
            def center_shutdown(self, kernel):
                log.append(("down", self.name))

        C.name = name
        return C

    kernel = mallcore.kernel(
        extra=[make("first"), type("Second", (make("second"),), {"name": "second", "after": ("first",)})]
    )
    assert log == [("up", "first"), ("up", "second")]
    kernel.shutdown()
    assert log[2:] == [("down", "second"), ("down", "first")]


def test_hook_center_shutdown_failures_do_not_stop_the_others(mallcore):
    stopped = []

    class Fragile(Center):
        name = "fragile"

        @hookimpl
        def center_shutdown(self, kernel):
            raise RuntimeError("cannot close")

    class Sturdy(Center):
        name = "sturdy"

        @hookimpl
        def center_shutdown(self, kernel):
            stopped.append(self.name)

    kernel = mallcore.kernel(extra=[Sturdy, Fragile])
    kernel.shutdown()
    assert stopped == ["sturdy"]


def test_hook_center_jobs_run_once_per_interval_across_runners(mallcore):
    ran = []

    class Sweeper(Center):
        name = "sweeper"

        @hookimpl
        def center_jobs(self, kernel):
            return [Job("sweeper.sweep", 3600, lambda k: ran.append(1) or 1, "sweep")]

    kernel = mallcore.kernel(extra=[Sweeper])
    from mallcore.kernel.jobs import JobRunner

    a = kernel.jobs
    b = JobRunner(kernel.db, list(a.jobs.values()), kernel=kernel, log=kernel.log, tick_seconds=1)
    a.tick()
    b.tick()
    a.tick()
    assert ran == [1]
    assert kernel.jobs.run("sweeper.sweep") == 1  # the command runs it regardless
    with kernel.db.transaction(write=False) as conn:
        owner = conn.execute(sa.text("SELECT owner FROM job_leases WHERE name = 'sweeper.sweep'")).scalar()
    assert owner == a.owner


def test_hook_center_commands_appear_under_the_center_name(mallcore, tmp_path, monkeypatch):
    from mallcore import cli

    config = tmp_path / "m.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/c.db"\n[centers]\nenabled = ["catalog", "payment", "fee"]\n'
    )

    @click.command("hello")
    def hello():
        click.echo("hello from a center")

    monkeypatch.setattr(
        "mallcore_fee.FeeCenter.center_commands", hookimpl(lambda self: [hello]), raising=False
    )
    result = CliRunner().invoke(cli.cli, ["--config", str(config), "fee", "hello"])
    assert result.output.strip() == "hello from a center"


def test_hook_center_demo_seeds_in_center_order(mallcore):
    from mallcore.kernel.demo import seed

    class Stocker(Center):
        name = "stocker"
        after = ("catalog",)

        @hookimpl
        def center_demo(self, kernel, demo):
            demo.notes.append(f"stocked {len(demo.skus)} SKUs of {demo.shop}")

    kernel = mallcore.kernel(extra=[Stocker])
    lines = seed(kernel)
    assert any("stocked 5 SKUs of demo" in line for line in lines)
    assert count(kernel, "catalog_skus") == 5


def test_hook_order_view_adds_a_centers_part(mallcore):
    class Badge(Center):
        name = "badge"

        @hookimpl
        def order_view(self, kernel, conn, order, view):
            view.extra["badge"] = f"order-{order.id}"

    kernel, alice, _ = kit(mallcore, Badge)
    order = alice.post("/orders", json=order_body()).json()
    assert order["extra"]["badge"] == f"order-{order['id']}"
    assert alice.get(f"/orders/{order['id']}").json()["extra"]["badge"] == f"order-{order['id']}"


def test_hook_order_complete_runs_once_before_the_order_completes(mallcore):
    completed = []

    class Growth(Center):
        name = "growth"

        @hookimpl
        def order_complete(self, ctx):
            completed.append((ctx.order.id, ctx.order.status))

    kernel, alice, staff = kit(mallcore, Growth)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    for step in ("dispatch", "deliver", "complete"):
        assert (alice if step == "deliver" else staff).post(f"/orders/{oid}/{step}").status_code == 200
    assert staff.post(f"/orders/{oid}/complete").json()["code"] == "invalid_transition"
    assert [(oid, "delivered")] == completed


def test_hook_order_release_follows_a_hold_put_on_while_placing(mallcore):
    released = []

    class Review(Center):
        name = "review"

        @hookimpl
        def order_pre_validate(self, ctx):
            if ctx.order.customer == "alice":
                ctx.put_on_hold("review", "first order from a new device")

        @hookimpl
        def order_release(self, ctx, hold):
            released.append((ctx.order.id, hold, ctx.order.hold))

    kernel, alice, staff = kit(mallcore, Review)
    order = alice.post("/orders", json=order_body()).json()
    assert order["hold"] == "review"
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    refused = staff.post(f"/orders/{order['id']}/dispatch")
    assert (refused.status_code, refused.json()["code"]) == (409, "order_on_hold")
    with kernel.orders.stage("release", order["id"], SYSTEM) as ctx:
        kernel.orders.release_in(ctx, "checked by phone")
    assert [(order["id"], "review", None)] == released
    assert staff.post(f"/orders/{order['id']}/dispatch").status_code == 200
    kinds = [e["kind"] for e in staff.get(f"/orders/{order['id']}/timeline").json()]
    assert {"order.held", "order.released"} <= set(kinds)
    public = [e["kind"] for e in alice.get(f"/orders/{order['id']}/timeline").json()]
    assert not {"order.held", "order.released"} & set(public)
    with kernel.orders.stage("release", order["id"], SYSTEM) as ctx, pytest.raises(Conflict):
        kernel.orders.release_in(ctx)


def test_hook_coupon_grant_first_answer_wins_inside_the_callers_transaction(mallcore):
    class Wallet(Center):
        name = "wallet"

        @hookimpl
        def coupon_grant(self, kernel, conn, customer, template, reason, source):
            return f"C-{template}-{customer}-{source}"

    kernel = mallcore.kernel(extra=[Wallet])
    with kernel.db.transaction() as conn:
        code = kernel.hook.coupon_grant(
            kernel=kernel, conn=conn, customer="alice", template=3, reason="birthday", source="membership"
        )
    assert code == "C-3-alice-membership"
    bare = mallcore.kernel()
    with bare.db.transaction() as conn:
        none = bare.hook.coupon_grant(
            kernel=bare, conn=conn, customer="alice", template=3, reason="birthday", source="membership"
        )
    assert none is None


def test_hook_after_sale_release_reaches_the_center_that_keeps_cases_with_the_outcome(mallcore):
    ended = []

    class Cases(Center):
        name = "cases"

        @hookimpl
        def after_sale_release(self, ctx, case_id, actor, note, outcome):
            ended.append((ctx.order.id, case_id, actor, note, outcome))
            ctx.timeline(
                f"cases.{outcome}", f"case {case_id}: {outcome}", ref=f"after_sale:{case_id}", public=False
            )

    kernel, alice, staff = kit(mallcore, Cases)
    oid = alice.post("/orders", json=order_body()).json()["id"]
    with kernel.orders.stage("after_sale", oid, SYSTEM) as ctx:
        kernel.hook.after_sale_release(ctx=ctx, case_id=5, actor="risk-1", note="genuine", outcome="release")
    with kernel.orders.stage("after_sale", oid, SYSTEM) as ctx:
        kernel.hook.after_sale_release(ctx=ctx, case_id=6, actor="risk-1", note="abuse", outcome="reject")
    assert [(oid, 5, "risk-1", "genuine", "release"), (oid, 6, "risk-1", "abuse", "reject")] == ended
    entries = staff.get(f"/orders/{oid}/timeline?ref=after_sale:5").json()
    assert [e["kind"] for e in entries] == ["cases.release"]


def test_hook_customer_coupons_each_center_answers_with_its_own_list(mallcore):
    class Vouchers(Center):
        name = "vouchers"

        @hookimpl
        def customer_coupons(self, kernel, conn, customer):
            return [{"code": f"V-{customer}", "name": "10 off", "status": "available", "valid_until": None}]

    class Empty(Center):
        name = "empty"

        @hookimpl
        def customer_coupons(self, kernel, conn, customer):
            return []

    kernel = mallcore.kernel(extra=[Vouchers, Empty])
    with kernel.db.transaction(write=False) as conn:
        answers = kernel.call_each("customer_coupons", kernel=kernel, conn=conn, customer="alice")
    coupon = {"code": "V-alice", "name": "10 off", "status": "available", "valid_until": None}
    assert answers == [("empty", []), ("vouchers", [coupon])]  # center order: by name here
    bare = mallcore.kernel()
    with bare.db.transaction(write=False) as conn:
        assert bare.call_each("customer_coupons", kernel=bare, conn=conn, customer="alice") == []


def test_hook_points_moved_is_booked_inside_the_movers_transaction(mallcore):
    booked = []

    class Books(Center):
        name = "books"

        @hookimpl
        def points_moved(self, conn, customer, kind, points, amount, currency, order_id):
            conn.execute(kt.kernel_meta.insert().values(key=f"booked-{kind}", value=str(amount)))
            booked.append((customer, kind, points, amount, currency, order_id))
            if kind == "expire":
                raise Conflict("books closed", code="books_closed")

    def move(kernel, kind, points):
        with kernel.db.transaction() as conn:
            kernel.hook.points_moved(
                kernel=kernel, conn=conn, customer="alice", kind=kind, points=points, amount=points * 2,
                currency="CNY", order_id=7 if kind == "earn" else None, shop=None, reason=kind,
            )  # fmt: skip

    def stored(kernel):
        with kernel.db.transaction(write=False) as conn:
            rows = conn.execute(sa.select(kt.kernel_meta.c.key).where(kt.kernel_meta.c.key.like("booked-%")))
            return sorted(rows.scalars())

    kernel = mallcore.kernel(extra=[Books])
    move(kernel, "earn", 120)
    assert booked == [("alice", "earn", 120, 240, "CNY", 7)]
    with pytest.raises(Conflict):
        move(kernel, "expire", -5)
    assert stored(kernel) == ["booked-earn"]  # the raise rolled the mover's transaction back
