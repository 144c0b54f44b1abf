"""Hooks along an order's life: placement, payment, fulfilment, holds and cancellation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .markers import hookspec

__all__ = [
    "freight_quote",
    "order_cancel",
    "order_complete",
    "order_deliver",
    "order_dispatch",
    "order_pay",
    "order_payment_returned",
    "order_pre_validate",
    "order_price",
    "order_release",
    "order_reserve",
    "order_reserve_batch",
]

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import sqlalchemy as sa

    from ..aftersale import Parcel
    from ..context import OrderContext, PlacementIntent
    from ..kernel import Kernel
    from ..types import Line, Order, Payment


# -- Placement: one transaction for the three hooks, the inserts and the pricing ------------


@hookspec
def order_pre_validate(ctx: OrderContext) -> None:
    """Check a new order before it is priced, and load what later hooks need.

    Called once per placement (``POST /orders``) and per preview, first, in
    the placement's transaction (a read transaction for a preview). Keep what
    later hooks need on ``ctx.stash`` or the lines (``line.weight_grams``).

    :param ctx: the new order: ``ctx.order`` has no ``id`` yet;
        ``ctx.lines`` carry ``sku`` and ``quantity``.
    :returns: nothing; every implementation is called.
    :raises Rejected: with a specific ``code`` (``sku_unknown``,
        ``customer_blocked``...) refuses the order (422): nothing is written.

    Example::

        @hookimpl
        def order_pre_validate(self, ctx):
            if ctx.order.customer in self.settings.blocked:
                raise Rejected("customer is blocked", code="customer_blocked")
    """


@hookspec
def order_price(ctx: OrderContext) -> None:
    """Price the order: set unit prices, add adjustments.

    Called once after :func:`order_pre_validate`, in the same transaction,
    for placement and preview. The catalog sets ``line.unit_price``; others
    call ``ctx.adjust(source, reason, amount, phase=..., line=...)`` (negative
    for discounts) and ``ctx.hint(...)`` (what a preview could still get).
    The kernel then applies adjustments by phase, then center, clamps
    discounts at zero and allocates order-level ones to lines by the largest
    remainder (docs/architecture.md, "Money").

    :param ctx: the new order and its lines (no ids yet).
    :returns: nothing; every implementation is called.
    :raises: any exception refuses the order; nothing is written.

    Example::

        @hookimpl
        def order_price(self, ctx):
            if ctx.order.points:
                ctx.adjust(self.name, "points", -ctx.order.points, phase=Phase.POINTS)
    """


@hookspec
def order_reserve(ctx: OrderContext) -> None:
    """Hold what the order needs: stock, coupons, points.

    Called once per placement after pricing, in the placement transaction,
    once the order and its lines have ids (``ctx.order.id``, ``line.id``).
    Not called for previews.

    :param ctx: the priced order, with ids.
    :returns: nothing; every implementation is called.
    :raises OutOfStock: (409) or :class:`Rejected` refuses the order;
        everything held by any center in this stage is rolled back with it.

    Example::

        @hookimpl
        def order_reserve(self, ctx):
            ctx.conn.execute(holds.insert(), [{"order_id": ctx.order.id, "sku": l.sku} for l in ctx.lines])
    """


@hookspec
def order_reserve_batch(conn: sa.Connection, intents: Sequence[PlacementIntent]) -> None:
    """Hold what a batch of combined placements needs, with multi-row statements (optional).

    When ``[orders.combine]`` is on, placements that arrive together run in
    one transaction (docs/writing-a-center.md, "Combined placements").
    Called once per batch of two or more orders, in the batch's
    transaction, after every order's :func:`order_pre_validate` and
    :func:`order_price` and once the orders and lines have ids; a center
    that implements it is **not** called with :func:`order_reserve` for the
    orders of that batch (a lone order still gets :func:`order_reserve`).
    Centers without it get :func:`order_reserve` once per order, after a
    *trial* call of this hook that is rolled back (so an order it refuses
    never reaches :func:`order_reserve`), and before the call that holds.
    ``intents`` are in arrival order (orders tried again after another
    failed in :func:`order_reserve` come after those already reserved); give
    scarce units to the earliest. The hook may be called again for the same
    orders, less those refused, after what it wrote was rolled back: write
    nothing outside ``conn``.

    :param conn: the batch's transaction.
    :param intents: the batch's orders (:class:`~mallcore.kernel.PlacementIntent`),
        earliest first; ``intent.refuse(OutOfStock(...))`` refuses one order
        alone, and the kernel rolls back everything written for it.
    :returns: nothing; every implementation is called.
    :raises: any exception rolls back what was written for the batch; the
        kernel then writes its orders one at a time (this hook sees one
        intent per call), and an order whose own call raises is answered
        with that error. Refuse single orders with ``refuse`` instead.

    Example::

        @hookimpl
        def order_reserve_batch(self, conn, intents):
            wanted = sum(i.lines[0].quantity for i in intents)
            if not self.take(conn, wanted):
                for intent in intents[self.left(conn):]:
                    intent.refuse(OutOfStock("sold out"))
    """


# -- Payment ----------------------------------------------------------------------------


@hookspec
def order_pay(ctx: OrderContext, payment: Payment) -> None:
    """Take or record a payment for the order.

    Called once per ``POST /orders/{id}/payments`` (and when a provider's
    webhook completes a pending payment), in the pay transaction, the order
    locked. The center that handles ``payment.method`` sets ``payment.status``
    (``captured``, ``pending`` until a webhook, or ``failed`` with
    ``payment.failure``) and ``payment.reference``; others react to
    ``captured`` in a ``trylast`` implementation (reserve stock at payment).
    ``captured`` makes the order ``paid``; ``failed`` is committed, the order
    unchanged, and the client gets 402.

    :param ctx: the order, locked.
    :param payment: the attempt: ``method``, ``amount`` (the order's total),
        ``currency`` and the client's ``data``; ``status`` starts as
        ``unhandled``, and stays so if no center takes the method (422).
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the stage back: nothing is recorded.

    Example::

        @hookimpl
        def order_pay(self, ctx, payment):
            if payment.method == "wallet" and payment.status == "unhandled":
                payment.status, payment.reference = "captured", self.wallet.debit(ctx, payment)
    """


@hookspec
def order_payment_returned(ctx: OrderContext, payment: Payment, refund_reference: str) -> None:
    """A payment captured too late to be used was refunded at once: book it.

    Called when a provider confirms a payment the order cannot take any more
    (it was paid another way, cancelled, or a center refused the payment at
    confirmation): the center that took the money refunded it in full, in the
    same stage transaction, the order locked and otherwise unchanged (its
    ``paid`` does not count this payment). Book the money in and out (finance
    posts both provider references, so reconciliation matches the provider's
    charge and refund lines).

    :param ctx: the order, locked; its status is what it was.
    :param payment: the payment, ``status`` ``refunded``, with its ``provider``,
        ``reference``, ``amount`` and ``currency``.
    :param refund_reference: the provider's reference of the refund.
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the stage back: the webhook answers 503
        ``retry_later`` and the provider resends the event.

    Example::

        @hookimpl
        def order_payment_returned(self, ctx, payment, refund_reference):
            self.ledger.book_in_and_out(ctx.conn, payment.reference, refund_reference, payment.amount)
    """


# -- Fulfilment: dispatch, delivery, completion ---------------------------------------------


@hookspec
def order_dispatch(ctx: OrderContext) -> None:
    """Hand a paid order to the warehouse(s) and carriers.

    Called once per order when it is dispatched (automatically after payment
    when a center asks for it through ``ctx.after_commit``, or by staff with
    ``POST /orders/{id}/dispatch``), in the dispatch transaction, before the
    order becomes ``dispatched``. WMS picks warehouses and writes outbound
    movements, leaving its plan in ``ctx.parcels``; TMS creates shipments.

    :param ctx: the paid order, locked.
    :returns: nothing; every implementation is called.
    :raises: any exception leaves the order ``paid``.

    Example::

        @hookimpl(trylast=True)
        def order_dispatch(self, ctx):
            for parcel in ctx.parcels:
                self.shipments.create(ctx, parcel)
    """


@hookspec(firstresult=True)
def freight_quote(
    kernel: Kernel, conn: sa.Connection, order: Order, lines: Sequence[Line], parcels: Sequence[Parcel]
) -> int | None:
    """Quote the freight of shipping ``lines`` of ``order`` as ``parcels``.

    Called by WMS comparing warehouse plans in ``order_dispatch``, in that transaction (read-only).

    :param kernel: the kernel.
    :param conn: the dispatch transaction.
    :param order: the order being dispatched.
    :param lines: the lines the plan ships.
    :param parcels: the plan: one :class:`~mallcore.kernel.aftersale.Parcel`
        per package; an implementation may set each ``parcel.freight``.
    :returns: the total in minor units, or ``None`` if it cannot quote.
        The first non-``None`` answer wins.
    :raises: any exception fails the dispatch.

    Example::

        @hookimpl
        def freight_quote(self, conn, parcels):
            return sum(self.rate(conn, p.region, p.weight_grams) for p in parcels)
    """


@hookspec
def order_deliver(ctx: OrderContext) -> None:
    """React to the order being delivered (signed for).

    Called once when the order becomes ``delivered`` (carrier sign-off or
    staff), in that transaction, before the status changes: post revenue,
    start the auto-complete clock.

    :param ctx: the order, locked.
    :returns: nothing; every implementation is called.
    :raises: any exception leaves the order as it was.

    Example::

        @hookimpl
        def order_deliver(self, ctx):
            ctx.emit("points.pending", {"points": ctx.order.total // 100})
    """


@hookspec
def order_complete(ctx: OrderContext) -> None:
    """React to the order being completed (确认收货 / the auto-complete clock).

    Called once when a delivered order becomes ``completed`` (the customer
    or staff confirm it, or TMS's auto-complete job), inside that
    transaction, before the status changes. Membership awards points and
    growth here (not at payment: the goods are the customer's now).

    :param ctx: the order, locked.
    :returns: nothing; every implementation is called.
    :raises: any exception leaves the order delivered.

    Example::

        @hookimpl
        def order_complete(self, ctx):
            self.points.earn(ctx.conn, ctx.order)
    """


# -- Holds and cancellation -------------------------------------------------------------


@hookspec
def order_release(ctx: OrderContext, hold: str) -> None:
    """React to an order's hold being lifted.

    Called once when staff (or a center, e.g. risk after a review) lift the
    hold an order was put on with ``ctx.put_on_hold(reason)``, inside that
    transaction, after ``ctx.order.hold`` is cleared. WMS dispatches a paid
    order it held back.

    :param ctx: the order, locked.
    :param hold: the reason the order was held (``risk_review``).
    :returns: nothing; every implementation is called.
    :raises: any exception keeps the order held.

    Example::

        @hookimpl
        def order_release(self, ctx, hold):
            if ctx.order.status == "paid":
                ctx.after_commit(lambda: self.dispatch(ctx.order.id))
    """


@hookspec
def order_cancel(ctx: OrderContext, reason: str) -> None:
    """Release everything held for the order; it is being cancelled.

    Called once when an order is cancelled before dispatch (customer, staff,
    or the unpaid-order expiry job), in the cancel transaction, before it
    becomes ``cancelled``. Every center that holds something releases it; a
    paid order is refunded in the same transaction (:func:`order_refund`).

    :param ctx: the order, locked.
    :param reason: why, as the canceller gave it (also on the timeline).
    :returns: nothing; every implementation is called.
    :raises: any exception leaves the order uncancelled.

    Example::

        @hookimpl
        def order_cancel(self, ctx, reason):
            ctx.conn.execute(holds.delete().where(holds.c.order_id == ctx.order.id))
    """
