"""Points (积分) in the journal: the membership center's movements, booked as they happen.

Points are a liability of the platform: every point a member holds is money
the platform owes in goods. The membership center calls ``points_moved``
in the transaction that writes each movement, so the liability moves with
the points or not at all, and ``points_liability``'s balance is always the
value of the points members hold (spendable plus held by unpaid orders).
What is posted (``V`` the points' value, ``S`` the order's shop)::

    earned, adjusted up      Dr points_expense       V   Cr points_liability     V
    expired, clawed back,
      adjusted down          Dr points_liability     V   Cr points_expense       V
    spent (order paid)       Dr points_liability     V   Cr customer_clearing    V
    returned (a refund)
      before the sale        Dr customer_clearing    V   Cr points_liability     V
      after the sale         Dr shop_payable:S       V   Cr points_liability     V
                             Dr commission           c   Cr shop_payable:S       c

Spent points join what is held for the order, as if the customer had paid
them: the sale at delivery then pays the shop the full price of the goods
(the platform funds the points) and charges commission on it. A return
after the sale takes the points' value back from the shop and gives back
the commission on it (``c``: what was charged less what the goods still
kept are due, counting money and points refunded so far), so that after
every refund the commission is that of the goods kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from mallcore.kernel import format_amount, hookimpl

from . import accounts as acc
from . import tables as t
from .journal import Line, commission_on

if TYPE_CHECKING:
    from . import FinanceCenter

KIND = "points"


class PointsBookings:
    """The finance center's ``points_moved``: a mix-in, so the center's module stays about itself."""

    @hookimpl
    def points_moved(
        self,
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
        """Post one movement of points (nothing for a zero amount)."""
        if not amount:
            return
        center = cast("FinanceCenter", self)
        journal = center.journal
        data: dict[str, Any] = {"kind": kind, "customer": customer, "points": points, "value": amount}
        lines = [Line(account=acc.POINTS_LIABILITY, amount=-amount, role="points")]
        if kind in ("spend", "return") and order_id is not None:
            books = journal.books(conn, order_id)
            if kind == "return" and books.sale is not None:
                shop = shop or _shop_of(center, conn, order_id)
                payable = acc.shop_payable(shop)
                lines.append(Line(account=payable, amount=amount, role="points"))
                data["after_sale"] = True
                returned = _commission_back(conn, books, order_id, amount)
                if returned:
                    lines.append(Line(account=acc.COMMISSION, amount=returned, role="commission"))
                    lines.append(Line(account=payable, amount=-returned, role="commission"))
                    data["commission_returned"] = returned
            else:
                lines.append(Line(account=acc.CUSTOMER_CLEARING, amount=amount, role="points"))
        else:
            lines.append(Line(account=acc.POINTS_EXPENSE, amount=amount, role="points"))
        journal.post(
            conn,
            kind=KIND,
            currency=currency,
            amount=abs(amount),
            shop=shop,
            order_id=order_id,
            posted_by="membership",
            memo=f"{kind} {points:+d} points ({format_amount(amount, currency)}) for {customer}: {reason}",
            data=data,
            lines=lines,
        )


def _commission_back(conn: sa.Connection, books: Any, order_id: int, amount: int) -> int:
    """Commission to give back with a return of ``amount`` of points after the sale."""
    sale = books.sale
    e = t.entries.c
    earlier = 0
    for data in conn.execute(sa.select(e.data).where(e.order_id == order_id, e.kind == KIND)).scalars():
        if isinstance(data, dict) and data.get("after_sale"):
            earlier += int(data.get("value", 0))
    kept = sale["goods"] - books.goods_refunded_after_sale - earlier - amount
    due = commission_on(max(0, kept), sale["rate_bp"])
    return max(0, books.commission - due)


def _shop_of(center: FinanceCenter, conn: sa.Connection, order_id: int) -> str:
    order = center.kernel.orders.load(conn, order_id)
    return order.shop if order is not None else "unknown"
