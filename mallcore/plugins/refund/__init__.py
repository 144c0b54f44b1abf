"""客服 after-sale: refunds, returns, exchanges and repairs the customer can follow step by step.

Cases of four types (refund only 仅退款, return and refund 退货退款, exchange
换货, repair 返修) move through the state machine of :mod:`.states`; each
step is written to the order's timeline (``ref="after_sale:<id>"``) in
Chinese and English and announced to the other centers through
``order_after_sale`` (WMS restocks, TMS tracks the return parcel and books
pickups, membership and promotion claw back). Money moves only through the
kernel's refund ledger (``kernel.refunds.request``).

Hooks:

- ``order_refund``: a case's refund approved by finance (or rejected) moves
  the case (``refunded``, or back to the merchant).
- ``after_sale_parcel``: TMS's carrier events on return parcels and pickups.
- ``after_sale_release``: the center that held a new request (``case.hold``,
  e.g. risk) releases or rejects it (see :mod:`.cases.holds`; a
  ``case.fast_track`` is honoured there too).
- ``order_cancel``: open requests of a cancelled order are closed.
- ``order_view``: the order's cases (and, on a replacement order, the case
  it replaces) under ``extra``.
- ``console_pages``: the after-sale workbench and receiving in the staff
  console (:mod:`.console`).
- ``tracking_page``: the after-sale section of the customer's tracking page
  (:mod:`.tracking`): each case, where to send the goods and by when.

The work is done by :mod:`.cases`, one module per job (see
:mod:`.cases.service`). Routes (:mod:`.routes`): ``/after-sales`` and
``/refund/reasons``. SLA timers run as the job ``refund.sla``
and as ``mallcore refund sla``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
import msgspec
import sqlalchemy as sa

from mallcore.kernel import Center, Job, Kernel, OrderContext, Refund, TrackingPage, hookimpl, utcnow
from mallcore.kernel.aftersale import ParcelEvent

from . import console, sla
from . import tables as t
from .cases import Cases
from .cases.records import case_from_row
from .routes import routes
from .schemas import RefundSettings
from .tracking import add_cases


class RefundCenter(Center):
    name = "refund"
    requires = ("payment",)
    after = ("catalog", "wms", "tms", "finance")
    description = "客服 after-sale: refunds, returns, exchanges, repairs"
    tables = t.metadata
    Settings = RefundSettings

    def __init__(self) -> None:
        super().__init__()
        # Tests move time forward by replacing this.
        self.clock: Callable[[], datetime] = utcnow
        self._cases: Cases | None = None

    @property
    def cases(self) -> Cases:
        if self._cases is None:
            # (the clock is read each time: tests move it by replacing ``self.clock``)
            self._cases = Cases(self.kernel, self.settings, lambda: self.clock())
        return self._cases

    # -- hooks ---------------------------------------------------------------------

    @hookimpl
    def order_refund(self, ctx: OrderContext, refund: Refund) -> None:
        if refund.source == self.name and refund.status in ("refunded", "rejected"):
            self.cases.settlement.refund_settled(ctx, refund)

    @hookimpl
    def after_sale_parcel(self, ctx: OrderContext, event: ParcelEvent) -> None:
        self.cases.returns.parcel_event(ctx, event)

    @hookimpl
    def after_sale_release(
        self, ctx: OrderContext, case_id: int, actor: str, note: str, outcome: str
    ) -> None:
        self.cases.holds.end(ctx, case_id, actor, note, outcome)

    @hookimpl
    def order_cancel(self, ctx: OrderContext, reason: str) -> None:
        self.cases.decisions.order_cancelled(ctx)

    @hookimpl
    def order_view(self, kernel: Kernel, conn: sa.Connection, order: Any, view: Any) -> None:
        # Placement renders orders too: keep that path free of this query. No
        # case exists on an unpaid order, and a replacement is linked once paid.
        if not order.id or order.status == "awaiting_payment":
            return
        c = t.cases.c
        rows = conn.execute(
            sa.select(t.cases)
            .where(sa.or_(c.order_id == order.id, c.replacement_order_id == order.id))
            .order_by(c.id)
        ).all()
        mine = [case_from_row(r) for r in rows if r.order_id == order.id]
        if mine:
            back = self.settings.return_warehouse
            view.extra["after_sales"] = [
                {
                    "id": case.id,
                    "type": case.type,
                    "status": case.status,
                    "refund_amount": case.refund_amount,
                    "replacement_order_id": case.replacement_order_id,
                    # where the goods go and by when from approval on, then the waybill
                    # (a held case's deadline is not promised: the reader may be its customer)
                    "return_parcel": msgspec.to_builtins(
                        case.parcel_back(promised=case.hold is None, warehouse=back)
                    ),
                }
                for case in mine
            ]
        for r in rows:
            if r.replacement_order_id == order.id:
                view.extra["replacement_for"] = {"case_id": r.id, "order_id": r.order_id}

    @hookimpl
    def tracking_page(self, conn: sa.Connection, page: TrackingPage) -> None:
        add_cases(page, conn, self.cases.records)

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return routes(self)

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages(self)

    @hookimpl
    def center_jobs(self, kernel: Kernel) -> list[Job]:
        return [
            Job(
                "refund.sla",
                self.settings.sla_interval_seconds,
                lambda k: sla.run(self),
                "after-sale SLA timers: auto-approve, close, auto-receive, escalate",
            )
        ]

    @hookimpl
    def center_commands(self) -> list[click.Command]:
        from mallcore.kernel import pass_kernel

        @click.command("sla")
        @click.option("--dry-run", is_flag=True, help="List the due timers without acting.")
        @pass_kernel
        def sla_command(kernel: Kernel, dry_run: bool) -> None:
            """Fire due after-sale SLA timers now (safe beside running servers)."""
            center = kernel.centers["refund"]
            if dry_run:
                for row in sla.due(center, center.clock()):
                    click.echo(
                        f"case {row.id} (order {row.order_id}) {row.status}: {row.timer} due {row.due_at}"
                    )
                return
            click.echo(f"{sla.run(center)} case(s) took their default outcome")

        return [sla_command]

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        demo.notes.append(
            "refund: open an after-sale case with POST /after-sales once an order is delivered; "
            "the customer follows it on the order's tracking_url"
        )
