"""The hooks a center implements: the one page an integrator needs.

A center is a class (usually a subclass of :class:`mallcore.kernel.Center`)
whose methods are marked with ``@hookimpl``. The kernel calls every enabled
center's implementation of a hook in the declared center order (a center runs
after the centers it ``requires`` or lists in ``after``); ``tryfirst`` /
``trylast`` move one implementation to the front or back.

Lifecycle hooks receive an :class:`~mallcore.kernel.OrderContext`. Each stage
runs in **one database transaction**: the order's change of state, every
center's writes through ``ctx.conn`` / ``ctx.session`` and the outbox events
from ``ctx.emit`` commit together or not at all. **A raise rolls the whole
stage back**; raise :class:`~mallcore.kernel.Rejected` (or another
:class:`~mallcore.kernel.MallcoreError`) to refuse with a stable code the
client sees. Never commit inside a hook.

Extension hooks are called while the kernel is built or served; their
docstrings say when.

Example::

    from mallcore.kernel import Center, Phase, hookimpl

    class GiftWrap(Center):
        name = "giftwrap"
        after = ("catalog",)

        @hookimpl
        def order_price(self, ctx):
            ctx.adjust(self.name, "gift wrapping", 500, phase=Phase.FEE)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

PROJECT = "mallcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import click
    import msgspec
    import sqlalchemy as sa
    from litestar import Request

    from .aftersale import AfterSaleCase, Parcel, ParcelEvent
    from .auth import Principal
    from .context import Line, Order, OrderContext, Payment
    from .jobs import Job
    from .kernel import Kernel
    from .refunds import Refund
    from .schemas import OrderView


# --------------------------------------------------------------------------
# Order lifecycle (DESIGN §3). One call per stage, inside its transaction.
# --------------------------------------------------------------------------


@hookspec
def order_pre_validate(ctx: OrderContext) -> None:
    """Check a new order before it is priced.

    Called once when an order is placed (``POST /orders``) and for a price
    preview, first of the placement stages, inside the placement transaction.
    ``ctx.order`` has no ``id`` yet; ``ctx.lines`` carry ``sku`` and
    ``quantity``. Load what later hooks need and keep it on the context
    (``ctx.stash``) or on the lines (``line.name``, ``line.weight_grams``).

    Raise :class:`Rejected` with a specific ``code`` to refuse the order
    (``sku_unknown``, ``customer_blocked``...): nothing is written.

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
    for placement and preview. The catalog sets ``line.unit_price``; other
    centers call ``ctx.adjust(source, reason, amount, phase=..., line=...)``
    with negative amounts for discounts and positive ones for freight and
    fees. The kernel then applies adjustments sorted by phase, then center
    name, clamps discounts so nothing goes below zero, and allocates order-
    level adjustments to lines (largest remainder). A raise refuses the order.
    """


@hookspec
def order_reserve(ctx: OrderContext) -> None:
    """Hold what the order needs: stock, coupons, points.

    Called once per placement after pricing, in the placement transaction,
    once the order and its lines have ids (``ctx.order.id``, ``line.id``).
    Not called for previews. Raise :class:`OutOfStock` (409) or
    :class:`Rejected` to refuse the order; everything held by any center in
    this stage is rolled back with it.
    """


@hookspec
def order_pay(ctx: OrderContext, payment: Payment) -> None:
    """Take or record a payment for the order.

    Called once per ``POST /orders/{id}/payments``, inside the pay
    transaction, with the order row locked. A payment center that handles
    ``payment.method`` calls its provider and sets ``payment.status`` to
    ``captured``, ``pending`` (completed later by a webhook) or ``failed``
    (with ``payment.failure``), and ``payment.reference``. Other centers
    react when ``payment.status == "captured"`` in a ``trylast``
    implementation (e.g. reserve stock at payment). On ``captured`` the order
    becomes ``paid``; on ``failed`` the attempt is committed, the order is
    unchanged and the client gets 402. A raise rolls the stage back.
    """


@hookspec
def order_dispatch(ctx: OrderContext) -> None:
    """Hand a paid order to the warehouse(s) and carriers.

    Called once per order when it is dispatched (automatically after payment
    when a center asks for it through ``ctx.after_commit``, or by staff with
    ``POST /orders/{id}/dispatch``), in the dispatch transaction. WMS picks
    warehouses and writes outbound movements; TMS creates shipments. The
    order becomes ``dispatched``. A raise leaves the order ``paid``.
    """


@hookspec
def order_deliver(ctx: OrderContext) -> None:
    """React to the order being delivered (signed for).

    Called once when the order becomes ``delivered`` (carrier sign-off or
    staff), in that transaction: award points, post revenue, start the
    auto-complete clock. A raise leaves the order as it was.
    """


@hookspec
def order_complete(ctx: OrderContext) -> None:
    """React to the order being completed (确认收货 / the auto-complete clock).

    Called once when a delivered order becomes ``completed`` (the customer
    or staff confirm it, or TMS's auto-complete job), inside that
    transaction, before the status changes. Membership awards points and
    growth here (not at payment: the goods are the customer's now). A raise
    leaves the order delivered.

    :param ctx: the order's stage context.

    Example::

        @hookimpl
        def order_complete(self, ctx):
            self.points.earn(ctx.conn, ctx.order)
    """


@hookspec
def order_release(ctx: OrderContext, hold: str) -> None:
    """React to an order's hold being lifted.

    Called once when staff (or a center, e.g. risk after a review) lift the
    hold an order was put on with ``ctx.put_on_hold(reason)``, inside that
    transaction, after ``ctx.order.hold`` is cleared. WMS dispatches a paid
    order it held back. A raise keeps the order held.

    :param ctx: the order's stage context.
    :param hold: the reason the order was held (``risk_review``).
    """


@hookspec
def order_after_sale(ctx: OrderContext, case: AfterSaleCase) -> None:
    """React to a step of an after-sale case on this order.

    Called by the after-sale center at every step of a case (``case.status``
    says which: ``requested``, ``approved``, ``return_shipped``,
    ``pickup_requested``, ``received``, ``inspected``, ``refunded``...; see
    :class:`~mallcore.kernel.aftersale.AfterSaleCase`), inside that step's
    transaction, after the case row is written. WMS restocks inspected goods,
    TMS tracks the return parcel and books pickups (filling ``case.pickup``),
    membership claws back points, promotion returns coupons. A raise rolls
    the step back (risk refuses a request this way, 403 ``risk_blocked``).

    At ``requested`` a reacting center may steer the case: set
    ``case.hold`` (a reason) to keep it from every automatic decision (the
    merchant-silence timer, refund-only approval) until the center lifts it
    through :func:`after_sale_release`; or set ``case.fast_track`` (a reason)
    to have a refund-only case approved at once (极速退款). A hold wins over
    a fast track.
    """


@hookspec
def after_sale_release(ctx: OrderContext, case_id: int, actor: str, note: str) -> None:
    """Lift the hold a center put on an after-sale case (``case.hold``).

    Called by the center that held the case (risk, after a review), inside
    a stage on the case's order; the after-sale center clears the hold,
    notes it on the case's timeline and lets the case go on as if it had
    never been held. A raise keeps the hold.

    :param ctx: the stage of the case's order.
    :param case_id: the case.
    :param actor: who released it (staff subject).
    :param note: why, for the staff timeline.
    """


@hookspec
def after_sale_parcel(ctx: OrderContext, event: ParcelEvent) -> None:
    """Hear about a return parcel or pickup of an after-sale case.

    Called by TMS inside the transaction that records a carrier event (or a
    stale-waybill check) for a parcel it tracks for a case; the after-sale
    center moves the case (in transit, received at the warehouse, pickup
    failed...). A raise rolls the carrier event back (the carrier retries).
    """


@hookspec
def order_cancel(ctx: OrderContext, reason: str) -> None:
    """Release everything held for the order; it is being cancelled.

    Called once when an order is cancelled before dispatch (by the customer,
    staff, or the unpaid-order expiry job), inside the cancel transaction,
    before the order becomes ``cancelled``. Every center that holds
    something (stock, coupons, points) releases it. If the order was paid,
    the kernel refunds it in the same transaction through
    :func:`order_refund`. A raise leaves the order uncancelled.
    """


@hookspec
def order_refund(ctx: OrderContext, refund: Refund) -> None:
    """Follow a refund through its steps; ``refund.status`` says which.

    Called inside the transaction that changes the refund:

    - ``requested``: a center that must review it (finance) calls
      ``refund.require_review(center, why)``; with no review it goes on to
      ``approved`` in the same transaction.
    - ``approved``: the payment center pays it out through its provider and
      sets ``refund.provider_ref``; a raise rolls the approval back.
    - ``refunded``: money is back with the customer; post the journal, update
      cases, claw back points.
    - ``rejected``: review refused it (``refund.note`` says why).

    The kernel guarantees a refund never exceeds what was paid, per line and
    per order.
    """


@hookspec(firstresult=True)
def coupon_grant(
    kernel: Kernel, conn: sa.Connection, customer: str, template: int, reason: str, source: str
) -> str | None:
    """Give ``customer`` a coupon of ``template``; return its code, or ``None``.

    Called by a center that rewards customers with coupons (membership: a
    birthday or upgrade coupon) inside its own transaction ``conn``, so the
    coupon exists only if the reward does. The promotion center issues the
    coupon (respecting the template's total, but not its per-customer
    limit: a grant is the platform's decision) and returns its code; with no
    promotion center enabled nobody answers and the result is ``None``.
    First non-``None`` answer wins. A raise (template unknown or used up:
    :class:`Conflict`) rolls the caller's transaction back unless it
    catches it.

    :param conn: the caller's open transaction.
    :param customer: who gets the coupon.
    :param template: the promotion center's coupon template id.
    :param reason: shown in the customer's wallet ("白银会员升级礼").
    :param source: the granting center's name.
    """


@hookspec
def customer_coupons(kernel: Kernel, conn: sa.Connection, customer: str) -> Sequence[dict[str, Any]]:
    """Return ``customer``'s coupons, for the card wallet (卡券包) of the membership center.

    Called when a customer (or staff) opens the wallet, inside a read
    transaction ``conn``; each center that keeps coupons answers with a list
    (empty if the customer has none), and the wallet shows them all, each
    tagged with the answering center. Keep it to one query. A raise answers
    500.

    Each coupon is a dict with at least ``code``, ``name`` (shown to the
    customer), ``status`` (``available``, ``used`` or ``expired``) and
    ``valid_until`` (ISO datetime or ``None``); more keys are passed on
    (``shop``, ``amount`` or ``percent_off``, ``min_spend``, ``valid_from``).

    :param conn: the caller's open read transaction.
    :param customer: whose coupons.

    Example::

        @hookimpl
        def customer_coupons(self, kernel, conn, customer):
            return [{"code": c.code, "name": c.name, "status": c.status, "valid_until": c.until}
                    for c in self.coupons.of(conn, customer)]
    """


@hookspec
def points_moved(
    kernel: Kernel,
    conn: sa.Connection,
    customer: str,
    kind: str,
    points: int,
    amount: int,
    currency: str,
    order_id: int | None,
    shop: str | None,
    reason: str,
) -> None:
    """Book a movement of a member's points that changes what the platform owes them.

    Called by the membership center inside the transaction that writes the
    movement to its ledger (``conn``: an order stage's, a job's or a staff
    request's), once per movement, so a bookkeeping center's journal moves
    with the points or not at all. The finance center posts it against its
    points liability. A raise rolls the movement (and its stage) back.

    :param kind: ``earn`` (an order completed), ``spend`` (an order paid with
        points), ``return`` (points spent on refunded goods given back),
        ``clawback`` (points earned on refunded goods taken back),
        ``expire`` or ``adjust`` (staff). Holds and releases of unpaid
        orders move nothing owed and are not passed.
    :param points: the change of the member's points (earn +, spend -).
    :param amount: what those points are worth, ``points`` times the
        program's point value, in minor units of ``currency``; same sign.
    :param order_id: the order (earn, spend, return, clawback), else ``None``.
    :param shop: the order's shop, else ``None``.
    :param reason: the ledger row's reason, for the entry's memo.

    Example::

        @hookimpl
        def points_moved(self, conn, kind, amount, currency, order_id):
            self.journal.post_points(conn, kind, amount, currency, order_id)
    """


@hookspec(firstresult=True)
def freight_quote(
    kernel: Kernel, conn: sa.Connection, order: Order, lines: Sequence[Line], parcels: Sequence[Parcel]
) -> int | None:
    """Quote the freight of shipping ``lines`` of ``order`` as ``parcels``.

    Called by WMS while it compares warehouse plans in ``order_dispatch``
    (inside that transaction, read-only). TMS returns the total in minor
    units (and may set each ``parcel.freight``), or ``None`` if it cannot
    quote. First non-``None`` answer wins. A raise fails the dispatch.
    """


# --------------------------------------------------------------------------
# What a center brings: called while a kernel is built.
# --------------------------------------------------------------------------


@hookspec
def center_settings() -> type[msgspec.Struct] | None:
    """Return the msgspec Struct that validates ``[centers.<name>]``.

    Called once per center while the kernel is built, before anything else
    of the center runs. The validated instance becomes ``center.settings``.
    Unknown keys and wrong types stop start-up with the key named. The
    :class:`Center` base class returns its ``Settings`` class attribute. A
    raise stops start-up.
    """


@hookspec
def center_tables() -> sa.MetaData | None:
    """Return the SQLAlchemy ``MetaData`` holding the center's tables.

    Called once per center while the kernel is built. Table names must start
    with the center's name; ``mallcore db upgrade`` applies the migrations of
    the center's Alembic branch, and test kernels create the tables directly.
    Two centers declaring the same table stop start-up, as does a raise. The
    :class:`Center` base class returns its ``tables`` class attribute.
    """


@hookspec
def center_routes(kernel: Kernel) -> Sequence[Any]:
    """Return Litestar route handlers, controllers or routers of the center.

    Called once per kernel when its HTTP app (or the mounting plugin) is
    built. Routes conventionally live under ``/<center name>/``. Two centers
    claiming the same method and path stop start-up, naming both; a raise
    stops start-up too.
    """


@hookspec
def center_startup(kernel: Kernel) -> None:
    """Prepare the center once the database is ready (caches, clients).

    Called once when the app starts (or ``kernel.startup()`` is called),
    outside any transaction, in center order. A raise stops start-up.
    """


@hookspec
def center_shutdown(kernel: Kernel) -> None:
    """Release what :func:`center_startup` acquired.

    Called once when the app stops, in reverse center order; a raise is
    logged and does not stop the other centers from shutting down.
    """


@hookspec
def center_subscriptions(kernel: Kernel) -> Sequence[tuple[str, Callable[..., None]]]:
    """Return ``(topic pattern, handler)`` pairs for outbox events.

    Called once while the kernel is built. After a stage commits, each of
    its events (``ctx.emit(topic, payload)``) is passed to every handler
    whose pattern matches the topic (``fnmatch``: ``"order.*"``), as
    ``handler(kernel, event)``, in the committing thread, after the
    transaction. A raise is logged and does not affect the stage or other
    handlers: delivery in process is best effort; the outbox table is the
    durable record that relays (``mallcore outbox relay``) deliver at least
    once.
    """


@hookspec
def center_jobs(kernel: Kernel) -> Sequence[Job]:
    """Return periodic jobs (:class:`~mallcore.kernel.Job`).

    Called once while the kernel is built. Jobs run inside ``mallcore
    serve`` (on one worker at a time, through a lease in the database) and
    from ``mallcore jobs run``. Each run must be safe when two runners race:
    use conditional updates. A raise is logged; the job runs again next tick.
    """


@hookspec
def center_commands() -> Sequence[click.Command]:
    """Return click commands added under ``mallcore <center name> ...``.

    Called once when the CLI starts, for enabled centers only. Commands get
    the kernel with ``mallcore.kernel.cli.pass_kernel``. A raise stops the
    CLI with the error.
    """


@hookspec
def center_demo(kernel: Kernel, demo: Any) -> None:
    """Add the center's sample data for ``mallcore demo``.

    Called once per ``mallcore demo`` run, in center order (so the catalog
    has created ``demo.skus`` before WMS stocks them), outside any
    transaction: open your own with ``kernel.db.transaction()``. ``demo``
    carries ``shop`` (the demo shop's code), ``skus`` (codes created so far)
    and ``notes`` (lines printed to the user). Must be safe to run twice. A
    raise stops ``mallcore demo`` with the error; what earlier centers
    seeded stays.
    """


# --------------------------------------------------------------------------
# Identity and views.
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def resolve_principal(kernel: Kernel, token: str, request: Request[Any, Any, Any] | None) -> Principal | None:
    """Turn a bearer token into a :class:`Principal`, or ``None`` if unknown.

    Called for each HTTP request that carries ``Authorization: Bearer``,
    outside any transaction. The first non-``None`` result wins; the
    kernel's own implementation (static tokens from config, then JWT, then
    tokens issued by ``mallcore token create``) runs last, so a host
    platform can bring its own identity. A raise answers 401.
    """


@hookspec
def order_view(kernel: Kernel, conn: sa.Connection, order: Any, view: OrderView) -> None:
    """Add a center's part to an order as clients see it.

    Called when an order is rendered (``GET /orders/{id}``, placement and
    payment responses), in a read transaction. TMS fills ``view.shipments``;
    others may add to ``view.extra``. Keep it to one query. A raise answers
    500.
    """
