"""会员中心 membership: levels, benefits, points and the card wallet.

A member record per customer, made on first use. Hooks:

- ``order_pre_validate``: refuses a bad ``points`` figure from memory
  (``points_too_large``, ``points_not_multiple``, ``points_not_accepted``).
- ``order_price`` (after promotion and TMS): the member price (MEMBERSHIP
  phase, per eligible line), a free-shipping voucher (SHIPPING_DISCOUNT)
  and points spent (POINTS phase, ``code="points"``), with the points held
  in the same statement that reads the member (see :mod:`.placement`);
  ``points_insufficient`` / ``points_over_cap`` refuse the order.
- ``order_reserve``: the hold's ledger row.
- ``order_pay`` (trylast, captured): held points spent, the voucher used.
- ``order_cancel``: holds released, spent points and the voucher returned.
- ``order_complete``: points and growth earned; an upgrade at once.
- ``order_refund`` (``refunded``): spent points returned and earned
  points (and growth) clawed back for the refunded share (see
  :mod:`.lifecycle`).
- ``order_after_sale`` (``requested``): ``case.fast_track`` for a
  refund-only case of a top-level member below the level's amount.

Every movement of points that changes what the platform owes goes to the
``points_moved`` hook in its transaction (the finance center books it).
Routes under ``/membership`` (see :mod:`.http`); jobs
``membership.expire_points``, ``membership.reevaluate``,
``membership.birthdays``; commands ``mallcore membership ...``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from mallcore.kernel import Center, Job, Kernel, OrderContext, Payment, Refund, hookimpl, utcnow
from mallcore.kernel.aftersale import AfterSaleCase

from . import console
from . import tables as t
from .expiry import Expiry
from .ladder import Ladder
from .ledger import Ledger
from .levels import Levels
from .lifecycle import Lifecycle
from .members import Members
from .placement import Placement
from .programs import ProgramCache
from .settings import MembershipSettings, check


class MembershipCenter(Center):
    name = "membership"
    after = ("catalog", "promotion", "tms", "finance")
    description = "会员中心 membership: levels, member price, vouchers, points, card wallet"
    tables = t.metadata
    Settings = MembershipSettings

    ladder: Ladder
    programs: ProgramCache
    currency: str

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(self)
        self.levels = Levels(self)
        self.lifecycle = Lifecycle(self)
        self.expiry = Expiry(self)
        self.members = Members(self)

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        self.ladder = Ladder(check(settings, kernel.config.source))
        self.currency = settings.currency or kernel.config.orders.currency
        self.zone = ZoneInfo(settings.timezone)
        self._month: tuple[int, str] = (-1, "")
        self.programs = ProgramCache(settings.program_recheck_seconds, settings.shops_join_by_default)
        self.placement = Placement(self)

    # -- time --------------------------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def month(self, at: datetime | None = None) -> str:
        """The calendar month vouchers count in (``2025-06``), in the program's time zone."""
        if at is not None:
            return self.local(at).strftime("%Y-%m")
        # Every placement with freight asks: work it out once a minute.
        minute = int(time.time()) // 60
        cached = self._month
        if cached[0] != minute:
            cached = self._month = (minute, self.local(utcnow()).strftime("%Y-%m"))
        return cached[1]

    # -- placement ------------------------------------------------------------------------

    @hookimpl
    def order_pre_validate(self, ctx: OrderContext) -> None:
        self.placement.check(ctx)

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        self.placement.price(ctx)

    @hookimpl
    def order_reserve(self, ctx: OrderContext) -> None:
        self.placement.hold(ctx)

    # -- after placement ------------------------------------------------------------------

    @hookimpl(trylast=True)
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        self.lifecycle.pay(ctx, payment)

    @hookimpl
    def order_cancel(self, ctx: OrderContext, reason: str) -> None:
        self.lifecycle.cancel(ctx, reason)

    @hookimpl
    def order_complete(self, ctx: OrderContext) -> None:
        self.lifecycle.complete(ctx)

    @hookimpl
    def order_refund(self, ctx: OrderContext, refund: Refund) -> None:
        self.lifecycle.refund(ctx, refund)

    @hookimpl
    def order_after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        self.lifecycle.after_sale(ctx, case)

    # -- what the center brings -------------------------------------------------------------

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages()

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        from mallcore.kernel.http import center_router

        from .http import CONTROLLERS

        return [center_router(self, CONTROLLERS)]

    @hookimpl
    def center_jobs(self, kernel: Kernel) -> list[Job]:
        every = self.settings.job_interval_seconds
        return [
            Job(
                "membership.expire_points",
                every,
                lambda k: self.expiry.run(),
                "expire points past their age, oldest lots first",
            ),
            Job(
                "membership.reevaluate",
                every,
                lambda k: self.levels.reevaluate(),
                "give members whose period ended the level its growth reached",
            ),
            Job(
                "membership.birthdays",
                every,
                lambda k: self.levels.birthdays(),
                "grant birthday coupons",
            ),
        ]

    @hookimpl
    def center_commands(self) -> list[click.Command]:
        from .cli import commands

        return commands()

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        from .demo import seed

        seed(self, demo)


__all__ = ["MembershipCenter", "MembershipSettings"]
