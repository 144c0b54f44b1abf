"""A handling fee center: the smallest useful third-party center.

- ``order_price``: adds a fee adjustment (phase FEE) to every order of the
  shops it applies to, and records why.
- a table, ``fee_charges``: one row per charged order (written at reserve,
  when the order has an id), in the same transaction as the order.
- a route, ``GET /fee/charges``: what was charged, for merchants (their
  shop's charges; a platform merchant, of no one shop, every shop's) and
  admins (every shop's).
- a page in the staff console, ``/console/fees`` (``console_pages``): the
  same charges, a page at a time, with a figure on the console's home page.

Enable it with ``[centers] enabled = [..., "fee"]`` and configure it under
``[centers.fee]``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from mallcore.kernel import Caller, Center, Kernel, OrderContext, Phase, Principal, hookimpl, visible_to
from mallcore.kernel.console import ConsolePage, Tile, keyset, render
from mallcore.kernel.http import center_router, roles

metadata = sa.MetaData()

charges = sa.Table(
    "fee_charges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)


class Charge(msgspec.Struct):
    order_id: int
    shop: str
    amount: int


class FeeCenter(Center):
    name = "fee"
    after = ("catalog",)
    description = "Adds a handling fee to orders"
    tables = metadata

    class Settings(msgspec.Struct, forbid_unknown_fields=True):
        amount: int = 100
        reason: str = "handling fee"
        # Shops the fee applies to; empty means every shop.
        shops: list[str] = []

    def _applies(self, ctx: OrderContext) -> bool:
        return not self.settings.shops or ctx.order.shop in self.settings.shops

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        if self._applies(ctx):
            ctx.adjust(
                self.name, self.settings.reason, self.settings.amount, phase=Phase.FEE, code="handling"
            )

    @hookimpl
    def order_reserve(self, ctx: OrderContext) -> None:
        if self._applies(ctx):
            ctx.conn.execute(
                charges.insert().values(
                    order_id=ctx.order.id, shop=ctx.order.shop, amount=self.settings.amount
                )
            )

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        # Everything under /fee; handlers receive this center as the dependency ``fee``.
        return [center_router(self, [ChargeController])]

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[ConsolePage]:
        # Mounted by the console center (when enabled) under /console, behind its session and CSRF check.
        def tiles(principal: Principal, lang: str) -> list[Tile]:
            c = charges.c
            stmt = sa.select(sa.func.count()).select_from(charges).where(visible_to(principal, c.shop))
            with kernel.db.transaction(write=False) as conn:
                count = conn.execute(stmt).scalar_one()
            return [Tile(label="Fees charged", label_zh="已收手续费", value=str(count), href="/fees")]

        return [
            ConsolePage(
                path="/fees",
                label="Fees",
                label_zh="手续费",
                handlers=[FeePages],
                roles=("merchant",),
                order=90,
                tiles=tiles,
            )
        ]


# Declare ``fee: Fee`` in a handler to receive the center (and ``fee.kernel``).
Fee: TypeAlias = NamedDependency[FeeCenter]


class ChargeController(Controller):
    path = "/charges"
    # The role rule, once for every handler below (admins always pass): 403 role_required otherwise.
    guards = [roles("merchant")]
    tags = ["fee"]

    @get("/", sync_to_thread=True)
    def list_charges(self, principal: Caller, fee: Fee) -> list[Charge]:
        """The charges the caller may see: their shop's, or every shop's for admins and platform merchants."""
        c = charges.c
        stmt = sa.select(c.order_id, c.shop, c.amount).where(visible_to(principal, c.shop)).order_by(c.id)
        with fee.kernel.db.transaction(write=False) as conn:
            return [Charge(*row) for row in conn.execute(stmt)]


class FeePages(Controller):
    """The console's page: the same rule and the same rows as ``GET /fee/charges``, paged by keyset."""

    path = "/fees"
    guards = [roles("merchant")]

    @get("/", sync_to_thread=True)
    def charges_page(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        fee: Fee,
        before: FromQuery[int | None] = None,
    ) -> Template:
        c = charges.c
        stmt = sa.select(c.id, c.order_id, c.shop, c.amount).where(visible_to(principal, c.shop))
        with fee.kernel.db.transaction(write=False) as conn:
            rows, more = keyset(conn, stmt, c.id, before)
        return render(request, "fee/console/charges.html", rows=rows, more=more)
