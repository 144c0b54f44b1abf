"""库存中心 + 调度中心 WMS and dispatch: warehouses, stock, reservations, warehouse choice.

Hooks:

- ``order_reserve`` (``reserve_on = "place"``, the default): holds stock in
  one warehouse that fills every line, nearest the delivery region (else a
  split over the fewest warehouses); one conditional UPDATE for all lines,
  so stock is never oversold; ``OutOfStock`` (409 ``out_of_stock``, naming
  the SKUs) otherwise.
- ``order_reserve_batch``: the same for a batch of combined placements,
  with one conditional UPDATE per SKU for the batch's total (earliest
  arrivals first when it does not fit; see :mod:`.batch`).
- ``order_pay``: with ``reserve_on = "pay"`` holds stock once the payment is
  captured (and checks availability before the provider is called); then,
  unless ``manual_dispatch``, dispatches the order right after the payment
  commits.
- ``order_dispatch``: picks the warehouse(s) (nearest single warehouse, else
  fewest warehouses then cheapest freight by ``freight_quote``), ships the
  units (outbound movements, reservations consumed), fills ``ctx.parcels``
  for TMS and says on the timeline which warehouses and why.
- ``order_cancel``: releases the order's holds.
- ``order_release``: a paid order that was on hold (risk review) is
  dispatched once the hold is lifted.
- ``order_after_sale``: at ``inspected`` puts passed units back by
  disposition (restock, B-grade, quarantine), except for a repair (the item
  goes back to its owner); at ``refunded`` for a refund before shipment,
  releases those units' holds.

Jobs: ``wms.expire_unpaid`` (cancel unpaid orders past their hold) and
``wms.dispatch_paid`` (dispatch paid orders left behind). Command: ``mallcore
wms expire``. Routes under ``/wms``; see ``docs/centers/wms.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import click
import sqlalchemy as sa

from mallcore.kernel import (
    Center,
    Job,
    Kernel,
    OrderContext,
    OutOfStock,
    Payment,
    PlacementIntent,
    format_amount,
    hookimpl,
    pass_kernel,
    utcnow,
)
from mallcore.kernel.aftersale import AfterSaleCase
from mallcore.kernel.http import center_router

from . import console, jobs
from . import tables as t
from .batch import BatchReserve
from .http import CONTROLLERS
from .planning import Plan, plans
from .restock import Returns
from .schemas import WmsSettings
from .stock import StockService, movement
from .warehouses import Warehouses

# Stash key: availability read before the provider charged (reserve-at-pay).
_PAY_CHECK = object()
# Order states in which nothing is held any more (the goods went out).
_SHIPPING = frozenset({"dispatched", "shipped", "delivered", "completed"})


class WmsCenter(Center):
    name = "wms"
    requires = ("catalog",)
    after = ("payment",)
    description = "库存中心 + 调度中心 WMS and dispatch"
    tables = t.metadata
    Settings = WmsSettings

    warehouses: Warehouses
    stock: StockService
    returns: Returns
    batch: BatchReserve
    settings: WmsSettings

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        self.warehouses = Warehouses(settings)
        self.stock = StockService(kernel, settings, self.warehouses)
        self.returns = Returns(self.stock, self.warehouses, settings)
        self.batch = BatchReserve(self.stock, hold_minutes=settings.unpaid_hold_minutes)

    # -- placement ---------------------------------------------------------------

    @hookimpl
    def order_reserve(self, ctx: OrderContext) -> None:
        if self.settings.reserve_on != "place":
            return
        placed = ctx.order.placed_at or utcnow()
        self.stock.reserve(
            ctx.conn,
            ctx.order,
            ctx.lines,
            actor=ctx.principal.subject,
            reason="order placed",
            expires_at=placed + timedelta(minutes=self.settings.unpaid_hold_minutes),
        )

    @hookimpl
    def order_reserve_batch(self, conn: sa.Connection, intents: Sequence[PlacementIntent]) -> None:
        """Combined placements: one conditional UPDATE per SKU for the batch (see :mod:`.batch`)."""
        if self.settings.reserve_on == "place":
            self.batch(conn, intents)

    # -- payment -------------------------------------------------------------------

    @hookimpl(tryfirst=True, specname="order_pay")
    def order_pay_check(self, ctx: OrderContext, payment: Payment) -> None:
        """Reserve-at-pay: refuse before the provider charges if the stock is gone."""
        if self.settings.reserve_on != "pay" or payment.status != "unhandled":
            return
        if self.stock.has_live(ctx.conn, ctx.order.id or 0):
            ctx.stash[_PAY_CHECK] = None
            return
        need = {line.sku: line.quantity for line in ctx.lines}
        region = ctx.order.address.region if ctx.order.address is not None else None
        sites = self.warehouses.ranked(ctx.conn, region)
        avail = self.stock.available(ctx.conn, need)
        if not plans(need, avail, sites, region, max_warehouses=self.settings.max_split):
            raise self.stock.out_of_stock(need, avail, sites)
        ctx.stash[_PAY_CHECK] = avail

    @hookimpl(trylast=True)
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        if payment.status != "captured":
            return
        order_id = ctx.order.id
        assert order_id is not None
        if self.settings.reserve_on == "pay":
            checked = ctx.stash.get(_PAY_CHECK, False)
            if checked is False and self.stock.has_live(ctx.conn, order_id):
                checked = None
            if checked is not None:
                self._reserve_paid(ctx, payment, checked or None)
        if not self.settings.manual_dispatch and not ctx.order.hold:
            kernel = self.kernel
            ctx.after_commit(lambda: jobs.dispatch_one(kernel, self, order_id))

    @hookimpl
    def order_release(self, ctx: OrderContext, hold: str) -> None:
        """A paid order held back from automatic dispatch goes out once released."""
        if ctx.order.status == "paid" and not self.settings.manual_dispatch:
            kernel, order_id = self.kernel, ctx.order.id
            assert order_id is not None
            ctx.after_commit(lambda: jobs.dispatch_one(kernel, self, order_id))

    def _reserve_paid(self, ctx: OrderContext, payment: Payment, avail: Any) -> None:
        """Reserve-at-pay once captured. If the stock went since the check (or the capture
        came later, by webhook), the provider already has the money: rolling the stage back
        would lose the payment, so the order stays paid, holds nothing, and is shipped when
        stock arrives (dispatch plans from what is available; ``wms.dispatch_paid`` retries).
        A ``no_charge`` payment (an exchange's replacement) took no money: it is refused."""
        if payment.method == "no_charge":
            self.stock.reserve(
                ctx.conn,
                ctx.order,
                ctx.lines,
                actor=ctx.principal.subject,
                reason="order paid",
                expires_at=None,
            )
            return
        try:
            with ctx.conn.begin_nested():
                self.stock.reserve(
                    ctx.conn,
                    ctx.order,
                    ctx.lines,
                    actor=ctx.principal.subject,
                    reason="order paid",
                    expires_at=None,
                    avail=avail,
                )
        except OutOfStock as exc:
            skus = exc.extra.get("skus", [])
            ctx.log.warning("wms.paid_out_of_stock", skus=skus)
            ctx.timeline(
                "wms.backorder",
                f"Paid, but out of stock ({', '.join(skus)}): the order ships as soon as stock arrives",
                zh=f"已付款,但库存不足({', '.join(skus)}):到货后立即发货",
                data={"skus": skus},
            )

    # -- dispatch --------------------------------------------------------------------

    @hookimpl
    def order_dispatch(self, ctx: OrderContext) -> None:
        plan, parcels, compared = self.stock.dispatch(ctx)
        ctx.parcels = parcels
        names = self.warehouses.known(ctx.conn)

        def label(sep: str, left: str, right: str) -> str:
            return sep.join(
                f"{names[c].site.name}{left}{c}{right}" if c in names else c for c in plan.warehouses
            )

        en, zh = _explain(plan, label(", ", " (", ")"), label("、", "(", ")"), compared, ctx.order.currency)
        ctx.timeline(
            "wms.dispatch",
            en,
            zh=zh,
            data={
                "rule": plan.rule,
                "warehouses": list(plan.warehouses),
                "freight": plan.freight,
                "plans_compared": compared,
                "parcels": [
                    {
                        "warehouse": p.warehouse,
                        "lines": [list(x) for x in p.lines],
                        "weight_grams": p.weight_grams,
                    }
                    for p in parcels
                ],
            },
        )
        ctx.emit(
            "wms.dispatched",
            {"warehouses": list(plan.warehouses), "rule": plan.rule, "parcels": len(parcels)},
        )

    # -- cancellation and after-sale ----------------------------------------------------

    @hookimpl
    def order_cancel(self, ctx: OrderContext, reason: str) -> None:
        assert ctx.order.id is not None
        self.stock.release_order(ctx.conn, ctx.order.id, actor=ctx.principal.subject, reason=reason)

    @hookimpl
    def order_after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        ref = f"after_sale:{case.id}"
        if case.status == "awaiting_return":
            self.returns.fill_address(ctx.conn, case)
        if case.status == "inspected" and case.type != "repair":
            # A repair's item goes back to its owner once repaired: never into stock.
            done = self.returns.restock(ctx, case)
            if done:
                what = ", ".join(
                    f"{d['quantity']} x {d['sku']} → {d['warehouse']} ({d['bucket']})" for d in done
                )
                ctx.timeline(
                    "wms.return_restock",
                    f"Returned goods put back: {what}",
                    zh=f"退货已入库:{what}",
                    public=False,
                    ref=ref,
                    data={"restocked": done},
                )
        elif case.status == "refunded" and case.type == "refund_only" and not case.shipped:
            if ctx.order.status in _SHIPPING:  # went out meanwhile: nothing is held any more
                ctx.log.info("wms.release_skipped", case_id=case.id, status=ctx.order.status)
                return
            units = self.stock.release_lines(ctx, case)
            ctx.timeline(
                "wms.release",
                f"Stock released for {units} unit(s) refunded before shipment",
                zh=f"发货前退款,已释放 {units} 件库存",
                public=False,
                ref=ref,
                data={"units": units},
            )

    # -- what the center brings ------------------------------------------------------------

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages()

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [center_router(self, CONTROLLERS)]

    @hookimpl
    def center_jobs(self, kernel: Kernel) -> list[Job]:
        return [
            Job(
                "wms.expire_unpaid",
                self.settings.expire_every_seconds,
                lambda k: jobs.expire_unpaid(k, self),
                "cancel unpaid orders whose stock hold ran out",
            ),
            Job(
                "wms.dispatch_paid",
                self.settings.dispatch_retry_every_seconds,
                lambda k: jobs.dispatch_paid(k, self),
                "dispatch paid orders that automatic dispatch left behind",
            ),
        ]

    @hookimpl
    def center_commands(self) -> list[click.Command]:
        center_name = self.name

        @click.command("expire")
        @pass_kernel
        def expire(kernel: Kernel) -> None:
            """Cancel unpaid orders whose hold ran out, releasing their stock (safe to run anywhere)."""
            n = jobs.expire_unpaid(kernel, kernel.centers[center_name])
            click.echo(f"cancelled {n} unpaid order(s)")

        @click.command("dispatch-pending")
        @pass_kernel
        def dispatch_pending(kernel: Kernel) -> None:
            """Dispatch paid orders that automatic dispatch left behind."""
            n = jobs.dispatch_paid(kernel, kernel.centers[center_name])
            click.echo(f"dispatched {n} order(s)")

        return [expire, dispatch_pending]

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        now = utcnow()
        w, m = t.warehouses.c, t.movements.c
        with kernel.db.transaction() as conn:
            have = set(conn.execute(sa.select(w.code)).scalars())
            new = [x for x in DEMO_WAREHOUSES if x[0] not in have]
            if new:
                conn.execute(
                    t.warehouses.insert(),
                    [
                        {
                            "code": code,
                            "name": name,
                            "region": region,
                            "active": True,
                            "priority": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for code, name, region, _ in new
                    ],
                )
            for code, (contact, phone, province, city, district, street) in DEMO_ADDRESSES.items():
                # Demo warehouses made before they had addresses get one too.
                conn.execute(
                    t.warehouses.update()
                    .where(w.code == code, w.street.is_(None))
                    .values(
                        contact=contact,
                        phone=phone,
                        province=province,
                        city=city,
                        district=district,
                        street=street,
                        updated_at=now,
                    )
                )
            stocked = set(
                (row.sku, row.warehouse)
                for row in conn.execute(
                    sa.select(m.sku, m.warehouse).where(m.kind == "inbound", m.ref == "demo")
                ).all()
            )
            rows = [
                (sku, code, units)
                for code, _, _, units in DEMO_WAREHOUSES
                for sku in demo.skus
                if (sku, code) not in stocked
            ]
            if rows:
                self.stock.add(conn, [{"sku": sku, "warehouse": wh, "on_hand": q} for sku, wh, q in rows])
                conn.execute(
                    t.movements.insert(),
                    [
                        movement(sku, wh, "inbound", "demo", "demo stock", now, on_hand=q, ref="demo")
                        for sku, wh, q in rows
                    ],
                )
        self.warehouses.invalidate()
        demo.notes.append(
            "wms: warehouses "
            + ", ".join(
                f"{code} {name} ({region}, {units} of each SKU)"
                for code, name, region, units in DEMO_WAREHOUSES
            )
        )


DEMO_WAREHOUSES = [
    ("SH", "上海仓", "310000", 100),
    ("GZ", "广州仓", "440100", 60),
    ("BJ", "北京仓", "110000", 30),
]
# Where customers send returns to each demo warehouse.
DEMO_ADDRESSES = {
    "SH": ("售后组 张三", "021-60001234", "上海市", "上海市", "青浦区", "华新镇华腾路 1288 号 3 号库"),
    "GZ": ("售后组 李四", "020-80001234", "广东省", "广州市", "白云区", "太和镇永兴村物流园 B2 仓"),
    "BJ": ("售后组 王五", "010-60001234", "北京市", "北京市", "大兴区", "京南物流基地 7 号库"),
}


def _explain(plan: Plan, label: str, label_zh: str, compared: int, currency: str) -> tuple[str, str]:
    if plan.rule == "single":
        return (
            f"Shipping from {label}: the nearest warehouse that has every item",
            f"由{label_zh}发货:距收货地址最近且商品齐全的仓库",
        )
    n = len(plan.warehouses)
    en = f"Shipping in {n} parcels from {label}: no single warehouse has every item, so the order is split across the fewest warehouses"
    zh = f"分{n}个包裹由{label_zh}发货:没有一个仓库商品齐全,按最少仓库拆单"
    if plan.freight is not None and compared > 1:
        en += f", the cheapest of {compared} ways (freight {format_amount(plan.freight, currency)})"
        zh += f",在{compared}种方案中运费最低({format_amount(plan.freight, currency)})"
    else:
        en += ", nearest first"
        zh += ",优先最近的仓库"
    return en, zh


__all__ = ["WmsCenter"]
