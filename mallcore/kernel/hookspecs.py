"""The hooks a center implements: the one page an integrator needs.

A center is a class (usually a :class:`mallcore.kernel.Center`) whose methods
are marked ``@hookimpl``. The kernel calls every enabled center's
implementation in center order (a center runs after those it ``requires`` or
lists in ``after``); ``tryfirst`` / ``trylast`` move one to the front or
back. An implementation may take fewer arguments than the hook offers.

Lifecycle hooks receive an :class:`~mallcore.kernel.OrderContext`. Each stage
runs in **one database transaction**: the order's change, every center's
writes through ``ctx.conn`` / ``ctx.session`` and the events from
``ctx.emit`` commit together or not at all. **A raise rolls the whole stage
back**; raise :class:`~mallcore.kernel.Rejected` (or another
:class:`~mallcore.kernel.MallcoreError`) to refuse with a stable code. Never
commit inside a hook (docs/architecture.md, "The stage transaction").

Every hook is documented alike: what it is for; when it is called, in which
transaction; each argument; what it returns (and whether the first answer
wins); what a raise does; an example. Sections follow an order's life, then
what a center brings. ``tests/kernel/test_hookspecs.py`` holds each hook to
this, and to a test and a line in docs/writing-a-center.md.
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
    from .context import OrderContext
    from .jobs import Job
    from .kernel import Kernel
    from .schemas import OrderView
    from .types import Line, Order, Payment, Principal, Refund


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


# -- Refunds and after-sale -------------------------------------------------------------


@hookspec
def order_refund(ctx: OrderContext, refund: Refund) -> None:
    """Follow a refund through its steps; ``refund.status`` says which.

    Called inside the transaction that changes the refund, at each step:

    - ``requested``: a center that must review it (finance) calls
      ``refund.require_review(center, why)``; with no review it goes on to
      ``approved`` in the same transaction.
    - ``approved``: the payment center pays it out through its provider and
      sets ``refund.provider_ref``.
    - ``refunded``: money is back with the customer; post the journal, update
      cases, claw back points.
    - ``rejected``: review refused it (``refund.note`` says why).

    The kernel guarantees a refund never exceeds what was paid, per line and
    per order.

    :param ctx: the refund's order, locked.
    :param refund: the refund at its new status (lines, amount, ``source``,
        ``data`` from the requesting center).
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the step back (at ``approved``: the
        approval, and the payout with it).

    Example::

        @hookimpl
        def order_refund(self, ctx, refund):
            if refund.status == "requested" and refund.amount > self.settings.review_above:
                refund.require_review(self.name, f"above {self.settings.review_above}")
    """


@hookspec
def order_after_sale(ctx: OrderContext, case: AfterSaleCase) -> None:
    """React to a step of an after-sale case on this order.

    Called by the after-sale center at every step of a case, in that step's
    transaction, after the case row is written: WMS restocks, TMS tracks the
    return parcel and books pickups (``case.pickup``), membership claws back
    points, promotion returns coupons.

    At ``requested`` a reacting center may steer the case: set
    ``case.hold`` (a reason) to keep it from every automatic decision (the
    merchant-silence timer, refund-only approval) until the center lifts it
    through :func:`after_sale_release`; or set ``case.fast_track`` (a reason)
    to have a refund-only case approved at once (极速退款). A hold wins over
    a fast track. The center that held a case ends the hold with
    :func:`after_sale_release`.

    :param ctx: the case's order, locked.
    :param case: the case; ``case.status`` is the step just taken
        (``requested``, ``approved``, ``return_shipped``,
        ``pickup_requested``, ``received``, ``inspected``, ``refunded``...;
        see :class:`~mallcore.kernel.aftersale.AfterSaleCase`).
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the step back (risk refuses a request this
        way, 403 ``risk_blocked``).

    Example::

        @hookimpl
        def order_after_sale(self, ctx, case):
            if case.status == "inspected":
                self.restock(ctx, [i for i in case.inspections if i.disposition == "restock"])
    """


@hookspec
def after_sale_release(ctx: OrderContext, case_id: int, actor: str, note: str, outcome: str) -> None:
    """End the hold a center put on an after-sale case (``case.hold``).

    Called by the center that held the case (risk, after a review), inside
    a stage on the case's order (in that stage's transaction). The
    after-sale center clears the hold and notes it on the case's staff
    timeline; what happens next is ``outcome``:

    - ``"release"``: the case goes on as if it had never been held. An
      automatic decision it was kept from is taken now (a refund before
      shipment, a fast track) or by the next run of the timers (the
      merchant-silence deadline, if it has passed meanwhile).
    - ``"reject"``: the holding center refuses the request; the case is
      rejected as a merchant's rejection would be, and the customer reads
      that it did not pass review, never why. A case that already moved on
      (the merchant decided it by hand) is left as it is, with a note for
      staff.

    :param ctx: the stage of the case's order.
    :param case_id: the case.
    :param actor: who decided (staff subject).
    :param note: why, for the staff timeline.
    :param outcome: ``"release"`` or ``"reject"``.
    :returns: nothing; every implementation is called.
    :raises: any exception keeps the hold (the caller's stage rolls back).

    Example::

        @hookimpl
        def after_sale_release(self, ctx, case_id, actor, note, outcome):
            self.cases.end_hold(ctx, case_id, actor, note, reject=outcome == "reject")
    """


@hookspec
def after_sale_parcel(ctx: OrderContext, event: ParcelEvent) -> None:
    """Hear about a return parcel or pickup of an after-sale case.

    Called by TMS inside the transaction that records a carrier event (or a
    stale-waybill check) for a parcel it tracks for a case; the after-sale
    center moves the case (in transit, received at the warehouse, pickup
    failed...).

    :param ctx: the case's order, locked.
    :param event: what happened to the parcel (``status``, carrier,
        waybill, the warehouse it reached).
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the carrier event back (the carrier
        retries).

    Example::

        @hookimpl
        def after_sale_parcel(self, ctx, event):
            if event.status == "delivered":
                self.cases.arrived(ctx, event.case_id, event.warehouse)
    """


@hookspec(firstresult=True)
def coupon_grant(
    kernel: Kernel, conn: sa.Connection, customer: str, template: int, reason: str, source: str
) -> str | None:
    """Give ``customer`` a coupon of ``template``.

    Called by a center that rewards customers with coupons (membership: a
    birthday or upgrade coupon) inside its own transaction ``conn``, so the
    coupon exists only if the reward does. The promotion center issues the
    coupon (respecting the template's total, but not its per-customer
    limit: a grant is the platform's decision).

    :param kernel: the kernel.
    :param conn: the caller's open transaction.
    :param customer: who gets the coupon.
    :param template: the promotion center's coupon template id.
    :param reason: shown in the customer's wallet ("白银会员升级礼").
    :param source: the granting center's name.
    :returns: the coupon's code, or ``None``. The first non-``None`` answer
        wins; with no promotion center enabled nobody answers.
    :raises Conflict: (template unknown or used up) rolls the caller's
        transaction back unless it catches it.

    Example::

        @hookimpl
        def coupon_grant(self, conn, customer, template, reason, source):
            return self.coupons.issue(conn, template, customer, reason=reason, source=source)
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

    :param kernel: the kernel.
    :param conn: the caller's open read transaction.
    :param customer: whose coupons.
    :returns: a list of coupon dicts; every implementation is called.
    :raises: any exception answers 500 (keep it to a read).

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

    :param kernel: the kernel.
    :param conn: the mover's open transaction.
    :param customer: whose points moved.
    :param kind: ``earn`` (an order completed), ``spend`` (an order paid with
        points), ``return`` (points spent on refunded goods given back),
        ``clawback`` (points earned on refunded goods taken back),
        ``expire`` or ``adjust`` (staff). Holds and releases of unpaid
        orders move nothing owed and are not passed.
    :param points: the change of the member's points (earn +, spend -).
    :param amount: what those points are worth, ``points`` times the
        program's point value, in minor units of ``currency``; same sign.
    :param currency: the program's currency.
    :param order_id: the order (earn, spend, return, clawback), else ``None``.
    :param shop: the order's shop, else ``None``.
    :param reason: the ledger row's reason, for the entry's memo.
    :returns: nothing; every implementation is called.
    :raises: any exception rolls the movement (and its stage) back.

    Example::

        @hookimpl
        def points_moved(self, conn, kind, amount, currency, order_id):  # a subset of the arguments
            self.journal.post_points(conn, kind, amount, currency, order_id)
    """


# -- What a center brings: called once per kernel while it is built ----------------------


@hookspec
def center_settings() -> type[msgspec.Struct] | None:
    """Return the msgspec Struct that validates ``[centers.<name>]``.

    Called once per center while the kernel is built, before anything else
    of the center runs, outside any transaction. The validated instance
    becomes ``center.settings``. The :class:`Center` base class returns its
    ``Settings`` class attribute.

    :returns: the Struct class, or ``None`` for a center without settings
        (then any key under ``[centers.<name>]`` is refused).
    :raises: any exception stops start-up; so do unknown keys and wrong
        types in the section, with the key named.

    Example::

        @hookimpl
        def center_settings(self):
            return FeeSettings
    """


@hookspec
def center_tables() -> sa.MetaData | None:
    """Return the SQLAlchemy ``MetaData`` holding the center's tables.

    Called once per center while the kernel is built, outside any
    transaction. Table names must start with the center's name; ``mallcore
    db upgrade`` applies the migrations of the center's Alembic branch, and
    test kernels create the tables directly. The :class:`Center` base class
    returns its ``tables`` class attribute.

    :returns: the ``MetaData``, or ``None``.
    :raises: any exception stops start-up; so do two centers declaring one
        table, and a table without the center's prefix.

    Example::

        @hookimpl
        def center_tables(self):
            return metadata
    """


@hookspec
def center_routes(kernel: Kernel) -> Sequence[Any]:
    """Return the center's Litestar route handlers, controllers or routers.

    Called once per kernel when its HTTP app (or the mounting plugin) is
    built, outside any transaction. Routes conventionally live under
    ``/<center name>/``.

    :param kernel: the kernel the routes serve.
    :returns: handlers, controllers or routers; every implementation's are
        mounted.
    :raises: any exception stops start-up; so do two centers claiming the
        same method and path, naming both.

    Example::

        @hookimpl
        def center_routes(self, kernel):
            return [list_charges]
    """


@hookspec
def center_subscriptions(kernel: Kernel) -> Sequence[tuple[str, Callable[..., None]]]:
    """Return ``(topic pattern, handler)`` pairs for outbox events.

    Called once while the kernel is built, outside any transaction. After a
    stage commits, each of its events (``ctx.emit(topic, payload)``) is
    passed to every handler whose pattern matches the topic (``fnmatch``:
    ``"order.*"``), as ``handler(kernel, event)``, in the committing thread,
    after the transaction. Delivery in process is best effort; the outbox
    table is the durable record that relays (``mallcore outbox relay``)
    deliver at least once.

    :param kernel: the kernel.
    :returns: the pairs; every implementation's are subscribed.
    :raises: a raise here stops start-up; a raise in a handler is logged
        and affects neither the stage nor the other handlers.

    Example::

        @hookimpl
        def center_subscriptions(self, kernel):
            return [("order.paid", self.on_paid)]
    """


@hookspec
def center_jobs(kernel: Kernel) -> Sequence[Job]:
    """Return periodic jobs (:class:`~mallcore.kernel.Job`).

    Called once while the kernel is built, outside any transaction. Jobs
    run inside ``mallcore serve`` (on one worker at a time, through a lease
    in the database) and from ``mallcore jobs run``. Each run must be safe
    when two runners race: use conditional updates.

    :param kernel: the kernel.
    :returns: the jobs; every implementation's are run.
    :raises: a raise here stops start-up; a raise in a job is logged, and
        the job runs again at its next interval.

    Example::

        @hookimpl
        def center_jobs(self, kernel):
            return [Job("fee.sweep", 3600, lambda k: sweep(k), "forget old charges")]
    """


@hookspec
def center_commands() -> Sequence[click.Command]:
    """Return click commands added under ``mallcore <center name> ...``.

    Called when the ``mallcore`` command is asked for one of the center's
    commands, for enabled centers only, outside any transaction and before
    any kernel or database is set up (the centers are loaded, not bound: no
    ``self.kernel`` or ``self.settings`` yet). Commands get the kernel with
    :func:`mallcore.kernel.pass_kernel`.

    :returns: click commands or groups.
    :raises: any exception stops the ``mallcore`` command with the error.

    Example::

        @hookimpl
        def center_commands(self):
            return [click.Command("sweep", callback=pass_kernel(sweep))]
    """


# -- A center's life: start-up, shut-down, demo data -------------------------------------


@hookspec
def center_startup(kernel: Kernel) -> None:
    """Prepare the center once the database is ready (caches, clients).

    Called once when the app starts (or ``kernel.startup()`` is called),
    outside any transaction, in center order.

    :param kernel: the kernel.
    :returns: nothing; every implementation is called.
    :raises: any exception stops start-up.

    Example::

        @hookimpl
        def center_startup(self, kernel):
            self.client = ProviderClient(self.settings.url)
    """


@hookspec
def center_shutdown(kernel: Kernel) -> None:
    """Release what :func:`center_startup` acquired.

    Called once when the app (or ``kernel.shutdown()``) stops, outside any transaction, in reverse order.

    :param kernel: the kernel.
    :returns: nothing; every implementation is called.
    :raises: a raise is logged and does not stop the other centers from
        shutting down.

    Example::

        @hookimpl
        def center_shutdown(self, kernel):
            self.client.close()
    """


@hookspec
def center_demo(kernel: Kernel, demo: Any) -> None:
    """Add the center's sample data for ``mallcore demo``.

    Called once per ``mallcore demo`` run, in center order (so the catalog
    has created ``demo.skus`` before WMS stocks them), outside any
    transaction: open your own with ``kernel.db.transaction()``. Must be
    safe to run twice.

    :param kernel: the kernel.
    :param demo: ``shop`` (the demo shop's code), ``skus`` (codes created so
        far) and ``notes`` (lines printed to the user).
    :returns: nothing; every implementation is called.
    :raises: any exception stops ``mallcore demo`` with the error; what
        earlier centers seeded stays.

    Example::

        @hookimpl
        def center_demo(self, kernel, demo):
            demo.notes.append(f"fee: {self.settings.amount} on every order of {demo.shop}")
    """


# -- Identity and views: called while a request is served --------------------------------


@hookspec(firstresult=True)
def resolve_principal(kernel: Kernel, token: str, request: Request[Any, Any, Any] | None) -> Principal | None:
    """Turn a bearer token into a :class:`Principal`.

    Called for each HTTP request that carries ``Authorization: Bearer``,
    outside any transaction. The kernel's own implementation (static tokens
    from config, then JWT, then tokens issued by ``mallcore token create``)
    runs last, so a host platform can bring its own identity.

    :param kernel: the kernel.
    :param token: the bearer token.
    :param request: the Litestar request, or ``None`` outside HTTP.
    :returns: the principal, or ``None`` if the token is not this
        implementation's. The first non-``None`` answer wins; no answer at
        all is 401 ``invalid_token``.
    :raises Unauthenticated: answers 401 with its code; any other exception
        is a 500.

    Example::

        @hookimpl
        def resolve_principal(self, token):
            user = self.sso.user_for(token)
            return None if user is None else Principal(user.id, frozenset({"customer"}))
    """


@hookspec
def order_view(kernel: Kernel, conn: sa.Connection, order: Any, view: OrderView) -> None:
    """Add a center's part to an order as clients see it.

    Called when an order is rendered (``GET /orders/{id}``, placement and
    payment responses), in the transaction that renders it (a read
    transaction, or the stage's). TMS fills ``view.shipments``; others may
    add to ``view.extra``. Keep it to one query.

    :param kernel: the kernel.
    :param conn: the open transaction.
    :param order: the order (:class:`~mallcore.kernel.Order`).
    :param view: the response being built; change it in place.
    :returns: nothing; every implementation is called.
    :raises: any exception answers 500 (and, in a stage, rolls it back).

    Example::

        @hookimpl
        def order_view(self, conn, order, view):
            view.extra["fee"] = self.charged(conn, order.id)
    """
