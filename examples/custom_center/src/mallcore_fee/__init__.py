"""A handling fee center: the smallest useful third-party center.

- ``order_price``: adds a fee adjustment (phase FEE) to every order of the
  shops it applies to, and records why.
- a table, ``fee_charges``: one row per charged order (written at reserve,
  when the order has an id), in the same transaction as the order.
- a route, ``GET /fee/charges``: what was charged, for merchants (their
  shop's charges; a platform merchant, of no one shop, every shop's) and
  admins (every shop's).

Enable it with ``[centers] enabled = [..., "fee"]`` and configure it under
``[centers.fee]``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec
import sqlalchemy as sa
from litestar import Controller, get
from litestar.di import NamedDependency

from mallcore.kernel import Caller, Center, Kernel, OrderContext, Phase, hookimpl, visible_to
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
