"""Orders: placement and every later stage, each in one transaction.

A stage opens a write transaction, loads and locks the order, builds an
:class:`OrderContext`, calls the stage's hook, then writes the order's
changes, its timeline entries and its outbox events (one statement each) and
commits. After the commit, events go to subscribers and ``after_commit``
callbacks run. A raise anywhere rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import sqlalchemy as sa

from . import fast, pricing, states, tracing
from . import tables as t
from .access import require
from .context import OrderContext
from .errors import Conflict, Forbidden, InvalidInput, NotFound, PaymentFailed
from .idempotency import Reply
from .order_store import stored_adjustment
from .schemas import HintView, OrderView, PaymentView, PlaceOrder
from .states import OrderStatus as S
from .types import SYSTEM, Adjustment, Event, Line, Order, Payment, Phase, Principal, utcnow

if TYPE_CHECKING:
    from .config import OrdersConfig
    from .db import Database
    from .events import EventBus
    from .idempotency import Idempotency
    from .metrics import Metrics
    from .order_store import OrderStore
    from .order_views import OrderViews
    from .plugins import HookCalls
    from .refunds import RefundService
    from .shops import ShopService


class Combined(Protocol):
    """What places orders when ``[orders.combine]`` is on (``kernel/combine.py``'s Combiner)."""

    def __call__(
        self, principal: Principal, order: Order, lines: list[Line], reply: Reply
    ) -> tuple[OrderContext, OrderView, bytes]: ...

    async def place_async(
        self, principal: Principal, order: Order, lines: list[Line], reply: Reply
    ) -> tuple[OrderContext, OrderView, bytes]: ...


class OrderService:
    """Every stage of an order: placement, payment, cancellation, dispatch, delivery...

    ``calls`` is how the kernel calls the lifecycle hooks (see
    :class:`~mallcore.kernel.plugins.HookCalls`); the other collaborators are
    the services a stage uses. ``load``, ``visible`` and ``load_lines`` read
    an order to act on (see :class:`~mallcore.kernel.order_store.OrderStore`).
    """

    def __init__(
        self,
        db: Database,
        store: OrderStore,
        views: OrderViews,
        calls: HookCalls,
        events: EventBus,
        idempotency: Idempotency,
        shops: ShopService,
        refunds: RefundService,
        *,
        config: OrdersConfig,
        log: Any,
        metrics: Metrics,
    ) -> None:
        self.db = db
        self.store = store
        self.views = views
        self.calls = calls
        self.events = events
        self.idempotency = idempotency
        self.shops = shops
        self.refunds = refunds
        self.config = config
        self.log = log
        self.metrics = metrics
        self.load = store.load
        self.visible = store.visible
        self.load_lines = store.load_lines
        self.load_adjustments = store.load_adjustments
        # The statements every placement runs go to the driver precompiled (see fast.py).
        self._insert_order = fast.insert(t.orders, ORDER_KEYS, db, returning=("id",))
        # RETURNING line_no too: a multi-row INSERT may return rows in any order.
        self._insert_lines = fast.MultiRowInsert(t.order_lines, LINE_KEYS, db, ("id", "line_no"))
        self._insert_timeline = fast.insert(t.order_timeline, TIMELINE_KEYS, db)
        # Set by the kernel when ``[orders.combine]`` is on: places through the combiner.
        self.combined: Combined | None = None

    def context(
        self,
        stage: str,
        order: Order,
        conn: sa.Connection,
        principal: Principal,
        lines: list[Line] | None = None,
        *,
        shared: dict[Any, Any] | None = None,
    ) -> OrderContext:
        """An :class:`OrderContext` on ``conn``, e.g. to price a probe order or quote a refund.

        Nothing it buffers is written unless it is the context of a stage. ``shared``: the
        ``ctx.shared`` of the other orders placed in the same transaction.
        """
        return OrderContext(
            stage,
            order,
            conn,
            principal,
            lines,
            load_lines=self.store.load_lines,
            log=self.log,
            shared=shared,
        )

    # -- the stage runner ------------------------------------------------------

    @contextmanager
    def stage(self, name: str, order_id: int, principal: Principal = SYSTEM) -> Iterator[OrderContext]:
        """Run one stage on an existing order: ``with kernel.orders.stage(...) as ctx``.

        The order is loaded, locked and checked visible to ``principal``
        (404 otherwise). Leaving the block writes and commits; a raise rolls
        back. Stages do not nest.
        """
        try:
            with tracing.stage_span(name, order_id), self.db.transaction() as conn:
                order = self.store.visible(conn, principal, order_id, lock=True)
                ctx = self.context(name, order, conn, principal)
                yield ctx
                self.finish(ctx)
        except Exception as exc:
            self.metrics.stage_failed(name, exc)
            raise
        self.committed(ctx)

    def finish(self, ctx: OrderContext, *more: OrderContext) -> None:
        """Write what the stage buffered, in its transaction (several orders' stages: one
        statement for all their timeline entries, one for all their events)."""
        conn = ctx.conn
        timeline: list[dict[str, Any]] = []
        events: list[Event] = []
        for each in (ctx, *more):
            if each._session is not None:
                each._session.flush()
                each._session.close()
            order_id = each.order.id
            if each._changes:
                conn.execute(
                    t.orders.update().where(t.orders.c.id == order_id).values(**_dump_changes(each._changes))
                )
            timeline.extend(
                {
                    "order_id": e.order_id or order_id,
                    "at": e.at,
                    "kind": e.kind,
                    "actor": e.actor,
                    "message": e.message,
                    "messages": e.messages,
                    "public": e.public,
                    "ref": e.ref,
                    "data": e.row_data(),
                }
                for e in each._timeline
            )
            for event in each._events:
                if event.order_id is None:
                    event.order_id = order_id
            events.extend(each._events)
        if timeline:
            self._insert_timeline.execute(conn, timeline)
        if events:
            self.events.write(conn, events)

    def placed(self, ctx: OrderContext) -> None:
        """Once a placement has committed: its log line and count, then :meth:`committed`."""
        ctx.log.info("order.placed", total=ctx.order.total, lines=len(ctx.lines))
        self.metrics.orders_placed.inc()
        self.committed(ctx)

    def committed(self, ctx: OrderContext) -> None:
        """Once the stage has committed: hand its events to subscribers, run its after-commit callbacks."""
        if ctx._events:
            self.events.deliver(ctx._events)
        for fn in ctx._after_commit:
            try:
                fn()
            except Exception:
                ctx.log.exception("after_commit.failed", callback=getattr(fn, "__name__", repr(fn)))

    # -- placement -------------------------------------------------------------

    def _new_order(self, principal: Principal, req: PlaceOrder) -> tuple[Order, list[Line]]:
        require(principal, "customer")
        cfg = self.config
        merged: dict[str, int] = {}
        for line in req.lines:
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        if len(merged) > cfg.max_lines:
            raise InvalidInput(f"an order has at most {cfg.max_lines} lines", code="too_many_lines")
        for sku, quantity in merged.items():
            if quantity > cfg.max_quantity:
                raise InvalidInput(
                    f"at most {cfg.max_quantity} units of {sku} per order", code="quantity_too_large"
                )
        shop = self.shops.get(req.shop)
        now = utcnow()
        order = Order(
            shop=req.shop,
            customer=principal.subject,
            status=S.AWAITING_PAYMENT.value,
            currency=shop.currency,
            address=req.address,
            coupons=list(req.coupons),
            points=req.points,
            placed_at=now,
            updated_at=now,
            extra={"note": req.note} if req.note else {},
        )
        lines = [Line(sku=sku, quantity=q, line_no=i) for i, (sku, q) in enumerate(merged.items(), 1)]
        return order, lines

    def preview(self, principal: Principal, req: PlaceOrder, *, lang: str = "en") -> OrderView:
        """Price an order without placing it: every adjustment explained, and hints of what
        the customer could still get (in ``lang``)."""
        order, lines = self._new_order(principal, req)
        with self.db.transaction(write=False) as conn:
            ctx = self.context("preview", order, conn, principal, lines)
            self.calls.order_pre_validate(ctx=ctx)
            self.calls.order_price(ctx=ctx)
            applied = pricing.price(order, lines, ctx.adjustments)
            conn.rollback()
        order.id = 0
        for line in lines:
            line.id = 0
        view = self.views.render(order, lines, applied)
        view.hints = [
            HintView(
                source=h.source,
                message=(h.messages or {}).get(lang) or h.message,
                code=h.code,
                data=h.data,
            )
            for h in ctx.hints
        ]
        return view

    def place(
        self, principal: Principal, req: PlaceOrder, *, reply: Reply | None = None
    ) -> tuple[OrderView, bytes]:
        """Place an order; ``reply`` (an HTTP write's) gets the 201 answer in the transaction.

        With ``[orders.combine]`` on, the order may share its transaction with
        placements that arrived at the same time (see :mod:`.combine`); its
        answer is the same as if it had been placed alone.
        """
        try:
            order, lines = self._new_order(principal, req)
            place = self.combined or self.place_alone
            ctx, view, body = place(principal, order, lines, reply or Reply())
        except Exception as exc:
            self.metrics.stage_failed("place", exc)
            raise
        self.placed(ctx)
        return view, body

    async def place_async(
        self, principal: Principal, req: PlaceOrder, reply: Reply
    ) -> tuple[OrderView, bytes]:
        """:meth:`place` for a coroutine (``[orders.combine] writer = "async"``): the order is
        checked here and placed by the combiner's writer thread, which also logs it
        (``order.placed``), counts it, hands its events to subscribers and runs its
        after-commit callbacks (:meth:`placed`)."""
        combiner = self.combined
        assert combiner is not None
        try:
            order, lines = self._new_order(principal, req)
            _, view, body = await combiner.place_async(principal, order, lines, reply)
        except Exception as exc:
            self.metrics.stage_failed("place", exc)
            raise
        return view, body

    def place_alone(
        self, principal: Principal, order: Order, lines: list[Line], reply: Reply
    ) -> tuple[OrderContext, OrderView, bytes]:
        """Place one order in its own transaction (not yet handed to subscribers)."""
        with tracing.stage_span("place"), self.db.transaction() as conn:
            ctx = self.context("place", order, conn, principal, lines)
            view = self._place(ctx)
            body = reply(conn, view, 201)
            self.finish(ctx)
        return ctx, view, body

    def place_in(
        self, outer: OrderContext, req: PlaceOrder, *, customer: str, no_charge: str | None = None
    ) -> OrderView:
        """Place an order for ``customer`` inside another stage's transaction.

        Used for an exchange's replacement: ``parent_id`` is the outer order;
        with ``no_charge`` (the reason shown) a settlement adjustment brings
        the total to zero and the order is paid at once (method
        ``no_charge``), so it goes on to reserve and dispatch like any order.
        Its events are delivered after the outer stage commits.
        """
        principal = Principal(customer, frozenset({"customer"}))
        order, lines = self._new_order(principal, req)
        order.parent_id = outer.order.id
        ctx = self.context("place", order, outer.conn, principal, lines)
        view = self._place(ctx, no_charge=no_charge)
        if no_charge and order.total == 0:
            payment = Payment(method="no_charge", amount=0, currency=order.currency, status="captured")
            self.calls.order_pay(ctx=ctx, payment=payment)
            self.mark_paid(ctx, payment)
            view.status = order.status
        self.finish(ctx)
        outer.after_commit(self.metrics.orders_placed.inc)
        outer.after_commit(lambda: self.committed(ctx))
        return view

    def _place(self, ctx: OrderContext, *, no_charge: str | None = None) -> OrderView:
        order, lines, conn = ctx.order, ctx.lines, ctx.conn
        self.calls.order_pre_validate(ctx=ctx)
        self.calls.order_price(ctx=ctx)
        if no_charge:
            # Clamped to whatever the order stands at: the total becomes zero.
            ctx.adjust("kernel", no_charge, -(10**15), phase=Phase.SETTLEMENT, code="no_charge")
        applied = pricing.price(order, lines, ctx.adjustments)
        # The adjustments go in the order's own row (by line number): no statement of their own.
        order.id = self._insert_order.execute(conn, _order_row(order, applied)).scalar()
        returned = self._insert_lines.execute(conn, [_line_row(order.id, line) for line in lines])
        ids = {line_no: line_id for line_id, line_no in returned.rows}
        for line in lines:
            line.id = ids[line.line_no]
        self.calls.order_reserve(ctx=ctx)
        by_no: dict[int, int] = {line.line_no: line.id for line in lines if line.id is not None}
        for adj in applied:  # as load_adjustments gives them: by line id
            adj.line_id = by_no[adj.line_no] if adj.line_no is not None else None
            adj.allocation = {by_no[no]: amount for no, amount in (adj.allocation or {}).items()}
        # No timeline row for the placement itself: the order row says who
        # placed it and when, and timeline_entries() shows it as the first entry.
        ctx.emit("order.placed", placed_payload(order, lines))
        return self.views.render(order, lines, applied, conn=conn)

    # -- payment -----------------------------------------------------------------

    def pay(
        self,
        principal: Principal,
        order_id: int,
        method: str,
        amount: int | None,
        data: dict[str, Any] | None = None,
        *,
        reply: Reply | None = None,
    ) -> tuple[PaymentView, bytes]:
        require(principal, "customer")
        with self.stage("pay", order_id, principal) as ctx:
            order = ctx.order
            if order.customer != principal.subject and not principal.is_admin:
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            if order.status != S.AWAITING_PAYMENT:
                raise Conflict(
                    f"order {order_id} is {order.status}, not awaiting payment",
                    code="order_not_payable",
                    extra={"status": order.status},
                )
            if amount is not None and amount != order.total:
                raise InvalidInput(
                    f"amount {amount} does not match the order total {order.total}",
                    code="amount_mismatch",
                    extra={"total": order.total},
                )
            payment = Payment(method=method, amount=order.total, currency=order.currency, data=data or {})
            self.calls.order_pay(ctx=ctx, payment=payment)
            if payment.status == "unhandled":
                raise InvalidInput(
                    f"no enabled center takes payment method '{method}'", code="payment_method_unsupported"
                )
            if payment.status == "captured":
                self.mark_paid(ctx, payment)
            elif payment.status == "failed":
                ctx.timeline(
                    "payment.failed",
                    f"Payment failed: {payment.failure or 'declined'}",
                    zh="支付失败",
                    ref=None if payment.id is None else f"payment:{payment.id}",
                )
            else:
                ctx.timeline("payment.pending", "Payment started, waiting for the provider", zh="支付处理中")
            view = PaymentView(
                id=payment.id,
                order_id=order_id,
                status=payment.status,
                method=payment.method,
                amount=payment.amount,
                currency=payment.currency,
                reference=payment.reference,
                failure=payment.failure,
                order_status=order.status,
            )
            # A declined payment is an answer too: stored, so a replay is declined the same way.
            if payment.status == "failed":
                failed = {"code": "payment_failed", "detail": payment.failure or "declined", "payment": view}
                body = (reply or Reply())(ctx.conn, failed, 402)
            else:
                body = (reply or Reply())(ctx.conn, view, 201)
        if payment.status == "failed":
            raise PaymentFailed(
                payment.failure or "the payment was declined", extra={"payment": msgspec.to_builtins(view)}
            )
        return view, body

    def mark_paid(self, ctx: OrderContext, payment: Payment) -> None:
        """Book a captured payment on the order: ``paid``, then status ``paid``."""
        ctx.set(paid=ctx.order.paid + payment.amount)
        ctx.transition(S.PAID)

    def confirm_payment(self, ctx: OrderContext, payment: Payment) -> None:
        """Complete a ``pending`` payment (a provider's webhook said captured).

        ``payment.status`` must be ``captured``; other centers' ``order_pay``
        implementations see it as they would a payment captured at once.
        """
        if ctx.order.status != S.AWAITING_PAYMENT:
            raise Conflict(f"order {ctx.order.id} is {ctx.order.status}", code="order_not_payable")
        self.calls.order_pay(ctx=ctx, payment=payment)
        self.mark_paid(ctx, payment)

    # -- later stages ------------------------------------------------------------

    def cancel(self, principal: Principal, order_id: int, reason: str) -> OrderView:
        with self.stage("cancel", order_id, principal) as ctx:
            self.cancel_in(ctx, reason)
        return self.views.get(principal, order_id)

    def cancel_in(self, ctx: OrderContext, reason: str) -> None:
        """Cancel inside an open stage: release holds, refund what was paid."""
        principal, order = ctx.principal, ctx.order
        is_owner = order.customer == principal.subject and "customer" in principal.roles
        if not (is_owner or principal.can_act_for_shop(order.shop, "merchant")):
            raise NotFound(f"order {order.id} not found", code="order_not_found")
        if not states.can(order.status, S.CANCELLED):
            raise Conflict(
                f"an order that is {order.status} can no longer be cancelled",
                code="invalid_transition",
                extra={"status": order.status, "target": "cancelled"},
            )
        self.calls.order_cancel(ctx=ctx, reason=reason)
        if order.paid > order.refunded:
            self.refunds.refund_everything(ctx, reason=f"order cancelled: {reason}")
        ctx.transition(S.CANCELLED, message=f"Order cancelled: {reason}", zh=f"订单已取消:{reason}")

    def dispatch(self, principal: Principal, order_id: int) -> OrderView:
        with self.stage("dispatch", order_id, principal) as ctx:
            if not principal.can_act_for_shop(ctx.order.shop, "merchant", "warehouse"):
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            self.dispatch_in(ctx)
        return self.views.get(principal, order_id)

    def dispatch_in(self, ctx: OrderContext) -> None:
        states.check(ctx.order.status, S.DISPATCHED)
        if ctx.order.hold:
            raise Conflict(
                f"order {ctx.order.id} is on hold: {ctx.order.hold}",
                code="order_on_hold",
                extra={"hold": ctx.order.hold},
            )
        self.calls.order_dispatch(ctx=ctx)
        ctx.transition(S.DISPATCHED)

    def ship_in(self, ctx: OrderContext, *, note: str = "") -> None:
        """The first parcel was picked up (TMS calls this on a carrier event)."""
        ctx.transition(S.SHIPPED, note=note)

    def deliver_in(self, ctx: OrderContext, *, note: str = "") -> None:
        states.check(ctx.order.status, S.DELIVERED)
        self.calls.order_deliver(ctx=ctx)
        ctx.transition(S.DELIVERED, note=note)

    def complete_in(self, ctx: OrderContext, *, note: str = "") -> None:
        """The order completes (confirmed by the customer, staff or the auto-complete clock)."""
        states.check(ctx.order.status, S.COMPLETED)
        self.calls.order_complete(ctx=ctx)
        ctx.transition(S.COMPLETED, note=note)

    def release_in(self, ctx: OrderContext, note: str = "") -> None:
        """Lift the order's hold (see ``OrderContext.put_on_hold``); centers hear ``order_release``."""
        held = ctx.order.hold
        if not held:
            raise Conflict(f"order {ctx.order.id} is not on hold", code="order_not_held")
        ctx.set(hold=None)
        ctx.timeline(
            "order.released",
            f"Hold lifted ({held}){': ' + note if note else ''}",
            zh=f"订单已解除冻结({held}){':' + note if note else ''}",
            public=False,
            data={"hold": held},
        )
        ctx.emit("order.released", {"hold": held})
        self.calls.order_release(ctx=ctx, hold=held)

    def staff_step(self, principal: Principal, order_id: int, step: str, note: str = "") -> OrderView:
        """Manual ship / deliver / complete, for shops without TMS; ``note`` goes on the timeline.

        Staff of the shop ship and complete. Delivery releases the customer's money
        to the shop, so the shop cannot declare it: the customer confirms receipt
        (``deliver`` by the order's customer), or platform staff or an admin record it.
        """
        steps = {"ship": self.ship_in, "deliver": self.deliver_in, "complete": self.complete_in}
        with self.stage(step, order_id, principal) as ctx:
            order = ctx.order
            owner = order.customer == principal.subject and "customer" in principal.roles
            staff = principal.can_act_for_shop(order.shop, "merchant", "warehouse")
            if step == "deliver" and not (owner or (staff and principal.is_platform)):
                if not staff:
                    raise NotFound(f"order {order_id} not found", code="order_not_found")
                raise Forbidden(
                    "a shop cannot declare its own order delivered: the customer confirms receipt, "
                    "or the carrier or platform staff record it",
                    code="delivery_needs_confirmation",
                )
            if step != "deliver" and not staff:
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            steps[step](ctx, note=note)
        return self.views.get(principal, order_id)


ORDER_KEYS = (
    "shop", "customer", "status", "currency", "subtotal", "discount", "shipping", "fees", "total", "paid",
    "refunded", "address", "coupons", "points", "parent_id", "hold", "extra", "placed_at", "updated_at",
    "adjustments",
)  # fmt: skip
LINE_KEYS = (
    "order_id", "line_no", "sku", "name", "quantity", "unit_price", "subtotal", "discount", "shipping", "fees",
    "total", "weight_grams", "attrs",
)  # fmt: skip
TIMELINE_KEYS = ("order_id", "at", "kind", "actor", "message", "messages", "public", "ref", "data")


def placed_payload(order: Order, lines: list[Line]) -> dict[str, Any]:
    """The payload of an ``order.placed`` event."""
    return {
        "shop": order.shop,
        "customer": order.customer,
        "total": order.total,
        "currency": order.currency,
        "parent_id": order.parent_id,
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
    }


def _order_row(order: Order, applied: list[Adjustment]) -> dict[str, Any]:
    return {
        "shop": order.shop,
        "customer": order.customer,
        "status": order.status,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "shipping": order.shipping,
        "fees": order.fees,
        "total": order.total,
        "paid": 0,
        "refunded": 0,
        "address": None if order.address is None else msgspec.to_builtins(order.address),
        "coupons": order.coupons or None,
        "points": order.points,
        "parent_id": order.parent_id,
        "hold": order.hold,
        "extra": order.extra or None,
        "placed_at": order.placed_at,
        "updated_at": order.updated_at,
        "adjustments": [stored_adjustment(a) for a in applied] or None,
    }


def _line_row(order_id: int, line: Line) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "line_no": line.line_no,
        "sku": line.sku,
        "name": line.name or line.sku,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "subtotal": line.subtotal,
        "discount": line.discount,
        "shipping": line.shipping,
        "fees": line.fees,
        "total": line.total,
        "weight_grams": line.weight_grams,
        "attrs": line.attrs or None,
    }


def _dump_changes(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "address" in out and out["address"] is not None:
        out["address"] = msgspec.to_builtins(out["address"])
    return out
