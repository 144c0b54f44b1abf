"""The double-entry journal: posting entries, and what the books say of an order.

Every money event becomes one entry of postings that sum to zero per
currency (debit positive, credit negative). Entries are never changed: a
correction is a new entry (a reversal negates every posting of the entry it
reverses). Balances are always sums of postings.

What is posted (``A`` paid, ``R`` refunded, ``H`` held for the order, ``C``
commission on the goods part, ``P`` the provider, ``S`` the shop)::

    payment captured   Dr provider_clearing:P  A   Cr customer_clearing     A
    sale (delivered)   Dr customer_clearing    H   Cr shop_payable:S        H   (goods + freight)
                       Dr shop_payable:S       C   Cr commission            C
    refund             Dr refunds              R   Cr provider_clearing:P   R
      before the sale  Dr customer_clearing    R   Cr refunds               R
      after the sale   Dr shop_payable:S       R   Cr refunds               R
                       Dr commission           c   Cr shop_payable:S        c   (commission returned)
    payout             Dr shop_payable:S       N   Cr bank                  N

With ``freight_to = "platform"`` the freight part of a sale is credited to
``shipping_income`` instead of the shop, and refunded freight after the sale
is taken back from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, NotFound, OrderContext, Payment, Refund

from . import accounts as acc
from . import tables as t

if TYPE_CHECKING:
    from . import FinanceCenter


class Line(msgspec.Struct, kw_only=True):
    """One posting of an entry being written: signed ``amount`` (debit +, credit -)."""

    account: str
    amount: int
    role: str
    currency: str | None = None
    provider_ref: str | None = None


class UnbalancedEntry(InvalidInput):
    default_code = "entry_unbalanced"


class OrderBooks(msgspec.Struct, kw_only=True):
    """What the journal says of one order."""

    # (provider, provider reference, amount) of each payment entry, oldest first
    payments: list[tuple[str, str | None, int]]
    # provider reference of a payment -> refunded from it so far
    refunded_from: dict[str, int]
    held: int  # customer_clearing balance of the order
    shipping_refunded_before_sale: int
    sale: dict[str, Any] | None
    commission: int  # commission charged, net of what was returned
    goods_refunded_after_sale: int
    refunded_ids: set[int]


def commission_on(goods: int, rate_bp: int) -> int:
    """Commission on ``goods`` minor units at ``rate_bp`` basis points, half up."""
    return max(0, (goods * rate_bp + 5000) // 10000)


class Journal:
    def __init__(self, center: FinanceCenter) -> None:
        self.center = center
        self._insert_entry = t.entries.insert().returning(t.entries.c.id)

    # -- writing -------------------------------------------------------------------

    def post(
        self,
        conn: sa.Connection,
        *,
        kind: str,
        currency: str,
        amount: int,
        lines: Sequence[Line | Mapping[str, Any]],
        posted_by: str,
        shop: str | None = None,
        order_id: int | None = None,
        payment_id: int | None = None,
        refund_id: int | None = None,
        settlement_id: int | None = None,
        provider: str | None = None,
        provider_ref: str | None = None,
        reverses: int | None = None,
        memo: str = "",
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Write one balanced entry (two statements); raise ``entry_unbalanced`` otherwise.

        ``lines`` are :class:`Line` objects or plain dicts with the same keys
        (``account``, ``amount``, ``role``, optional ``currency`` and
        ``provider_ref``), so other centers can post without importing ours.
        """
        given = [line if isinstance(line, Line) else msgspec.convert(line, Line) for line in lines]
        kept = [line for line in given if line.amount != 0]
        if not kept:
            raise InvalidInput("an entry needs at least one non-zero posting", code="entry_empty")
        totals: dict[str, int] = defaultdict(int)
        for line in kept:
            if acc.kind_of(line.account) is None:
                raise InvalidInput(f"account '{line.account}' is not in the chart", code="account_unknown")
            totals[line.currency or currency] += line.amount
        off = {cur: total for cur, total in totals.items() if total}
        if off:
            raise UnbalancedEntry(
                f"postings do not balance: {', '.join(f'{c} {v:+d}' for c, v in off.items())}",
                extra={"imbalance": off},
            )
        entry_id: int = conn.execute(
            self._insert_entry,
            {
                "kind": kind,
                "shop": shop,
                "currency": currency,
                "amount": amount,
                "order_id": order_id,
                "payment_id": payment_id,
                "refund_id": refund_id,
                "settlement_id": settlement_id,
                "provider": provider,
                "provider_ref": None if provider_ref is None else provider_ref[:300],
                "reverses": reverses,
                "memo": memo[:500],
                "data": data,
                "posted_by": posted_by,
                "posted_at": at or self.center.now(),
            },
        ).scalar_one()
        conn.execute(
            t.postings.insert(),
            [
                {
                    "entry_id": entry_id,
                    "account": line.account,
                    "currency": line.currency or currency,
                    "amount": line.amount,
                    "role": line.role,
                    "order_id": order_id,
                    "provider_ref": line.provider_ref,
                }
                for line in kept
            ],
        )
        return entry_id

    # -- what happened to an order ---------------------------------------------------

    def books(self, conn: sa.Connection, order_id: int) -> OrderBooks:
        e, p = t.entries.c, t.postings.c
        rows = conn.execute(
            sa.select(e.id, e.kind, e.provider, e.provider_ref, e.amount, e.refund_id, e.data)
            .where(e.order_id == order_id)
            .order_by(e.id)
        ).all()
        sums = dict(
            conn.execute(
                sa.select(p.account, sa.func.sum(p.amount))
                .where(p.order_id == order_id, p.account.in_((acc.CUSTOMER_CLEARING, acc.COMMISSION)))
                .group_by(p.account)
            ).all()
        )
        books = OrderBooks(
            payments=[],
            refunded_from={},
            held=-int(sums.get(acc.CUSTOMER_CLEARING) or 0),
            shipping_refunded_before_sale=0,
            sale=None,
            commission=-int(sums.get(acc.COMMISSION) or 0),
            goods_refunded_after_sale=0,
            refunded_ids=set(),
        )
        for row in rows:
            data = row.data or {}
            if row.kind == "payment":
                books.payments.append((row.provider or "unknown", row.provider_ref, row.amount))
            elif row.kind == "refund":
                books.refunded_ids.add(row.refund_id)
                for part in data.get("allocations", []):
                    key = part.get("payment_ref") or ""
                    books.refunded_from[key] = books.refunded_from.get(key, 0) + part["amount"]
                if data.get("after_sale"):
                    books.goods_refunded_after_sale += data.get("goods", 0)
                else:
                    books.shipping_refunded_before_sale += data.get("shipping", 0)
            elif row.kind == "sale":
                books.sale = data
        return books

    # -- the postings of each event ------------------------------------------------------

    def post_payment(self, ctx: OrderContext, payment: Payment) -> int | None:
        if payment.amount == 0:
            return None
        provider = payment.provider or payment.method
        return self.post(
            ctx.conn,
            kind="payment",
            currency=payment.currency,
            amount=payment.amount,
            shop=ctx.order.shop,
            order_id=ctx.order.id,
            payment_id=payment.id,
            provider=provider,
            provider_ref=payment.reference,
            posted_by=ctx.principal.subject,
            memo=f"payment captured by {provider}",
            lines=[
                Line(
                    account=acc.provider_clearing(provider),
                    amount=payment.amount,
                    role="payment",
                    provider_ref=payment.reference,
                ),
                Line(account=acc.CUSTOMER_CLEARING, amount=-payment.amount, role="payment"),
            ],
        )

    def post_payment_returned(self, ctx: OrderContext, payment: Payment, refund_reference: str) -> int | None:
        """A capture that came too late, refunded at once: in and out of provider clearing.

        Both provider references are posted, so reconciliation matches the
        provider's charge and refund lines; the order's books are untouched.
        """
        if payment.amount == 0:
            return None
        provider = payment.provider or payment.method
        clearing = acc.provider_clearing(provider)
        return self.post(
            ctx.conn,
            kind="payment_returned",
            currency=payment.currency,
            amount=payment.amount,
            shop=ctx.order.shop,
            order_id=ctx.order.id,
            payment_id=payment.id,
            provider=provider,
            provider_ref=payment.reference,
            posted_by=ctx.principal.subject,
            memo=f"late capture by {provider} refunded at once",
            lines=[
                Line(account=clearing, amount=payment.amount, role="payment", provider_ref=payment.reference),
                Line(account=clearing, amount=-payment.amount, role="refund", provider_ref=refund_reference),
            ],
        )

    def post_sale(self, ctx: OrderContext) -> int | None:
        """Recognise the sale at delivery: release what is held to the shop, less commission."""
        order = ctx.order
        assert order.id is not None
        books = self.books(ctx.conn, order.id)
        if books.sale is not None or books.held <= 0:
            return None
        settings = self.center.settings
        shipping = max(0, min(books.held, order.shipping - books.shipping_refunded_before_sale))
        goods = books.held - shipping
        rate = self.center.commission_rate(order.shop)
        commission = min(commission_on(goods, rate), goods)
        payable = acc.shop_payable(order.shop)
        lines = [
            Line(account=acc.CUSTOMER_CLEARING, amount=books.held, role="sale"),
            Line(account=payable, amount=-goods, role="sale"),
        ]
        if settings.freight_to == "platform":
            lines.append(Line(account=acc.SHIPPING_INCOME, amount=-shipping, role="freight"))
        else:
            lines.append(Line(account=payable, amount=-shipping, role="freight"))
        lines += [
            Line(account=payable, amount=commission, role="commission"),
            Line(account=acc.COMMISSION, amount=-commission, role="commission"),
        ]
        return self.post(
            ctx.conn,
            kind="sale",
            currency=order.currency,
            amount=books.held,
            shop=order.shop,
            order_id=order.id,
            posted_by=ctx.principal.subject,
            memo=f"sale recognised at delivery; commission {rate} bp",
            data={
                "goods": goods,
                "shipping": shipping,
                "rate_bp": rate,
                "commission": commission,
                "freight_to": settings.freight_to,
            },
            lines=lines,
        )

    def post_refund(self, ctx: OrderContext, refund: Refund) -> int | None:
        if refund.amount == 0:
            return None
        order = ctx.order
        assert order.id is not None
        books = self.books(ctx.conn, order.id)
        if refund.id in books.refunded_ids:
            return None  # already booked (a hook called twice must not post twice)
        allocations = _allocate(books, refund)
        payable = acc.shop_payable(order.shop)
        lines = [Line(account=acc.REFUNDS, amount=refund.amount, role="refund")]
        lines += [
            Line(
                account=acc.provider_clearing(a["provider"]),
                amount=-a["amount"],
                role="refund",
                provider_ref=a["refund_ref"],
            )
            for a in allocations
        ]
        goods = refund.amount - refund.shipping
        data: dict[str, Any] = {
            "shipping": refund.shipping,
            "goods": goods,
            "after_sale": books.sale is not None,
            "allocations": allocations,
        }
        if books.sale is None:
            lines.append(Line(account=acc.CUSTOMER_CLEARING, amount=refund.amount, role="refund"))
        else:
            sale = books.sale
            if sale.get("freight_to") == "platform" and refund.shipping:
                lines.append(Line(account=acc.SHIPPING_INCOME, amount=refund.shipping, role="freight"))
                lines.append(Line(account=payable, amount=goods, role="refund"))
            else:
                lines.append(Line(account=payable, amount=refund.amount, role="refund"))
            due = commission_on(
                max(0, sale["goods"] - books.goods_refunded_after_sale - goods), sale["rate_bp"]
            )
            returned = max(0, books.commission - due)
            if returned:
                lines.append(Line(account=acc.COMMISSION, amount=returned, role="commission"))
                lines.append(Line(account=payable, amount=-returned, role="commission"))
            data["commission_returned"] = returned
        lines.append(Line(account=acc.REFUNDS, amount=-refund.amount, role="refund"))
        return self.post(
            ctx.conn,
            kind="refund",
            currency=refund.currency,
            amount=refund.amount,
            shop=order.shop,
            order_id=order.id,
            refund_id=refund.id,
            provider=allocations[0]["provider"] if allocations else None,
            provider_ref=refund.provider_ref,
            posted_by=ctx.principal.subject,
            memo=f"refund {refund.id} ({refund.source}): {refund.reason}"[:500],
            data=data,
            lines=lines,
        )

    def reverse(self, conn: sa.Connection, entry_id: int, *, posted_by: str, memo: str) -> int:
        """A new entry negating every posting of ``entry_id``: the only way to undo one."""
        e = t.entries.c
        entry = conn.execute(sa.select(t.entries).where(e.id == entry_id)).first()
        if entry is None:
            raise NotFound(f"entry {entry_id} not found", code="entry_not_found")
        if entry.kind == "reversal":
            raise Conflict("a reversal is not reversed; post a new entry", code="entry_is_reversal")
        if conn.execute(sa.select(e.id).where(e.reverses == entry_id)).first() is not None:
            raise Conflict(f"entry {entry_id} is already reversed", code="entry_already_reversed")
        lines = [
            Line(
                account=p.account,
                amount=-p.amount,
                role=p.role,
                currency=p.currency,
                provider_ref=p.provider_ref,
            )
            for p in conn.execute(sa.select(t.postings).where(t.postings.c.entry_id == entry_id))
        ]
        return self.post(
            conn,
            kind="reversal",
            currency=entry.currency,
            amount=entry.amount,
            shop=entry.shop,
            order_id=entry.order_id,
            payment_id=entry.payment_id,
            refund_id=entry.refund_id,
            settlement_id=entry.settlement_id,
            provider=entry.provider,
            provider_ref=entry.provider_ref,
            reverses=entry_id,
            memo=memo or f"reverses entry {entry_id}",
            posted_by=posted_by,
            lines=lines,
        )


def _allocate(books: OrderBooks, refund: Refund) -> list[dict[str, Any]]:
    """Which payment each part of a refund came back from.

    The payment center pays a refund out of the order's captured payments
    oldest first and joins the provider's references with commas in
    ``refund.provider_ref``; we split it the same way from our own books.
    """
    refs = [r for r in (refund.provider_ref or "").split(",") if r]
    parts: list[dict[str, Any]] = []
    left = refund.amount
    for provider, payment_ref, amount in books.payments:
        if left == 0:
            break
        take = min(left, amount - books.refunded_from.get(payment_ref or "", 0))
        if take <= 0:
            continue
        parts.append({"provider": provider, "payment_ref": payment_ref, "amount": take})
        left -= take
    if not parts or left:
        # Paid before finance was enabled, or by means we never saw: book it
        # against the first provider we know, so the entry still balances.
        provider = books.payments[0][0] if books.payments else "unknown"
        parts = [{"provider": provider, "payment_ref": None, "amount": refund.amount}]
    if len(refs) == len(parts):
        for part, ref in zip(parts, refs, strict=True):
            part["refund_ref"] = ref
    else:
        # The provider's references do not line up with our split: keep them on the first part.
        for part in parts:
            part["refund_ref"] = None
        if refs:
            parts[0]["refund_ref"] = ",".join(refs)[:128]
    return parts
