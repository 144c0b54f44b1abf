"""Hooks of refunds and after-sale, and the ones centers use to reward a customer (coupons, points)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .markers import hookspec

__all__ = [
    "after_sale_parcel",
    "after_sale_release",
    "coupon_grant",
    "customer_coupons",
    "order_after_sale",
    "order_refund",
    "points_moved",
]

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import sqlalchemy as sa

    from ..aftersale import AfterSaleCase, ParcelEvent
    from ..context import OrderContext
    from ..kernel import Kernel
    from ..types import Refund


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

    The after-sale center calls it inside ``ctx.because(step)``: a timeline
    entry written here on the case is linked to the step as its echo, and the
    customer's tracking page shows the step once.

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

    TMS calls it inside ``ctx.because(scan)``: what is written here on the
    case is linked to the carrier scan, which the tracking page then folds
    into the case's step.

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
