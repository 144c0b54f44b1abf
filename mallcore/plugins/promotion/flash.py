"""Flash-sale units (限时直降/秒杀): taken with conditional writes, never more than the sale holds.

While an order is placed, each flash sale pricing one of its lines gives
it promotional units through two statements in the placement transaction:

1. the customer's count, ``INSERT ... ON CONFLICT DO UPDATE ... WHERE units
   + :u <= per_customer`` (no row written when the limit would be passed);
2. the sale's counter, ``UPDATE ... SET sold = sold + :u WHERE sold + :u <=
   quantity``.

PostgreSQL re-checks each ``WHERE`` on the latest row after waiting for a
concurrent writer, and SQLite serialises writers, so no two orders can both
take the last unit and no increment is lost. The order's ``held`` usage row
(written at ``order_reserve``, same transaction) records the units, so the
counters always equal the rows behind them; cancelling the order gives the
units back (:func:`release`). Campaigns are touched in id order, so two
orders never wait on each other in a cycle.

When the sale cannot give every unit asked for (sold out, or the customer's
limit reached) the campaign's ``beyond`` rule decides: ``list_price`` (the
units it could give at the flash price, the rest at list price) or
``refuse`` (409 ``flash_sale_sold_out`` / 422 ``flash_sale_limit_reached``).
A price preview reads the counters and writes nothing.

This happens while the order is *priced* (``order_price``, in the placement
transaction), not in ``order_reserve``: the units a customer gets decide the
price, and the order's totals are written before ``order_reserve`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mallcore.kernel import Conflict, Rejected

from . import tables as t
from .model import Offer
from .rules import FlashSale

if TYPE_CHECKING:
    from mallcore.kernel import Database

# Tries at a conditional write after it found fewer units left than asked.
_TRIES = 3


class FlashUnits:
    def __init__(self, db: Database) -> None:
        c, b = t.campaigns.c, t.buyers.c
        u: Any = sa.bindparam("u", type_=sa.Integer)
        self._take = (
            t.campaigns.update()
            .where(c.id == sa.bindparam("cid"), c.sold + u <= c.quantity)
            .values(sold=c.sold + u)
        )
        self._untake = t.campaigns.update().where(c.id == sa.bindparam("cid")).values(sold=c.sold - u)
        insert = sqlite.insert if db.is_sqlite else postgresql.insert
        base = insert(t.buyers).values(campaign_id=sa.bindparam("cid"), customer=sa.bindparam("who"), units=u)
        # RETURNING says whether a row was written: the driver's row count of an upsert
        # is not reliable through SQLAlchemy (-1 on psycopg).
        self._count = base.on_conflict_do_update(
            index_elements=[b.campaign_id, b.customer],
            set_={"units": b.units + base.excluded.units},
            where=b.units + base.excluded.units <= sa.bindparam("limit", type_=sa.Integer),
        ).returning(b.units)
        self._uncount = (
            t.buyers.update()
            .where(b.campaign_id == sa.bindparam("cid"), b.customer == sa.bindparam("who"))
            .values(units=b.units - u)
        )
        self._state = (
            sa.select(c.id, c.sold, c.quantity, b.units)
            .select_from(
                t.campaigns.outerjoin(
                    t.buyers, sa.and_(b.campaign_id == c.id, b.customer == sa.bindparam("who"))
                )
            )
            .where(c.id.in_(sa.bindparam("ids", expanding=True)))
        )

    def left(self, conn: sa.Connection, customer: str, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Per campaign: (units left in the sale, units the customer holds)."""
        return {
            r.id: ((r.quantity or 0) - r.sold, r.units or 0)
            for r in conn.execute(self._state, {"who": customer, "ids": list(ids)})
        }

    def grant(
        self,
        conn: sa.Connection,
        customer: str,
        offers: Mapping[int, Offer],
        wanted: Mapping[int, list[tuple[int, int]]],
        *,
        write: bool,
    ) -> dict[int, dict[int, int]]:
        """Per campaign, the flash units given per line number (taken when ``write``)."""
        out: dict[int, dict[int, int]] = {}
        state = None if write else self.left(conn, customer, sorted(wanted))
        for cid in sorted(wanted):
            offer = offers[cid]
            rules = offer.rules
            assert isinstance(rules, FlashSale)
            asked = sum(q for _, q in wanted[cid])
            if state is not None:
                stock, held = state.get(cid, (0, 0))
                units = self._plan(offer, rules, asked, stock, held)
            else:
                units = self._take_units(conn, customer, offer, rules, asked)
            given: dict[int, int] = {}
            for line_no, quantity in wanted[cid]:
                n = min(quantity, units)
                if n:
                    given[line_no] = n
                    units -= n
            if given:
                out[cid] = given
        return out

    def _plan(self, offer: Offer, rules: FlashSale, asked: int, stock: int, held: int) -> int:
        """What a preview would get: the same rules as placement, on the counters as read."""
        room = asked if rules.per_customer is None else max(0, rules.per_customer - held)
        return self._decide(offer, rules, asked, min(asked, room), max(0, stock))

    def _decide(self, offer: Offer, rules: FlashSale, asked: int, room: int, stock: int) -> int:
        if room < asked and rules.beyond == "refuse":
            raise Rejected(
                f"{offer.name}: at most {rules.per_customer} units per customer at the flash price",
                code="flash_sale_limit_reached",
                extra={"campaign_id": offer.id, "per_customer": rules.per_customer},
            )
        units = min(room, stock)
        if units < room and rules.beyond == "refuse":
            raise Conflict(
                f"{offer.name}: the flash sale is sold out ({stock} units left)",
                code="flash_sale_sold_out",
                extra={"campaign_id": offer.id, "left": stock},
            )
        return units

    def _take_units(
        self, conn: sa.Connection, customer: str, offer: Offer, rules: FlashSale, asked: int
    ) -> int:
        room = asked if rules.per_customer is None else min(asked, rules.per_customer)
        counted = 0
        if rules.per_customer is not None:
            for _ in range(_TRIES):
                if room <= 0:
                    break
                params = {"cid": offer.id, "who": customer, "u": room, "limit": rules.per_customer}
                if conn.execute(self._count, params).first() is not None:
                    counted = room
                    break
                room = min(room, rules.per_customer - self.left(conn, customer, [offer.id])[offer.id][1])
            else:
                room = 0
            room = counted
        units = self._decide(offer, rules, asked, room, room)  # the limit's verdict
        taken = 0
        for _ in range(_TRIES):
            if units <= 0:
                break
            if conn.execute(self._take, {"cid": offer.id, "u": units}).rowcount:
                taken = units
                break
            stock = self.left(conn, customer, [offer.id])[offer.id][0]
            units = self._decide(offer, rules, asked, room, max(0, stock))
        if counted > taken:
            conn.execute(self._uncount, {"cid": offer.id, "who": customer, "u": counted - taken})
        return taken

    def give_back(self, conn: sa.Connection, customer: str, units: Mapping[int, int]) -> None:
        """Return ``units`` per campaign (a cancelled order's, or a flash sale that lost its
        stacking group): the sale's counter and the customer's count, in id order."""
        for cid in sorted(units):
            if units[cid] > 0:
                conn.execute(self._untake, {"cid": cid, "u": units[cid]})
                # No row when the sale has no per-customer limit: nothing to change.
                conn.execute(self._uncount, {"cid": cid, "who": customer, "u": units[cid]})
