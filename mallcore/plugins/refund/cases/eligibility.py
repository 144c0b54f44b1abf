"""What an order still offers for after-sale: its state and window, and the units no case holds.

A case holds the units it claims until it is rejected, closed, cancelled or
shipped back; a finished return or exchange keeps only the units that came
back. The units an exchange replaced are the replacement order's goods now:
only a return for money may claim them on the original order, and not while a
case on the replacement order holds them (see :meth:`Eligibility.claims`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, Order, OrderContext, Rejected
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import CaseLine

from .. import states as st
from ..schemas import OpenCase, RefundSettings
from ..states import CaseStatus as S
from .records import Case, CaseRecords

if TYPE_CHECKING:
    from mallcore.kernel.refunds import RefundService


class ExchangedUnits(msgspec.Struct, kw_only=True):
    """Units of an order line a finished exchange replaced: the replacement order's goods."""

    case_id: int  # the exchange
    order_id: int | None  # its replacement order
    sku: str  # what the customer holds now
    free: int  # not claimed by a return on this order nor held by a case on the replacement


class LineClaims(msgspec.Struct, kw_only=True):
    """What cases on an order hold of one of its lines (see :meth:`Eligibility.claims`)."""

    held: int = 0  # the line's own units claimed by cases
    exchanged: int = 0  # units finished exchanges replaced
    pools: list[ExchangedUnits] = msgspec.field(default_factory=list)


class Claimed(msgspec.Struct, kw_only=True):
    """The lines a new case may claim, as :meth:`Eligibility.claim` found them."""

    lines: list[CaseLine]
    # lines whose goods are what an exchange sent: line id (as text) -> that exchange's case
    from_exchange: dict[str, int]
    # the replacement orders those goods came from
    replacements: set[int]


@dataclass(frozen=True)
class Eligibility:
    records: CaseRecords
    refunds: RefundService
    settings: RefundSettings
    now: Callable[[OrderContext | None], datetime]

    def check_order(self, ctx: OrderContext, case_type: str) -> bool:
        """409/422 unless the order is open to a case of this type now; whether it had shipped."""
        order = ctx.order
        if order.status in ("awaiting_payment", "cancelled", "closed"):
            raise Conflict(
                f"an order that is {order.status} has nothing to return or refund",
                code="order_not_eligible",
                extra={"status": order.status},
            )
        delivered = order.status in ("delivered", "completed")
        if case_type != "refund_only" and not delivered:
            raise Conflict(
                f"the order is {order.status}; {case_type} needs the goods delivered",
                code="order_not_delivered",
                extra={"status": order.status},
            )
        if delivered:
            s = self.settings
            days = s.repair_window_days if case_type == "repair" else s.return_window_days
            since = self.delivered_at(ctx.conn, order)
            if self.now(ctx) > since + timedelta(days=days):
                raise Rejected(
                    f"the {days}-day window after delivery has passed",
                    code="after_sale_window_expired",
                    extra={"delivered_at": since.isoformat(), "window_days": days},
                )
        return order.status != "paid"

    def claim(self, ctx: OrderContext, req: OpenCase) -> Claimed:
        """The case lines ``req`` asks for, each within what is left of its order line (409 otherwise)."""
        claims = self.claims(ctx.conn, ctx.order.id or 0)
        # On a replacement order: goods a return on the original order already claims.
        elsewhere = self.claimed_from_replacement(ctx.conn, ctx.order)
        # Units refunded already (e.g. before a return that brought back only some of them)
        # are not the customer's to claim again, whichever case they were refunded by.
        refundable = {b.line_id: b.quantity_left for b in self.refunds.balances(ctx).values()}
        out = Claimed(lines=[], from_exchange={}, replacements=set())
        seen: set[int] = set()
        for item in req.lines:
            if item.line_id in seen:
                raise InvalidInput(f"line {item.line_id} is listed twice", code="line_repeated")
            seen.add(item.line_id)
            line = ctx.line(item.line_id)
            claim = claims.get(item.line_id, LineClaims())
            cap = refundable.get(item.line_id, line.quantity)
            taken = min(elsewhere.get(line.sku, 0), line.quantity)
            elsewhere[line.sku] = elsewhere.get(line.sku, 0) - taken
            available = min(line.quantity - claim.held - claim.exchanged - taken, cap)
            sku = line.sku
            if item.quantity > available and req.type == "return_refund" and available <= 0:
                # The line's own units are all claimed: the goods received in exchange for
                # them may come back for the money paid on this line. One case, one kind.
                pool = next((p for p in claim.pools if min(p.free, cap) >= item.quantity), None)
                if pool is not None:
                    available, sku = item.quantity, pool.sku
                    out.from_exchange[str(item.line_id)] = pool.case_id
                    if pool.order_id is not None:
                        out.replacements.add(pool.order_id)
                else:
                    available = max([min(p.free, cap) for p in claim.pools] or [available])
            if item.quantity > available:
                raise Conflict(
                    f"line {item.line_id}: {item.quantity} units asked, {max(available, 0)} left for after-sale",
                    code="quantity_exceeds_available",
                    extra={"line_id": item.line_id, "available": max(available, 0)},
                )
            out.lines.append(CaseLine(line_id=item.line_id, sku=sku, quantity=item.quantity))
        return out

    def claims(self, conn: sa.Connection, order_id: int) -> dict[int, LineClaims]:
        """Per order line: the units cases hold, and the units finished exchanges replaced.

        A finished return or exchange holds only the units that came back (units the customer
        never sent may be claimed again). The units an exchange replaced are the replacement
        order's goods now: only a return for money may claim them here (the money is on this
        order), and not while a case on the replacement order holds them.
        """
        cases = [c for c in self.records.load_for_order(conn, order_id) if c.status not in st.RELEASED]
        out: dict[int, LineClaims] = {}
        pools: dict[tuple[int, int], ExchangedUnits] = {}
        for c in cases:
            if c.type == "exchange" and c.status == S.REPLACEMENT_CREATED:
                passed = c.passed()
                for x in c.lines:
                    claim = out.setdefault(x.line_id, LineClaims())
                    replaced = passed.get(x.line_id, 0)
                    # failed units went back to the customer: still held, as before
                    claim.held += x.received - replaced
                    claim.exchanged += replaced
                    if replaced:
                        pool = ExchangedUnits(
                            case_id=c.id,
                            order_id=c.replacement_order_id,
                            sku=c.replacement_skus.get(x.line_id, x.sku),
                            free=replaced,
                        )
                        pools[(x.line_id, c.id)] = pool
                        claim.pools.append(pool)
        for c in cases:
            if c.type == "exchange" and c.status == S.REPLACEMENT_CREATED:
                continue
            source = c.data.get("from_exchange") or {}
            for x in c.lines:
                units = _held(c, x)
                exchange = source.get(str(x.line_id))
                source_pool = pools.get((x.line_id, exchange)) if isinstance(exchange, int) else None
                if source_pool is not None:
                    source_pool.free -= units
                else:
                    out.setdefault(x.line_id, LineClaims()).held += units
        # Goods of a replacement order held by a case there are not returnable here.
        by_order: dict[int, list[ExchangedUnits]] = {}
        for pool in pools.values():
            if pool.order_id is not None:
                by_order.setdefault(pool.order_id, []).append(pool)
        for replacement_id, its_pools in by_order.items():
            held = self._held_by_sku(conn, replacement_id)
            for pool in its_pools:
                take = min(held.get(pool.sku, 0), max(pool.free, 0))
                pool.free -= take
                held[pool.sku] = held.get(pool.sku, 0) - take
        return out

    def _held_by_sku(self, conn: sa.Connection, order_id: int) -> dict[str, int]:
        """Units per SKU that cases on ``order_id`` hold (as :meth:`claims` counts them)."""
        out: dict[str, int] = {}
        for c in self.records.load_for_order(conn, order_id):
            if c.status in st.RELEASED:
                continue
            for x in c.lines:
                out[x.sku] = out.get(x.sku, 0) + _held(c, x)
        return out

    def claimed_from_replacement(self, conn: sa.Connection, order: Order) -> dict[str, int]:
        """On a replacement order: units per SKU a return on the original order claims."""
        if order.parent_id is None:
            return {}
        parent = self.records.load_for_order(conn, order.parent_id)
        exchanges = {c.id for c in parent if c.type == "exchange" and c.replacement_order_id == order.id}
        out: dict[str, int] = {}
        for c in parent:
            if c.status in st.RELEASED or not exchanges:
                continue
            source = c.data.get("from_exchange") or {}
            for x in c.lines:
                if source.get(str(x.line_id)) in exchanges:
                    out[x.sku] = out.get(x.sku, 0) + _held(c, x)
        return out

    def delivered_at(self, conn: sa.Connection, order: Order) -> datetime:
        tl = kt.order_timeline.c
        at = conn.execute(
            sa.select(sa.func.min(tl.at)).where(tl.order_id == order.id, tl.kind == "order.delivered")
        ).scalar()
        if at is None:
            return order.updated_at or self.now(None)
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _held(case: Case, line: CaseLine) -> int:
    """Units of a case line the case holds: what came back once it is finished, else what it asked."""
    came_back = case.status in (S.REFUNDED, S.REPLACEMENT_CREATED) and case.type in st.GOODS_BACK
    return line.received if came_back else line.quantity
